//! Commands trackiq prints for the user to run next. Each names the data it talks about (an
//! absolute URL: a relative `file://./trackiq-data` would mean another history from another
//! directory) and the broker when it is not the default, and is quoted for a POSIX shell, so
//! it runs as printed, pasted from whatever directory the user is in.

use std::borrow::Cow;
use std::fmt::Display;

use trackiq::config::Config;

/// `words` as one shell command line, each quoted where it needs it.
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words.iter().map(|w| shlex::try_quote(w.as_ref()).unwrap_or(Cow::Borrowed(w.as_ref())).into_owned()).collect::<Vec<_>>().join(" ")
}

/// `trackiq --data <data> <args>`: a command over the history at `data` (a store's URL as it
/// displays itself: absolute for files).
pub fn over_data(data: &impl Display, args: &[&str]) -> String {
    let data = data.to_string();
    let mut words = vec!["trackiq", "--data", data.as_str()];
    words.extend_from_slice(args);
    shell_line(&words)
}

/// `trackiq [--brokers ADDR] <args>`: a producer command reaching the pipeline at `brokers`,
/// which needs no flag when it is the address producers try by default.
pub fn to_brokers(brokers: &str, args: &[&str]) -> String {
    let default = Config::default().bus.listen;
    let mut words = vec!["trackiq"];
    if brokers != default {
        words.extend(["--brokers", brokers]);
    }
    words.extend_from_slice(args);
    shell_line(&words)
}

/// `trackiq --data <absolute data> [--brokers ADDR] <args>`: a command against the same
/// history and pipeline as the command that prints it (the broker named where it is not the
/// default one).
pub fn like(config: &Config, args: &[&str]) -> String {
    let brokers = if config.bus.brokers.is_empty() { config.bus.listen.as_str() } else { config.bus.brokers.as_str() };
    let data = absolute_data(&config.data);
    let mut words = vec!["--data", data.as_str()];
    words.extend_from_slice(args);
    to_brokers(brokers, &words)
}

/// A data URL that means the same from any directory: a relative `file://` path (or a plain
/// path) made absolute against the current directory; other URLs as they are.
pub fn absolute_data(data: &str) -> String {
    let path = match data.strip_prefix("file://") {
        Some(p) => p,
        None if data.contains("://") => return data.to_string(),
        None => data,
    };
    match std::path::absolute(path) {
        Ok(abs) => format!("file://{}", abs.display()).replace("/./", "/"),
        Err(_) => data.to_string(),
    }
}

/// Why a local history holds nothing for a reading command: the directory is missing, or has
/// none of the tables; `None` for a history that has tables, or is not local (object stores
/// are listed by the query itself).
pub fn missing_history(data: &str) -> Option<String> {
    let url = absolute_data(data);
    let dir = std::path::PathBuf::from(url.strip_prefix("file://")?);
    let has_table = trackiq_schemas::arrow::TABLES.iter().any(|t| dir.join(t).is_dir());
    (!has_table).then(|| {
        let what = if dir.is_dir() { "has no tables yet" } else { "does not exist" };
        format!(
            "note: the history {url} {what}, so every table reads empty. `trackiq up` writes it in the directory it was started in (`./trackiq-data`); from another directory pass --data file:///that/dir/trackiq-data or set TRACKIQ_DATA"
        )
    })
}

/// [`missing_history`], said once per process on stderr (a command may query several times).
pub fn note_missing_history(data: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    if let Some(note) = missing_history(data) {
        SAID.call_once(|| eprintln!("{note}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_quote_what_a_shell_would_split_and_name_their_data() {
        let line = over_data(&"file:///tmp/my data", &["sql", "SELECT a, b FROM verdicts WHERE metric = 'latency_ms'"]);
        let words = shlex::split(&line).unwrap();
        assert_eq!(words, ["trackiq", "--data", "file:///tmp/my data", "sql", "SELECT a, b FROM verdicts WHERE metric = 'latency_ms'"]);
        assert_eq!(to_brokers(&Config::default().bus.listen, &["bench", "cmd", "--", "true"]), "trackiq bench cmd -- true");
        assert_eq!(to_brokers("127.0.0.1:9300", &["record"]), "trackiq --brokers 127.0.0.1:9300 record");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute_data("file://./trackiq-data"), format!("file://{}/trackiq-data", cwd.display()));
        assert_eq!(absolute_data("s3://bucket/x"), "s3://bucket/x");
        let mut config = Config::default();
        config.bus.brokers = "kafka:9092".into();
        assert_eq!(like(&config, &["alerts", "list"]), format!("trackiq --brokers kafka:9092 --data file://{}/trackiq-data alerts list", cwd.display()));
    }

    #[test]
    fn a_local_history_without_tables_is_named_absolutely() {
        let dir = std::env::temp_dir().join(format!("trackiq-hint-{}", std::process::id()));
        let data = format!("file://{}", dir.display());
        let note = missing_history(&data).unwrap();
        assert!(note.contains(&data) && note.contains("does not exist") && note.contains("--data"), "{note}");
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        assert!(missing_history(&data).unwrap().contains("has no tables yet"));
        std::fs::create_dir_all(dir.join("verdicts")).unwrap();
        assert_eq!(missing_history(&data), None);
        assert_eq!(missing_history("s3://bucket/prefix"), None, "object stores are not looked at");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
