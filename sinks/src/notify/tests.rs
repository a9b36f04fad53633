//! The notifier without Kafka or endpoints: messages and their escaping, Block Kit limits,
//! template overrides, secrets, settings errors, and a group sent once even when replayed.

use std::collections::BTreeMap;
use std::time::Instant;

use trackiq_infra::runtime::{Input, Position, Stage};
use trackiq_schemas::*;

use super::message::{MessageModel, Templates};
use super::*;

const HOSTILE: &str = "<script>alert(1)</script> *bold* | pipe";

fn alert(subject: &str, index: i32, size: i32) -> Alert {
    Alert {
        alert_id: format!("id-{subject}"), series_id: "series".into(), subject: subject.into(), kind: AlertKind::Regression, state: AlertState::Firing,
        severity: Severity::Block, run_id: "run-1".into(), value: Some(12.0), baseline: Some(10.0), change_pct: Some(20.0), change_ci_low: Some(15.0),
        change_ci_high: Some(25.0), pvalue: Some(0.00012), message: "latency_ms is 12 against 10".into(), workload: HOSTILE.into(), hardware: "h100".into(),
        version_tag: Some("v2".into()), git_commit: Some("abc123".into()), labels: BTreeMap::new(), fired_at: 1_764_000_000_000_000, updated_at: 1_764_000_000_000_000,
        notified_at: None, notified_change_pct: Some(20.0), notify: NotifyReason::Firing, silenced_by: None, acked_by: None, ok_runs: 0, series_firing: size,
        group_key: "verdict/run-1".into(), group_size: size, group_index: index,
    }
}

fn model(alerts: &[Alert]) -> MessageModel {
    let refs: Vec<&Alert> = alerts.iter().collect();
    let mut m = MessageModel::new(&refs, "https://reports.example", Some("http://dash.example"));
    m.title = Templates::load(None).unwrap().title(&m).unwrap();
    m
}

#[test]
fn user_strings_are_escaped_for_slack_markdown_and_html() {
    let t = Templates::load(None).unwrap();
    let m = model(&[alert("latency_ms", 0, 1)]);
    let body = slack::body(&m, &m.title, &t.render("slack.mrkdwn", &m).unwrap());
    let fields = body["attachments"][0]["blocks"][1]["fields"].to_string();
    assert!(fields.contains("&lt;script&gt;") && !fields.contains("<script>"), "{fields}");
    let details = body["attachments"][0]["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(details.contains("10 → *12* (+20.0 %), 95 % CI [+15.0 %, +25.0 %], p = 1.2e-4"), "{details}");
    let html = t.render("email.html", &m).unwrap();
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "tera autoescapes the HTML email");
    let md = t.render("github.md", &m).unwrap();
    assert!(md.contains("&lt;script&gt;") && md.contains("\\| pipe"), "{md}");
    assert!(md.contains("| `latency_ms` | block | 10 | 12 | +20.0 % | [+15.0 %, +25.0 %] | 1.2e-4 |"), "{md}");
}

#[test]
fn a_note_is_titled_as_one_and_leads_with_its_first_line() {
    let mut a = alert("latency_ms", 0, 1);
    (a.notify, a.severity, a.message) = (NotifyReason::Note, Severity::Warn, "not reproduced: +0.4 % [-1.8, +2.6], p = 3.1e-1 (by ci)\nrounds: 5".into());
    let m = model(&[a]);
    assert_eq!(m.title, format!("[NOTE] {HOSTILE} on h100 at v2: latency_ms: not reproduced: +0.4 % [-1.8, +2.6], p = 3.1e-1 (by ci)"));
    let md = Templates::load(None).unwrap().render("github.md", &m).unwrap();
    assert!(md.contains("| `latency_ms` | warn (note) |"), "{md}");
}

#[test]
fn block_kit_limits_hold_for_long_names_and_large_groups() {
    let long = "m".repeat(400);
    let alerts: Vec<Alert> = (0..40).map(|i| alert(&format!("{long}{i}"), i, 40)).collect();
    let m = model(&alerts);
    let t = Templates::load(None).unwrap();
    let body = slack::body(&m, &m.title, &t.render("slack.mrkdwn", &m).unwrap());
    let blocks = body["attachments"][0]["blocks"].as_array().unwrap();
    assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= slack::HEADER_MAX);
    assert!(blocks[2]["text"]["text"].as_str().unwrap().chars().count() <= slack::SECTION_MAX);
    assert!(blocks[1]["fields"].as_array().unwrap().len() <= 10);
    assert!(m.title.contains("(+39 more)"), "{}", m.title);
}

