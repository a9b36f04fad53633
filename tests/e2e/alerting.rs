//! On-call alerting through the whole pipeline: a regression fires one message per channel
//! (Slack Block Kit, email over a real SMTP server, a GitHub issue, a log event), a repeat
//! that is not worse sends nothing, a worse one sends again, two good runs resolve it (the
//! issue is closed); an outage is retried, then dead-lettered, and a kill -9 restart sends
//! nothing twice; a silence is recorded, not sent; secrets appear nowhere.

use std::path::Path;
use std::time::Duration;

use crate::alert_endpoints::{GithubReceiver, MailServer, SlackReceiver, SmtpServer};
use crate::support::*;

pub const SLACK_KEY: &str = "XoxbSlackKey9f8e7d";
pub const GITHUB_TOKEN: &str = "ghp_TestToken0123456789";
pub const SMTP_PASSWORD: &str = "smtp-Pa55word-42";
const WAIT: Duration = Duration::from_secs(90);

/// `trackiq up`'s settings with a log, Slack, email and GitHub channel (secrets from the
/// environment and a file).
pub fn config(dir: &Path, smtp_port: u16, github_api: &str, max_attempts: u32) -> std::path::PathBuf {
    let password = dir.join("smtp-password");
    std::fs::write(&password, format!("{SMTP_PASSWORD}\n")).unwrap();
    let p = dir.join("trackiq.toml");
    std::fs::write(
        &p,
        format!(
            r#"[archiver]
flush_secs = 1
[metrics]
listen = "127.0.0.1:0"
[dashboard]
listen = "127.0.0.1:0"
[sql_server]
listen = "127.0.0.1:0"
[alerts]
resolve_after_runs = 2
[notify]
max_attempts = {max_attempts}
initial_backoff_ms = 50
max_backoff_ms = 1000
dashboard_url = "http://dashboard.example:8080"
reports_url = "https://reports.example/trackiq"
[[notify.channels]]
kind = "log"
name = "log"
[[notify.channels]]
kind = "slack"
name = "oncall-slack"
webhook_url = {{ env = "TEST_SLACK_WEBHOOK" }}
[[notify.channels]]
kind = "email"
name = "oncall-mail"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "trackiq"
password = {{ file = "{}" }}
from = "trackiq <trackiq@example.com>"
to = ["oncall@example.com"]
[[notify.channels]]
kind = "github"
name = "perf-issues"
api_url = "{github_api}"
repo = "acme/bench"
token = {{ env = "TEST_GITHUB_TOKEN" }}
"#,
            password.display()
        ),
    )
    .unwrap();
    p
}

/// A pipeline whose every channel reaches a real local receiver.
pub struct WithChannels {
    pub up: Up,
    pub slack: SlackReceiver,
    pub github: GithubReceiver,
    pub smtp: SmtpServer,
}

/// `trackiq up` over `data` with [`config`]'s channels, each to a receiver started here; the
/// GitHub receiver answers 502 to its first `github_fail_first` requests.
pub fn up_with_channels(dir: &Path, data: &str, max_attempts: u32, github_fail_first: u32) -> WithChannels {
    let (slack, github) = (SlackReceiver::start(SLACK_KEY), GithubReceiver::start("acme/bench", GITHUB_TOKEN, github_fail_first));
    let smtp = SmtpServer::start(&dir.join("mail"), 0, "trackiq", SMTP_PASSWORD);
    let env = [("TEST_SLACK_WEBHOOK".to_string(), slack.url.clone()), ("TEST_GITHUB_TOKEN".to_string(), GITHUB_TOKEN.to_string())];
    let up = Up::start(data, &config(dir, smtp.port, &github.api, max_attempts), &[], &env);
    WithChannels { up, slack, github, smtp }
}

pub fn record(up: &Up, workload: &str, latency: f64) -> String {
    let metric = format!("latency_ms={latency}");
    recorded_run_id(&ok(&up.cli(&["record", "--workload", workload, "--hardware", "box", "--version-tag", "v1", "--metric", &metric])))
}

pub fn baseline(up: &Up, workload: &str) {
    for v in [10.0, 10.1, 9.9, 10.05, 9.95, 10.0] {
        record(up, workload, v);
    }
}

