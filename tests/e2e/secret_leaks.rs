//! Secrets never leak: one pipeline holding every secret trackiq can hold — Kafka SCRAM
//! (broker users and clients), Slack, SMTP, GitHub, the dashboard, ingest, SQL and OTLP
//! tokens — each a recognisable value, runs a regression to every channel and a few
//! failures; then every log line, message, table, dead letter, report, `status` output and
//! error message is scanned for them.

use std::process::Command;
use std::time::Duration;

use crate::alert_endpoints::{GithubReceiver, SlackReceiver, SmtpServer};
use crate::alerting::{self, GITHUB_TOKEN, SLACK_KEY, SMTP_PASSWORD};
use crate::support::*;

/// Every secret of this test but the channels' (alerting's) carries this marker, so a
/// partial leak (a truncated or quoted value) is caught too.
const MARKER: &str = "LEAKCHECK";
const KAFKA_PASSWORD: &str = "LEAKCHECK-kafka-scram-51";
const UI_TOKEN: &str = "LEAKCHECK-ui-token-52";
const INGEST_TOKEN: &str = "LEAKCHECK-ingest-token-53";
const SQL_PASSWORD: &str = "LEAKCHECK-sql-password-54";
const OTLP_TOKEN: &str = "LEAKCHECK-otlp-token-55";
const WRONG_KAFKA_PASSWORD: &str = "LEAKCHECK-wrong-kafka-56";

fn assert_clean(what: &str, text: &str) {
    for secret in [MARKER, KAFKA_PASSWORD, UI_TOKEN, INGEST_TOKEN, SQL_PASSWORD, OTLP_TOKEN, SLACK_KEY, GITHUB_TOKEN, SMTP_PASSWORD] {
        let at = text.find(secret).map(|i| &text[i.saturating_sub(120)..(i + secret.len() + 40).min(text.len())]);
        assert!(at.is_none(), "a secret appears in {what}: …{}…", at.unwrap_or_default());
    }
}