#[test]
fn templates_are_replaced_from_a_directory_and_a_broken_one_is_named() {
    let dir = std::env::temp_dir().join(format!("trackiq-templates-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("title.txt"), "PERF {{ severity | upper }} {{ headline }}").unwrap();
    let t = Templates::load(Some(&dir)).unwrap();
    let m = model(&[alert("latency_ms", 0, 1)]);
    assert_eq!(t.title(&m).unwrap(), "PERF BLOCK latency_ms +20.0 %");
    std::fs::write(dir.join("email.html"), "{% if %}").unwrap();
    let err = Templates::load(Some(&dir)).err().expect("a broken template is refused").to_string();
    assert!(err.contains("email.html"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secrets_are_read_from_env_or_files_and_never_shown() {
    let path = std::env::temp_dir().join(format!("trackiq-secret-{}", std::process::id()));
    std::fs::write(&path, "s3cr3t-value\n").unwrap();
    let s = Secret::read("mail", "password", &SecretSource::File(path.clone())).unwrap();
    assert_eq!(s.expose(), "s3cr3t-value");
    assert!(!format!("{s:?}").contains("s3cr3t"));
    std::fs::remove_file(&path).unwrap();
    let err = crate::SinkError::from(Secret::read("slack", "webhook_url", &SecretSource::Env("TRACKIQ_TEST_UNSET_VARIABLE".into())).unwrap_err()).to_string();
    assert_eq!(err, "notification channel `slack`: webhook_url: environment variable TRACKIQ_TEST_UNSET_VARIABLE is not set");
}

#[test]
fn settings_errors_name_the_channel() {
    let log = |n: &str| ChannelConfig::Log { name: n.into(), send_resolved: true };
    let config = NotifyConfig { channels: vec![log("a"), log("a")], ..Default::default() };
    assert!(NotifyStage::new(config, Topics::default(), "file:///d").err().unwrap().to_string().contains("two channels are named `a`"));
    let route = RouteConfig {
        channels: vec!["pager".into()], min_severity: None, kinds: vec![], workloads: vec![], hardware: vec![], labels: BTreeMap::new(), continue_matching: false,
    };
    let config = NotifyConfig { channels: vec![log("a")], routes: vec![route], ..Default::default() };
    assert!(NotifyStage::new(config, Topics::default(), "file:///d").err().unwrap().to_string().contains("channel `pager`, which is not configured"));
}

fn input(a: &Alert, offset: i64) -> Input {
    Input { position: Position { topic: "trackiq.alerts".into(), partition: 0, offset }, timestamp_ms: None, event: AnyEvent::Alert(Box::new(a.clone())) }
}

#[test]
fn a_group_is_held_until_complete_sent_once_and_not_again_after_a_restart() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = NotifyConfig { channels: vec![ChannelConfig::Log { name: "log".into(), send_resolved: true }], ..Default::default() };
    let group = [alert("latency_ms", 0, 2), alert("throughput", 1, 2)];
    let mut stage = NotifyStage::new(config.clone(), Topics::default(), "file:///d").unwrap();
    let first = rt.block_on(stage.handle(input(&group[0], 5), Instant::now())).unwrap();
    assert!(first.hold_input && first.publish.is_empty(), "the first of two is held");
    let second = rt.block_on(stage.handle(input(&group[1], 6), Instant::now())).unwrap();
    assert_eq!(second.release, [Position { topic: "trackiq.alerts".into(), partition: 0, offset: 5 }]);
    assert_eq!(second.publish.len(), 1, "one message for the group");
    let AnyEvent::Notification(n) = registry().decode_any(&second.publish[0].payload).unwrap() else { panic!() };
    assert_eq!((n.notification_id.as_str(), n.status, n.alert_ids.len()), ("verdict/run-1/log", NotificationStatus::Sent, 2));
    // A restarted notifier that has read the outcome back replays the group without sending.
    let mut restarted = NotifyStage::new(config, Topics::default(), "file:///d").unwrap();
    restarted.restore(&n);
    rt.block_on(restarted.handle(input(&group[0], 5), Instant::now())).unwrap();
    let replay = rt.block_on(restarted.handle(input(&group[1], 6), Instant::now())).unwrap();
    assert!(replay.publish.is_empty() && replay.release.len() == 1, "nothing sent or recorded twice");
}
