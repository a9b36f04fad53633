//! `infra/ci/`: each CI recipe parses as a GitHub Actions workflow (jobs of steps); every
//! trackiq command line of its `run` scripts names only subcommands and flags that the real
//! binary's `--help` lists (the check of `deploy.rs`); its post to the ingest API uses only
//! query parameters the OpenAPI document lists and a format trackiq reads, sends a file an
//! earlier step writes, and takes its bearer token from a secret; `trackiq gate` waits for
//! the commit the post names, and its summary is what is commented on the pull request.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::Value;
use trackiq_producers::importers::Format;

use crate::deploy::{Cli, documents, files, is_trackiq_binary, rel};

/// The words of a shell command line as `sh` passes them: quotes removed (variables stay as
/// written), up to the first unquoted operator or redirection (`|`, `;`, `&`, `>`, `<`) or comment.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let (mut single, mut double) = (false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                if let Some(next) = chars.next() {
                    if double && !matches!(next, '"' | '\\' | '$' | '`') {
                        word.push('\\');
                    }
                    word.push(next);
                }
            }
            c if single || double => word.push(c),
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
                continue;
            }
            '#' if !in_word => break,
            '|' | ';' | '&' | '>' | '<' => break,
            c => word.push(c),
        }
        in_word = true;
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The command lines of a script, continuation lines joined.
fn commands(script: &str) -> Vec<Vec<String>> {
    script.replace("\\\n", " ").lines().map(shell_words).filter(|w| !w.is_empty()).collect()
}

/// One `run` step: where it is, its environment (workflow, job, step) and its script.
struct Step {
    origin: String,
    env: BTreeMap<String, String>,
    script: String,
}

fn env_of(v: &Value) -> impl Iterator<Item = (String, String)> + '_ {
    v.get("env").and_then(Value::as_mapping).into_iter().flatten().filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str().map_or_else(|| format!("{v:?}"), str::to_string))))
}

/// Every job's steps with a `run` script, in order.
fn run_steps(doc: &Value, file: &str) -> Vec<Step> {
    let jobs = doc.get("jobs").and_then(Value::as_mapping).unwrap_or_else(|| panic!("{file}: a workflow has jobs"));
    let mut out = Vec::new();
    for (name, job) in jobs {
        let steps = job.get("steps").and_then(Value::as_sequence).unwrap_or_else(|| panic!("{file}: job {name:?} has steps"));
        for (i, step) in steps.iter().enumerate() {
            assert!(step.get("run").is_some() || step.get("uses").is_some(), "{file}: step {i} of job {name:?} neither runs nor uses anything");
            let Some(script) = step.get("run").and_then(Value::as_str) else { continue };
            let env = env_of(doc).chain(env_of(job)).chain(env_of(step)).collect();
            let label = step.get("name").and_then(Value::as_str).map_or_else(|| format!("step {i}"), str::to_string);
            out.push(Step { origin: format!("{file}: job {}: {label}", name.as_str().unwrap_or("?")), env, script: script.to_string() });
        }
    }
    out
}

#[test]
fn shell_words_are_split_as_sh_splits_them() {
    let w = shell_words(r#"curl -H "Authorization: Bearer $T" -H 'Content-Type: application/json' "$URL/api/v1/runs?a=1&b=2" # note"#);
    assert_eq!(w, ["curl", "-H", "Authorization: Bearer $T", "-H", "Content-Type: application/json", "$URL/api/v1/runs?a=1&b=2"]);
    assert_eq!(shell_words(r#"trackiq gate --commit "$GITHUB_SHA" > gate.md"#), ["trackiq", "gate", "--commit", "$GITHUB_SHA"]);
    assert_eq!(shell_words("echo a\\ b; ls"), ["echo", "a b"]);
    assert_eq!(commands("curl -s \\\n  --data-binary @r.json \\\n  URL\nls\n"), [vec!["curl", "-s", "--data-binary", "@r.json", "URL"], vec!["ls"]]);
}

#[test]
fn ci_recipes_parse_and_post_gate_and_comment_as_the_binary_and_the_api_accept() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/ci");
    let recipes = files(&dir, &[".yml", ".yaml"]);
    assert!(recipes.iter().any(|p| p.ends_with("github-actions.yml")), "infra/ci/github-actions.yml exists");
    let openapi: serde_json::Value = serde_json::from_str(trackiq_sinks::dashboard::ingest::OPENAPI_JSON).unwrap();
    let documented: Vec<&str> = openapi["paths"]["/api/v1/runs"]["post"]["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut cli = Cli::default();
    let mut errors = Vec::new();
    for path in &recipes {
        let file = rel(path);
        for doc in documents(path) {
            let steps = run_steps(&doc, &file);
            let (mut posted_commit, mut gated_commit, mut commented) = (None, None, None);
            for (i, step) in steps.iter().enumerate() {
                for words in commands(&step.script) {
                    let origin = format!("{}: `{}`", step.origin, words.join(" "));
                    match words[0].as_str() {
                        w if is_trackiq_binary(w) => match cli.check(&words[1..]) {
                            Ok((path, _, values)) if path == ["gate"] => {
                                gated_commit = Some(values.get("--commit").cloned().unwrap_or_else(|| panic!("{origin}: the gate takes the commit")));
                                assert!(step.script.contains("> gate.md"), "{origin}: the summary goes to gate.md");
                            }
                            Ok(_) => {}
                            Err(e) => errors.extend(e.into_iter().map(|e| format!("{origin}: {e}"))),
                        },
                        "curl" => {
                            let url = words.iter().find(|w| w.contains("/api/v1/runs")).unwrap_or_else(|| panic!("{origin}: posts to /api/v1/runs"));
                            let (route, query) = url.split_once('?').unwrap_or((url, ""));
                            assert!(route.ends_with("/api/v1/runs"), "{origin}: {route}");
                            for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
                                assert!(documented.contains(&k), "{origin}: query parameter `{k}` is not in the OpenAPI document ({documented:?})");
                                if k == "format" {
                                    assert!(Format::from_name(v).is_some(), "{origin}: format `{v}` is none trackiq reads");
                                }
                                if k == "git_commit" {
                                    posted_commit = Some(v.to_string());
                                }
                            }
                            let bearer = words.iter().find_map(|w| w.strip_prefix("Authorization: Bearer $")).unwrap_or_else(|| panic!("{origin}: a bearer token from a variable"));
                            let secret = step.env.get(bearer).map(String::as_str).unwrap_or_default();
                            assert!(secret.starts_with("${{ secrets."), "{origin}: ${bearer} comes from a secret, not `{secret}`");
                            let data = words.iter().skip_while(|w| *w != "--data-binary").nth(1).and_then(|d| d.strip_prefix('@')).unwrap_or_else(|| panic!("{origin}: --data-binary @file"));
                            assert!(steps[..i].iter().any(|s| s.script.contains(data)), "{origin}: no earlier step writes {data}");
                        }
                        "gh" if words[1..].starts_with(&["pr".to_string(), "comment".to_string()]) => {
                            commented = words.iter().skip_while(|w| *w != "--body-file").nth(1).cloned();
                        }
                        _ => {}
                    }
                }
            }
            assert!(errors.is_empty(), "trackiq command lines in {file} that the binary does not accept:\n{}", errors.join("\n"));
            assert!(posted_commit.is_some() && posted_commit == gated_commit, "{file}: the gate waits for the commit posted ({posted_commit:?} vs {gated_commit:?})");
            assert_eq!(commented.as_deref(), Some("gate.md"), "{file}: the gate's summary is commented on the pull request");
        }
    }
}