/// `wait_for`, printing the pipeline's notification log lines when it times out.
pub fn wait_or_log<T>(up: &Up, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            let log = up.log.lock().unwrap().lines().filter(|l| l.contains("notif") || l.contains("alert") || l.contains("ERROR")).collect::<Vec<_>>().join("\n");
            panic!("timed out after {WAIT:?} waiting for {what}; the pipeline said:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn header<'a>(raw: &'a str, name: &str) -> &'a str {
    raw.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_default()
}

/// The notifications table: (channel, status, attempts, external_ref) of one group.
fn outcomes(up: &Up, group: &str) -> Vec<(String, String, i64, String)> {
    let q = format!("SELECT channel, status, attempts, coalesce(external_ref, '') AS r FROM notifications WHERE group_key = '{group}' ORDER BY channel");
    sql(up, &q).iter().map(|r| (r["channel"].as_str().unwrap().into(), r["status"].as_str().unwrap().into(), r["attempts"].as_i64().unwrap(), r["r"].as_str().unwrap().into())).collect()
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [SLACK_KEY, GITHUB_TOKEN, SMTP_PASSWORD] {
        assert!(!text.contains(s), "a secret appears in {what}");
    }
}

#[test]
fn a_regression_reaches_every_channel_once_worsens_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let WithChannels { up, slack, github, smtp } = up_with_channels(dir.path(), &data, 5, 0);

    baseline(&up, "step");
    let bad = record(&up, "step", 12.0);
    wait_or_log(&up, "the Slack message of the regression", || (slack.messages.lock().unwrap().len() == 1).then_some(()));
    let first = slack.messages.lock().unwrap()[0].clone();
    let title = slack.headers()[0].clone();
    assert_eq!(title, "[BLOCK] step on box at v1: latency_ms +20.0 %", "the step_change finding on the same metric is inhibited");
    let blocks = &first["attachments"][0]["blocks"];
    assert_eq!(first["attachments"][0]["color"], "#cf222e");
    let details = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(details.contains("*latency_ms* — block: 10 → *12* (+20.0 %)"), "{details}");
    let buttons: Vec<&str> = blocks[4]["elements"].as_array().unwrap().iter().map(|b| b["url"].as_str().unwrap()).collect();
    assert_eq!(buttons, [format!("https://reports.example/trackiq/reports/{bad}.html"), format!("http://dashboard.example:8080/runs/{bad}")]);
    let mail = wait_or_log(&up, "the email", || smtp.messages().first().cloned());
    assert_eq!(header(&mail, "Subject"), title);
    assert!(mail.contains("multipart/alternative") && mail.contains("text/plain") && mail.contains("text/html"), "{mail}");
    assert!(header(&mail, "Message-ID").ends_with("@trackiq>"));
    let thread = header(&mail, "References").to_string();
    assert!(thread.ends_with("@trackiq>") && header(&mail, "In-Reply-To") == thread);
    wait_or_log(&up, "the GitHub issue", || (!github.calls.lock().unwrap().is_empty()).then_some(()));
    let (_, _, issue) = github.calls.lock().unwrap()[0].clone();
    assert_eq!((issue["title"].as_str(), issue["labels"][0].as_str()), (Some(title.as_str()), Some("performance-regression")));
    assert!(issue["body"].as_str().unwrap().contains("| `latency_ms` | block | 10 | 12 | +20.0 % |"), "{}", issue["body"]);

    // Not worse (+21 % against +20 % sent), within the repeat interval: recorded, not sent.
    record(&up, "step", 12.1);
    // Worse: sent again; the issue gets a comment.
    record(&up, "step", 20.0);
    wait_or_log(&up, "the worse message", || (slack.messages.lock().unwrap().len() == 2).then_some(()));
    let worse = slack.messages.lock().unwrap()[1].clone();
    assert!(worse["attachments"][0]["blocks"][3]["elements"][0]["text"].as_str().unwrap().contains("worse"), "{worse}");
    // Two good runs resolve it: one message, the issue commented on and closed.
    record(&up, "step", 10.0);
    let last = record(&up, "step", 10.02);
    wait_or_log(&up, "the resolution", || (slack.messages.lock().unwrap().len() == 3).then_some(()));
    assert_eq!(slack.headers()[2], "[RESOLVED] step on box at v1: latency_ms back within baseline", "{:?}", slack.headers());
    let resolution = slack.messages.lock().unwrap()[2]["attachments"][0]["blocks"][2]["text"]["text"].as_str().unwrap().to_string();
    assert!(resolution.contains("*10.02*") && resolution.contains("is back within its baseline for 2 runs after firing for"), "the good run's figures: {resolution}");
    assert_eq!(slack.messages.lock().unwrap()[2]["attachments"][0]["color"], "#2da44e");
    wait_or_log(&up, "three emails", || (smtp.messages().len() == 3).then_some(()));
    assert!(smtp.messages().iter().all(|m| header(m, "References") == thread), "fired, worse and resolved are one thread");
    wait_or_log(&up, "the issue closed", || (github.calls.lock().unwrap().len() == 4).then_some(()));
    assert_eq!(
        github.sequence(),
        ["POST /repos/acme/bench/issues", "POST /repos/acme/bench/issues/1/comments", "POST /repos/acme/bench/issues/1/comments", "PATCH /repos/acme/bench/issues/1"]
    );
    assert!(slack.rejected.lock().unwrap().is_empty() && github.refused.lock().unwrap().is_empty());

    // What was sent, by SQL: one row per group and channel.
    let group = format!("verdict/{last}");
    let done = wait_or_log(&up, "the resolution's outcomes in Parquet", || Some(outcomes(&up, &group)).filter(|o| o.len() == 4));
    let row = |c: &str, r: &str| (c.to_string(), "sent".to_string(), 1, r.to_string());
    assert_eq!(done, [row("log", ""), row("oncall-mail", header(&smtp.messages()[2], "Message-ID")), row("oncall-slack", ""), row("perf-issues", "#1 closed")]);
    // Groups are keyed to different partitions, each archived on its own schedule: wait for all
    // three, then nothing more may be there.
    let n = wait_or_log(&up, "the three groups' outcomes in Parquet", || Some(sql_n(&up, "SELECT count(*) AS n FROM notifications")).filter(|n| *n >= 12));
    assert_eq!(n, 12, "three groups × four channels, nothing twice");
    // The alerts table flushes on its own schedule, apart from the notifications table.
    let states = wait_or_log(&up, "the five alert changes in Parquet", || {
        Some(sql(&up, "SELECT notify FROM alerts WHERE subject = 'latency_ms' ORDER BY updated_at")).filter(|r| r.len() >= 5)
    });
    let states: Vec<&str> = states.iter().map(|r| r["notify"].as_str().unwrap()).collect();
    assert_eq!(states, ["firing", "none", "worse", "none", "resolved"]);
    let listed = ok(&up.cli(&["alerts", "list", "--all", "--format", "json"]));
    assert!(listed.contains("\"resolved\"") && listed.contains("latency_ms"), "{listed}");
    let logged = up.log.lock().unwrap().lines().filter(|l| l.contains(" WARN") && l.contains("step on box") && l.contains("\"log\"")).count();
    assert_eq!(logged, 3, "the log channel writes one tracing event per message");

    // TRACKIQ_ALERT_SAMPLES=DIR keeps one message of each channel, for people to look at.
    if let Ok(out) = std::env::var("TRACKIQ_ALERT_SAMPLES") {
        let out = Path::new(&out);
        std::fs::create_dir_all(out).unwrap();
        std::fs::write(out.join("slack.json"), serde_json::to_string_pretty(&*slack.messages.lock().unwrap()).unwrap()).unwrap();
        for (i, m) in smtp.messages().iter().enumerate() {
            std::fs::write(out.join(format!("email-{i}.eml")), m).unwrap();
        }
        let calls: Vec<serde_json::Value> = github.calls.lock().unwrap().iter().map(|(m, p, b)| serde_json::json!({"request": format!("{m} {p}"), "body": b})).collect();
        std::fs::write(out.join("github.json"), serde_json::to_string_pretty(&calls).unwrap()).unwrap();
        let log: Vec<String> = up.log.lock().unwrap().lines().filter(|l| l.contains("\"log\"") && l.contains(" WARN")).map(str::to_string).collect();
        std::fs::write(out.join("log.txt"), log.join("\n")).unwrap();
        std::fs::write(out.join("notifications.json"), ok(&up.cli(&["sql", "SELECT n.channel, n.status, n.reason, n.attempts, n.title, CAST(n.at AS BIGINT) - CAST(v.evaluated_at AS BIGINT) AS us_after_verdict FROM notifications n JOIN (SELECT DISTINCT run_id, evaluated_at FROM verdicts) v ON n.run_id = v.run_id ORDER BY n.at", "--format", "json"]))).unwrap();
    }

    // Secrets: not in the logs, the tables, the dead letters or the messages.
    assert_no_secret("the pipeline's log", &up.log.lock().unwrap());
    for t in ["notifications", "alerts", "dlq"] {
        assert_no_secret(t, &ok(&up.cli(&["sql", &format!("SELECT * FROM {t}"), "--format", "json"])));
    }
    assert_no_secret("the emails", &smtp.messages().join("\n"));
    assert_no_secret("the issues", &format!("{:?}", github.calls.lock().unwrap()));
}

