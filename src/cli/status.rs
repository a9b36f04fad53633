//! `trackiq status`: what a running `trackiq up` says about itself, read from its metrics
//! endpoint: one row per stage, consumer lag per partition, Parquet written per table.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use trackiq::config::Config;

use super::history::table;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Metrics address of `trackiq up`. Default: metrics.listen (env TRACKIQ_METRICS_LISTEN).
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<String>,
    /// Output format: tables, or the same data as one JSON document.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    format: StatusFormat,
}

/// One sample line of the exposition (the parser is the scrape jobs' own).
pub(crate) use trackiq_producers::streams::exposition::Sample;

/// One stage of the pipeline.
#[derive(Debug, Default, PartialEq, Serialize)]
struct StageStatus {
    stage: String,
    /// None when the stage reported counters but never its health.
    up: Option<bool>,
    records_in: u64,
    records_out: u64,
    errors: u64,
    errors_by_kind: BTreeMap<String, u64>,
    dead_letters: u64,
    retries: u64,
    restarts: u64,
    /// Sum of the known lag of the stage's partitions.
    lag: i64,
    last_effect_unix: Option<f64>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct PartitionLag {
    stage: String,
    topic: String,
    partition: i32,
    lag: i64,
}

#[derive(Debug, Default, PartialEq, Serialize)]
struct TableWrites {
    table: String,
    files: u64,
    bytes: u64,
}

/// One scrape target of a `[[scrape]]` job.
#[derive(Debug, Default, PartialEq, Serialize)]
struct ScrapeTarget {
    job: String,
    instance: String,
    up: bool,
    failures: u64,
}

/// Everything `trackiq status` prints, in the table or as JSON.
#[derive(Debug, Default, PartialEq, Serialize)]
struct Status {
    stages: Vec<StageStatus>,
    /// Partitions whose lag is above 0.
    lag: Vec<PartitionLag>,
    parquet: Vec<TableWrites>,
    /// Scrape targets, down ones first.
    targets: Vec<ScrapeTarget>,
}

pub async fn run(config: Config, a: StatusArgs) -> anyhow::Result<ExitCode> {
    let addr = match a.metrics {
        Some(addr) => addr,
        None if !config.metrics.enabled => bail!("metrics are off in the configuration (metrics.enabled = false), so `trackiq up` serves none; pass --metrics HOST:PORT to read another instance"),
        None => config.metrics.listen,
    };
    let status = status(&parse(&fetch(&addr).await?).with_context(|| format!("the metrics at {addr} are not in the Prometheus text format"))?);
    match a.format {
        StatusFormat::Table => print!("{}", render(&status, unix_now())),
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn fetch(addr: &str) -> anyhow::Result<String> {
    if addr.ends_with(":0") {
        bail!("the metrics address {addr} has port 0 (a free port chosen at start-up): pass --metrics with the address `trackiq up` printed");
    }
    let url = format!("http://{addr}/metrics");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() || e.is_timeout() => {
            bail!("nothing answers at {url}: is `trackiq up` running? its metrics address is {addr} (metrics.listen, TRACKIQ_METRICS_LISTEN or --metrics)")
        }
        Err(e) => return Err(e).with_context(|| format!("fetching {url}")),
    };
    let response = response.error_for_status().with_context(|| format!("{addr} answered, but not with metrics: is it `trackiq up`?"))?;
    Ok(response.text().await?)
}

/// Parses the sample lines of the text format as `PipelineMetrics::encode` writes them.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<Sample>> {
    Ok(trackiq_producers::streams::exposition::parse(text)?.samples)
}

/// The stages as rows of `trackiq_sinks::dashboard::HEALTH_COLUMNS`, from `PipelineMetrics::encode`.
pub(crate) fn health_rows(text: &str) -> Vec<Vec<String>> {
    let Ok(samples) = parse(text) else { return Vec::new() };
    status(&samples)
        .stages
        .into_iter()
        .map(|s| {
            let up = match s.up {
                Some(true) => "up",
                Some(false) => "down",
                None => "?",
            };
            vec![s.stage, up.into(), s.records_in.to_string(), s.records_out.to_string(), s.errors.to_string(), s.dead_letters.to_string(), s.lag.to_string()]
        })
        .collect()
}

fn status(samples: &[Sample]) -> Status {
    let mut stages: BTreeMap<&str, StageStatus> = BTreeMap::new();
    let mut tables: BTreeMap<&str, TableWrites> = BTreeMap::new();
    let mut lag = Vec::new();
    let mut targets: BTreeMap<(&str, &str), ScrapeTarget> = BTreeMap::new();
    for s in samples {
        let label = |k: &str| s.labels.get(k).map(String::as_str).unwrap_or_default();
        // Counters are whole numbers; `as` saturates anything odd instead of failing.
        let count = s.value as u64;
        if let (Some(job), Some(instance)) = (s.labels.get("job"), s.labels.get("instance")) {
            let t = targets.entry((job, instance)).or_insert_with(|| ScrapeTarget { job: job.clone(), instance: instance.clone(), up: true, failures: 0 });
            match s.name.as_str() {
                "trackiq_scrape_target_up" => t.up = s.value >= 1.0,
                "trackiq_scrape_failures_total" => t.failures += count,
                _ => {}
            }
            continue;
        }
        if let Some(table) = s.labels.get("table") {
            let t = tables.entry(table).or_insert_with(|| TableWrites { table: table.clone(), ..Default::default() });
            match s.name.as_str() {
                "trackiq_parquet_files_total" => t.files += count,
                "trackiq_parquet_bytes_total" => t.bytes += count,
                _ => {}
            }
            continue;
        }
        let Some(name) = s.labels.get("stage") else { continue };
        let st = stages.entry(name).or_insert_with(|| StageStatus { stage: name.clone(), ..Default::default() });
        match s.name.as_str() {
            "trackiq_stage_records_in_total" => st.records_in += count,
            "trackiq_stage_records_out_total" => st.records_out += count,
            "trackiq_stage_errors_total" => {
                st.errors += count;
                *st.errors_by_kind.entry(label("kind").to_string()).or_default() += count;
            }
            "trackiq_dead_letters_total" => st.dead_letters += count,
            "trackiq_stage_retries_total" => st.retries += count,
            "trackiq_stage_restarts_total" => st.restarts += count,
            "trackiq_stage_up" => st.up = Some(s.value >= 1.0),
            "trackiq_stage_last_effect_seconds" => st.last_effect_unix = Some(s.value),
            // librdkafka reports -1 while a partition's lag is unknown: not counted as lag.
            "trackiq_consumer_lag" if s.value > 0.0 => {
                let l = s.value as i64;
                st.lag += l;
                lag.push(PartitionLag { stage: name.clone(), topic: label("topic").to_string(), partition: label("partition").parse().unwrap_or(-1), lag: l });
            }
            _ => {}
        }
    }
    lag.sort();
    let mut targets: Vec<ScrapeTarget> = targets.into_values().collect();
    targets.sort_by_key(|t| t.up);
    Status { stages: stages.into_values().collect(), lag, parquet: tables.into_values().collect(), targets }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// How long ago `t` (unix seconds) was, for people.
fn ago(t: Option<f64>, now: f64) -> String {
    let Some(t) = t else { return "never".into() };
    let s = (now - t).max(0.0);
    match s {
        s if s < 120.0 => format!("{s:.0} s ago"),
        s if s < 7200.0 => format!("{:.0} min ago", s / 60.0),
        s => format!("{:.1} h ago", s / 3600.0),
    }
}

/// The tables, with `now` (unix seconds) for the age of each stage's last effect.
fn render(s: &Status, now: f64) -> String {
    let mut out = String::new();
    if s.stages.is_empty() {
        out.push_str("no stage has reported yet\n");
    } else {
        let mut t = table(&["stage", "up", "records in", "records out", "errors", "dead letters", "retries", "restarts", "lag", "last effect"]);
        for st in &s.stages {
            let up = match st.up {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "?",
            };
            let n = [st.records_in, st.records_out, st.errors, st.dead_letters, st.retries, st.restarts].map(|n| n.to_string());
            t.add_row([st.stage.clone(), up.into()].into_iter().chain(n).chain([st.lag.to_string(), ago(st.last_effect_unix, now)]));
        }
        out.push_str(&format!("{t}\n"));
    }
    if s.lag.is_empty() {
        out.push_str("consumer lag: none\n");
    } else {
        let mut t = table(&["stage", "topic", "partition", "lag"]);
        for l in &s.lag {
            t.add_row([l.stage.clone(), l.topic.clone(), l.partition.to_string(), l.lag.to_string()]);
        }
        out.push_str(&format!("consumer lag\n{t}\n"));
    }
    if s.parquet.is_empty() {
        out.push_str("Parquet: nothing written yet\n");
    } else {
        let mut t = table(&["table", "files", "bytes"]);
        for w in &s.parquet {
            t.add_row([w.table.clone(), w.files.to_string(), w.bytes.to_string()]);
        }
        out.push_str(&format!("Parquet written\n{t}\n"));
    }
    if !s.targets.is_empty() {
        let down = s.targets.iter().filter(|t| !t.up).count();
        let mut t = table(&["job", "target", "up", "failed scrapes"]);
        for x in &s.targets {
            t.add_row([x.job.clone(), x.instance.clone(), if x.up { "yes" } else { "NO (scrape_failed)" }.into(), x.failures.to_string()]);
        }
        out.push_str(&format!("scrape targets: {} up, {down} down\n{t}\n", s.targets.len() - down));
    }
    out
}

#[cfg(test)]
mod tests {
    use trackiq_infra::PipelineMetrics;

    use super::*;

    fn sample_metrics() -> PipelineMetrics {
        let m = PipelineMetrics::new();
        for stage in ["aggregator", "archiver", "verdict"] {
            m.set_up(stage, true);
        }
        m.set_up("webhook", false);
        m.records_in("aggregator", 1200);
        m.records_out("aggregator", 40);
        m.error("aggregator", "transient");
        m.retry("aggregator");
        m.set_lag("aggregator", "trackiq.runs", 0, 0);
        m.set_lag("aggregator", "trackiq.runs", 1, 17);
        m.set_lag("aggregator", "trackiq.runs", 2, 3);
        m.set_lag("archiver", "trackiq.runs", 4, -1);
        m.records_in("archiver", 1240);
        m.parquet_written("samples", 52_000, 100);
        m.parquet_written("samples", 48_000, 100);
        m.parquet_written("summaries", 4_096, 1);
        m.error("verdict", "permanent");
        m.dead_letter("verdict");
        m.error("webhook", "panic");
        m.restart("webhook");
        m.effect_done("aggregator");
        m.scraped("llm-serving", "gpu-1:8000", true);
        m.scraped("llm-serving", "gpu-2:8000", false);
        m
    }

    #[test]
    fn status_is_built_from_what_pipeline_metrics_encodes() {
        let s = status(&parse(&sample_metrics().encode()).unwrap());
        let names: Vec<_> = s.stages.iter().map(|st| st.stage.as_str()).collect();
        assert_eq!(names, ["aggregator", "archiver", "verdict", "webhook"]);
        let agg = &s.stages[0];
        assert_eq!((agg.up, agg.records_in, agg.records_out, agg.errors, agg.retries, agg.lag), (Some(true), 1200, 40, 1, 1, 20));
        assert_eq!(agg.errors_by_kind.get("transient"), Some(&1));
        assert!(agg.last_effect_unix.is_some_and(|t| t > 1.7e9));
        assert_eq!(s.stages[1].lag, 0, "unknown lag (-1) is not lag");
        assert_eq!((s.stages[2].errors, s.stages[2].dead_letters), (1, 1));
        assert_eq!((s.stages[3].up, s.stages[3].restarts), (Some(false), 1));
        let lag: Vec<_> = s.lag.iter().map(|l| (l.stage.as_str(), l.partition, l.lag)).collect();
        assert_eq!(lag, [("aggregator", 1, 17), ("aggregator", 2, 3)]);
        assert_eq!(s.parquet, [TableWrites { table: "samples".into(), files: 2, bytes: 100_000 }, TableWrites { table: "summaries".into(), files: 1, bytes: 4_096 }]);
        let targets: Vec<(&str, bool, u64)> = s.targets.iter().map(|t| (t.instance.as_str(), t.up, t.failures)).collect();
        assert_eq!(targets, [("gpu-2:8000", false, 1), ("gpu-1:8000", true, 0)], "down targets first");
        assert!(render(&s, 0.0).contains("scrape targets: 1 up, 1 down"));
    }

    #[test]
    fn tables_show_every_stage_lag_and_parquet() {
        let m = sample_metrics();
        let s = status(&parse(&m.encode()).unwrap());
        let now = s.stages[0].last_effect_unix.unwrap() + 3.0;
        let out = render(&s, now);
        println!("{out}");
        // Table rows as their cells.
        let rows: Vec<Vec<&str>> = out.lines().filter(|l| l.starts_with('│')).map(|l| l.split(['│', '┆']).map(str::trim).filter(|c| !c.is_empty()).collect()).collect();
        for row in [
            &["aggregator", "yes", "1200", "40", "1", "0", "1", "0", "20", "3 s ago"][..],
            &["webhook", "NO", "0", "0", "1", "0", "0", "1", "0", "never"],
            &["aggregator", "trackiq.runs", "1", "17"],
            &["aggregator", "trackiq.runs", "2", "3"],
            &["samples", "2", "100000"],
            &["summaries", "1", "4096"],
        ] {
            assert!(rows.iter().any(|r| r == row), "row {row:?} missing in\n{out}");
        }
        assert!(!rows.iter().any(|r| r.get(2) == Some(&"4")), "partition 4 has unknown lag and is not listed\n{out}");
        assert_eq!(render(&Status::default(), now), "no stage has reported yet\nconsumer lag: none\nParquet: nothing written yet\n");
    }

    #[test]
    fn label_values_are_unescaped() {
        let m = PipelineMetrics::new();
        m.records_in("odd \"stage\", a\\b\nc", 2);
        let samples = parse(&m.encode()).unwrap();
        assert_eq!(samples[0].labels["stage"], "odd \"stage\", a\\b\nc");
        assert_eq!(samples[0].value, 2.0);
        assert!(parse("trackiq_x{stage=\"open} 1").is_err());
        assert!(parse("trackiq_x one").unwrap_err().to_string().contains("line 1"));
    }

    #[tokio::test]
    async fn reads_a_live_endpoint_and_names_the_address_when_nothing_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (trigger, shutdown) = trackiq_infra::Shutdown::new();
        let server = tokio::spawn(trackiq_infra::metrics::serve(sample_metrics(), listener, shutdown));
        let s = status(&parse(&fetch(&addr).await.unwrap()).unwrap());
        assert_eq!(s.stages.len(), 4);
        trigger.trigger();
        server.await.unwrap().unwrap();
        let err = fetch(&addr).await.unwrap_err().to_string();
        assert!(err.contains("is `trackiq up` running?") && err.contains(&addr), "{err}");
    }
}
