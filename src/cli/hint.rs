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
}