#[test]
fn an_outage_is_retried_then_dead_lettered_a_restart_sends_nothing_twice_and_a_silence_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let (slack, github) = (SlackReceiver::start(SLACK_KEY), GithubReceiver::start("acme/bench", GITHUB_TOKEN, 2));
    slack.set_down(true);
    let smtp_port = free_port();
    let env = [("TEST_SLACK_WEBHOOK".to_string(), slack.url.clone()), ("TEST_GITHUB_TOKEN".to_string(), GITHUB_TOKEN.to_string())];
    let config = config(dir.path(), smtp_port, &github.api, 8);
    let brokers = format!("127.0.0.1:{}", free_port());
    let up = Up::start_at(&brokers, &data, &config, &[], &env);

    baseline(&up, "step");
    let bad = record(&up, "step", 12.0);
    // The mail server is not up yet: the email is retried until it is.
    wait_or_log(&up, "a failed email attempt", || up.log.lock().unwrap().lines().any(|l| l.contains("will retry") && l.contains("\"oncall-mail\"")).then_some(()));
    // Python's aiosmtpd where installed: the channel against a second SMTP implementation.
    let smtp = MailServer::aiosmtpd_or_builtin("email delivered to Python's aiosmtpd", &dir.path().join("mail"), smtp_port, "trackiq", SMTP_PASSWORD);
    let group = format!("verdict/{bad}");
    let done = wait_or_log(&up, "every channel's outcome in Parquet", || Some(outcomes(&up, &group)).filter(|o| o.len() == 4));
    let by: std::collections::BTreeMap<&str, (&str, i64)> = done.iter().map(|(c, s, a, _)| (c.as_str(), (s.as_str(), *a))).collect();
    assert_eq!(by["oncall-slack"], ("failed", 8), "Slack answered 503 to all 8 attempts");
    assert_eq!(by["perf-issues"], ("sent", 3), "two 502s, then the issue");
    assert_eq!(by["log"], ("sent", 1));
    assert!(by["oncall-mail"].0 == "sent" && by["oncall-mail"].1 >= 2, "{by:?}");
    assert_eq!(slack.attempts.load(std::sync::atomic::Ordering::SeqCst), 8);
    let dead = sql(&up, "SELECT reason FROM dlq WHERE stage = 'notify'");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("channel `oncall-slack` failed after 8 attempts: Slack webhook: HTTP 503"), "{reason}");
    assert_eq!((smtp.messages().len(), github.calls.lock().unwrap().len()), (1, 1));

    // kill -9 and start again: the recorded outcomes are not sent again, whatever offsets were stored.
    up.kill9();
    slack.set_down(false);
    let up = Up::start_at(&brokers, &data, &config, &[], &env);
    // A second series, silenced before it regresses: recorded, not sent.
    baseline(&up, "quiet");
    let series = wait_or_log(&up, "the quiet series in Parquet", || {
        sql(&up, "SELECT DISTINCT series_id FROM runs WHERE workload = 'quiet'").first().and_then(|r| r["series_id"].as_str().map(str::to_string))
    });
    let silenced = ok(&up.cli(&["alerts", "silence", "--series", &series, "--for", "2h", "--reason", "planned maintenance"]));
    assert!(silenced.starts_with("silence ") && silenced.contains(&series), "{silenced}");
    // Listed at once (from the log, before the archiver wrote it).
    let listed = ok(&up.cli(&["alerts", "silences", "--format", "json"]));
    assert!(listed.contains("planned maintenance") && listed.contains(&series), "{listed}");
    // The silence travels on the alerts topic, the verdict on the verdicts topic: wait until
    // the silence is on record before the regression.
    wait_or_log(&up, "the silence in Parquet", || (sql_n(&up, "SELECT count(*) AS n FROM alert_actions WHERE action = 'silence'") == 1).then_some(()));
    let shown = ok(&up.cli(&["alerts", "silences"]));
    assert!(shown.contains("planned maintenance"), "{shown}");
    let quiet = record(&up, "quiet", 13.0);
    let quiet_group = format!("verdict/{quiet}");
    let recorded = wait_or_log(&up, "the silenced outcomes", || Some(outcomes(&up, &quiet_group)).filter(|o| o.len() == 4));
    assert!(recorded.iter().all(|(_, s, a, _)| s == "silenced" && *a == 0), "{recorded:?}");

    // Acknowledge the first alert: recorded on the alert.
    let id = wait_or_log(&up, "the first alert in Parquet", || {
        sql(&up, "SELECT DISTINCT alert_id FROM alerts WHERE subject = 'latency_ms' AND workload = 'step'").first().and_then(|r| r["alert_id"].as_str().map(str::to_string))
    });
    ok(&up.cli(&["alerts", "ack", &id, "--by", "ana", "--reason", "bisecting"]));
    wait_or_log(&up, "the ack", || (sql_n(&up, &format!("SELECT count(*) AS n FROM alerts WHERE alert_id = '{id}' AND acked_by = 'ana'")) == 1).then_some(()));

    // Nothing of the first group was sent again after the restart; nothing of the silenced one at all.
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(github.sequence(), ["POST /repos/acme/bench/issues"]);
    assert!(slack.messages.lock().unwrap().is_empty());
    assert_eq!(sql_n(&up, &format!("SELECT count(*) AS n FROM notifications WHERE group_key = '{group}'")), 4);
    assert_no_secret("the pipeline's log", &up.log.lock().unwrap());
    assert_no_secret("the dead letters", &ok(&up.cli(&["sql", "SELECT * FROM dlq", "--format", "json"])));
}