fn all_output(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn no_secret_appears_in_any_output_of_a_pipeline_that_holds_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let (slack, github) = (SlackReceiver::start(SLACK_KEY), GithubReceiver::start("acme/bench", GITHUB_TOKEN, 1));
    let smtp = SmtpServer::start(&dir.path().join("mail"), 0, "trackiq", SMTP_PASSWORD);
    // alerting's configuration (log, Slack, email, GitHub), with every other secret added.
    let path = alerting::config(dir.path(), smtp.port, &github.api, 3);
    let base = std::fs::read_to_string(&path).unwrap();
    let listen = "listen = \"127.0.0.1:0\"\n";
    let config = base
        .replacen(&format!("[dashboard]\n{listen}"), &format!("[dashboard]\n{listen}token = {{ env = \"LEAK_UI_TOKEN\" }}\n[ingest]\ntoken = {{ env = \"LEAK_INGEST_TOKEN\" }}\n"), 1)
        .replacen(
            &format!("[sql_server]\n{listen}"),
            &format!(
                "[sql_server]\n{listen}password = {{ env = \"LEAK_SQL_PASSWORD\" }}\n[otlp]\nenabled = true\n{listen}token = {{ env = \"LEAK_OTLP_TOKEN\" }}\n\
                 [bus]\nstatic_membership = false\n[[bus.users]]\nname = \"trackiq\"\npassword = {{ env = \"LEAK_KAFKA_PASSWORD\" }}\n\
                 [bus.security]\nprotocol = \"sasl_plaintext\"\nmechanism = \"SCRAM-SHA-512\"\nusername = \"trackiq\"\npassword = {{ env = \"LEAK_KAFKA_PASSWORD\" }}\n"
            ),
            1,
        );
    assert!(config.contains("LEAK_UI_TOKEN") && config.contains("LEAK_KAFKA_PASSWORD"), "alerting's configuration changed shape:\n{base}");
    std::fs::write(&path, &config).unwrap();
    let env: Vec<(String, String)> = [
        ("LEAK_KAFKA_PASSWORD", KAFKA_PASSWORD),
        ("LEAK_UI_TOKEN", UI_TOKEN),
        ("LEAK_INGEST_TOKEN", INGEST_TOKEN),
        ("LEAK_SQL_PASSWORD", SQL_PASSWORD),
        ("LEAK_OTLP_TOKEN", OTLP_TOKEN),
        ("TEST_SLACK_WEBHOOK", slack.url.as_str()),
        ("TEST_GITHUB_TOKEN", GITHUB_TOKEN),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let plain = format!("127.0.0.1:{}", free_port());
    let broker = Up::spawn(&["broker".into(), "--broker-listen".into(), plain.clone()], &plain, &data, &path, &env, "trackiq broker is up");
    let up = Up::spawn(&["up".into(), "--brokers".into(), plain.clone()], &plain, &data, &path, &env, "trackiq is up");
    let config_arg = path.display().to_string();
    let cli = |args: &[&str]| up.cli(&[&["--config", config_arg.as_str()], args].concat());
    let mut outputs = Vec::new();

    // A baseline and a regression: one message to every channel (GitHub fails once first).
    for v in [10.0, 10.1, 9.9, 10.05, 9.95, 10.0, 20.0] {
        let out = cli(&["record", "--workload", "leak", "--hardware", "box", "--version-tag", "v1", "--metric", &format!("latency_ms={v}")]);
        assert!(out.status.success(), "{}", all_output(&out));
        outputs.push(("record", all_output(&out)));
    }
    wait_for("a message on every channel", Duration::from_secs(120), || {
        let github_issue = github.calls.lock().unwrap().iter().any(|(m, _, _)| m == "POST");
        (!slack.messages.lock().unwrap().is_empty() && !smtp.messages().is_empty() && github_issue).then_some(())
    });

    // Failures whose errors must not carry a secret: a wrong Kafka password, a wrong bearer.
    let wrong = Command::new(BIN)
        .args(["--brokers", &plain, "--data", &data, "--config", &config_arg, "record", "--workload", "leak", "--metric", "latency_ms=1"])
        .envs(env.iter().cloned())
        .env("LEAK_KAFKA_PASSWORD", WRONG_KAFKA_PASSWORD)
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "a wrong Kafka password is refused");
    // The wrong password carries the marker too: repeating it would be a leak as well.
    outputs.push(("a refused Kafka client's error", all_output(&wrong)));
    let at = wait_for("the dashboard's address", Duration::from_secs(10), || {
        up.log.lock().unwrap().lines().find_map(|l| l.split("dashboard http://").nth(1).map(|r| r.split('/').next().unwrap().to_string()))
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let refused = rt.block_on(async {
        let client = reqwest::Client::new();
        let post = client.post(format!("http://{at}/api/v1/runs?format=bmf")).bearer_auth("not-the-token").body("{}").send().await.unwrap();
        let page = client.get(format!("http://{at}/runs")).send().await.unwrap();
        format!("{} {}\n{} {}", post.status(), post.text().await.unwrap(), page.status(), page.text().await.unwrap())
    });
    assert!(refused.starts_with("401") || refused.starts_with("403"), "{refused}");
    outputs.push(("the refused HTTP requests", refused));

    // Everything a person or a program reads afterwards.
    outputs.push(("status", all_output(&cli(&["status", "--metrics", up.metrics.as_deref().unwrap()]))));
    outputs.push(("status --format json", all_output(&cli(&["status", "--metrics", up.metrics.as_deref().unwrap(), "--format", "json"]))));
    outputs.push(("the Markdown report", all_output(&cli(&["report", "--days", "1"]))));
    let html = dir.path().join("fleet.html");
    let out = cli(&["report", "--days", "1", "--format", "html", "--output", &html.display().to_string()]);
    outputs.push(("the HTML report", format!("{}{}", all_output(&out), std::fs::read_to_string(&html).unwrap_or_default())));
    let tables = sql(&up, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
    assert!(tables.len() >= 11, "{tables:?}");
    for t in &tables {
        let name = t["table_name"].as_str().unwrap();
        outputs.push((name, all_output(&cli(&["sql", &format!("SELECT * FROM {name}"), "--format", "json"]))));
    }
    let (up_log, broker_log) = (up.log.clone(), broker.log.clone());
    let _ = up.stop();
    let _ = broker.stop();
    outputs.push(("the pipeline's log", up_log.lock().unwrap().clone()));
    outputs.push(("the broker's log", broker_log.lock().unwrap().clone()));
    outputs.push(("the Slack messages", format!("{:?}", slack.messages.lock().unwrap())));
    outputs.push(("the emails", smtp.messages().join("\n")));
    outputs.push(("the GitHub calls", format!("{:?}", github.calls.lock().unwrap())));
    for (what, text) in &outputs {
        assert!(!text.is_empty(), "{what} said nothing");
        assert_clean(what, text);
    }
}
