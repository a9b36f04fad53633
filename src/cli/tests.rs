//! The command line as users meet it: every command has a help line per flag and examples
//! that parse, and every `trackiq` command line of the README parses with the real parser.

use std::ffi::OsString;

use super::*;

/// Parses `line` (after `trackiq`) as the binary does; the warnings of old spellings with it.
fn parse_line(line: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(line).ok_or_else(|| format!("unbalanced quotes in `{line}`"))?;
    let args = std::iter::once("trackiq".to_string()).chain(words).map(OsString::from).collect();
    let (args, warnings) = spelling::modernize(args);
    command_for(&args).try_get_matches_from(args).map_err(|e| e.render().to_string())?;
    Ok(warnings)
}

/// Every command path of the parser (without `help`).
fn paths(c: &clap::Command, prefix: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    for sub in c.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut path = prefix.clone();
        path.push(sub.get_name().to_string());
        out.push((path.clone(), sub.clone()));
        paths(sub, path, out);
    }
}

#[test]
fn the_parser_is_consistent() {
    command_for(&[]).debug_assert();
}

#[test]
fn every_command_has_examples_that_parse_and_every_flag_a_help_line() {
    let mut all = Vec::new();
    paths(&command_for(&[]), Vec::new(), &mut all);
    assert!(all.len() >= 40, "{} commands", all.len());
    let mut missing = Vec::new();
    for (path, sub) in &all {
        let entry = examples::EXAMPLES.iter().find(|(p, _)| p.iter().copied().eq(path.iter().map(String::as_str)));
        let (_, lines) = entry.unwrap_or_else(|| panic!("`trackiq {}` has no examples in cli/examples.rs", path.join(" ")));
        for line in *lines {
            let warnings = parse_line(line).unwrap_or_else(|e| panic!("example `trackiq {line}` does not parse:\n{e}"));
            assert!(warnings.is_empty(), "example `trackiq {line}` uses an old spelling: {warnings:?}");
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set() && a.get_id() != "help") {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            if help.trim().is_empty() {
                missing.push(format!("`trackiq {}`: {} has no help line", path.join(" "), arg.get_id()));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn broker_flags_are_shown_only_where_kafka_is_used() {
    let help = |line: &str| {
        let args: Vec<OsString> = std::iter::once("trackiq").chain(line.split(' ')).map(OsString::from).collect();
        let err = command_for(&args).try_get_matches_from(args).expect_err("--help ends parsing");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "`trackiq {line}`: {}", err.render());
        err.render().to_string()
    };
    for line in ["up --help", "record --help", "bench cmd --help", "alerts ack --help"] {
        assert!(help(line).contains("--brokers"), "{line}");
    }
    for line in ["sql --help", "metrics --help", "ui --help", "compact --help", "status --help", "--data file:///x report --help"] {
        let text = help(line);
        assert!(!text.contains("--brokers") && !text.contains("--kafka-option") && text.contains("Usage: trackiq"), "{line}:\n{text}");
    }
    // Hidden, still accepted: one TRACKIQ_* environment or shell alias serves every command.
    assert_eq!(parse_line("--brokers kafka:9092 sql \"SELECT 1\""), Ok(vec![]));
    assert_eq!(parse_line("status --kafka-option security.protocol=SSL --format json"), Ok(vec![]));
    assert_eq!(parse_line("--kafka-option a=b tables"), Ok(vec![]));
}

/// The `trackiq` command lines of the README's code blocks: continued lines joined, comments,
/// pipes and `;`-separated commands split off, `cargo run --` read as `trackiq`.
fn readme_command_lines() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let mut lines = Vec::new();
    let mut in_code = false;
    let mut pending = String::new();
    for raw in readme.lines() {
        if raw.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = raw.trim();
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
            continue;
        }
        let full = std::mem::take(&mut pending) + line;
        for command in full.split(" ; ").flat_map(|c| c.split("; ")).flat_map(|c| c.split(" && ")) {
            let command = command.split(" | ").next().unwrap_or_default();
            let command = strip_comment(command).trim().trim_end_matches(" &").trim();
            let command = command.strip_prefix("do ").unwrap_or(command);
            // Environment assignments in front of the command.
            let command = command.split(' ').skip_while(|w| w.contains('=') && !w.starts_with('-')).collect::<Vec<_>>().join(" ");
            for program in ["trackiq ", "cargo run -- ", "target/release/trackiq "] {
                if let Some(rest) = command.strip_prefix(program) {
                    lines.push(rest.to_string());
                }
            }
        }
    }
    lines
}

/// `line` without a shell comment (a `#` that starts a word outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

#[test]
fn every_command_line_of_the_readme_parses() {
    let lines = readme_command_lines();
    assert!(lines.len() >= 50, "found only {} command lines in the README", lines.len());
    let mut failures = Vec::new();
    for line in &lines {
        // Placeholders such as <run_id> are values a user fills in.
        let filled = line.replace('<', "").replace('>', "").replace('[', "").replace(']', "");
        match parse_line(&filled) {
            Ok(w) if w.is_empty() => {}
            Ok(w) => failures.push(format!("`trackiq {line}` uses an old spelling: {w:?}")),
            Err(e) => failures.push(format!("`trackiq {line}`:\n{e}")),
        }
    }
    assert!(failures.is_empty(), "README command lines that the parser refuses:\n{}", failures.join("\n"));
}

#[test]
fn every_toml_block_of_the_readme_is_a_valid_configuration() {
    let readme = include_str!("../../README.md");
    let blocks: Vec<&str> = readme.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap_or_default()).collect();
    assert!(!blocks.is_empty(), "the README has a minimal [notify] example");
    for block in blocks {
        if let Err(e) = toml::from_str::<trackiq::config::Config>(block) {
            panic!("README configuration does not load:\n{block}\n{e}");
        }
    }
}
