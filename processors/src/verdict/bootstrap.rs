//! Start-up state of the verdict processor: the archived history through DataFusion, then
//! the log between what is archived and what the group has committed.
//!
//! 1. Per partition, the group's committed offset C (what was judged before the restart).
//! 2. From the `summaries` Parquet table, the last M runs of every series with offsets
//!    below C (M = baseline window + trend window + sustained-shift streak: the state is
//!    bounded), re-judged in log order without emitting; pins likewise from `baselines`.
//! 3. The log itself from the first offset not archived up to C, for what the archiver has
//!    not written yet.
//!
//! Runs are re-judged in the order the log holds them, so the state is the one continuous
//! processing would have; only runs older than the M kept per series are forgotten.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracing::{info, warn};
use trackiq_infra::tables::{Row, query_rows};
use trackiq_infra::{Bus, DataStore, InfraError};
use trackiq_schemas::{
    AnyEvent, BaselinePin, DerivedMetric, MetricSummary, PinnedRun, Platform, RunStarted, RunStatus, RunSummary, VersionInfo, Workload, registry,
};

use super::{Baselines, VerdictConfig};
use crate::error::ProcessorError;

/// Where the start-up state came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootstrapStats {
    /// Summaries re-judged from Parquet.
    pub summaries_from_parquet: usize,
    /// Pins applied from Parquet.
    pub pins_from_parquet: usize,
    /// Events re-read from the log (not yet archived).
    pub from_log: usize,
}

type Committed = HashMap<(String, i32), i64>;

fn consumer(bus: &Bus, group: &str) -> Result<BaseConsumer, ProcessorError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bus.config().bootstrap()).set("group.id", group).set("enable.auto.commit", "false");
    for (k, v) in &bus.config().options {
        cc.set(k, v);
    }
    Ok(cc.create().map_err(InfraError::kafka("creating the verdict bootstrap consumer"))?)
}

/// The group's committed offsets of `topics` (partitions with none are left out).
fn committed(c: &BaseConsumer, topics: &[&str]) -> Result<Committed, ProcessorError> {
    let timeout = Duration::from_secs(10);
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let md = c.fetch_metadata(Some(topic), timeout).map_err(InfraError::kafka(format!("reading {topic} metadata")))?;
        for p in md.topics().iter().flat_map(|t| t.partitions()) {
            tpl.add_partition(topic, p.id());
        }
    }
    let got = c.committed_offsets(tpl, timeout).map_err(InfraError::kafka("reading committed offsets"))?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o > 0 => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

/// Re-reads `[from, to)` of each partition, feeding events to `apply` in partition order.
fn replay(c: &BaseConsumer, ranges: &BTreeMap<(String, i32), (i64, i64)>, mut apply: impl FnMut(AnyEvent)) -> Result<usize, ProcessorError> {
    let mut assign = TopicPartitionList::new();
    let mut open: HashMap<(String, i32), i64> = HashMap::new();
    for ((topic, p), (from, to)) in ranges {
        if from < to {
            assign.add_partition_offset(topic, *p, Offset::Offset(*from)).map_err(InfraError::kafka("assigning"))?;
            open.insert((topic.clone(), *p), *to);
        }
    }
    if open.is_empty() {
        return Ok(0);
    }
    c.assign(&assign).map_err(InfraError::kafka("assigning partitions to re-read"))?;
    let (mut read, deadline) = (0, std::time::Instant::now() + Duration::from_secs(300));
    while !open.is_empty() && std::time::Instant::now() < deadline {
        let Some(msg) = c.poll(Duration::from_millis(500)) else { continue };
        let msg = msg.map_err(InfraError::kafka("re-reading the log"))?;
        let key = (msg.topic().to_string(), msg.partition());
        let Some(&to) = open.get(&key) else { continue };
        if msg.offset() < to
            && let Ok(e) = registry().decode_any(msg.payload().unwrap_or_default())
        {
            apply(e);
            read += 1;
        }
        if msg.offset() + 1 >= to {
            open.remove(&key);
        }
    }
    if !open.is_empty() {
        warn!(?open, "verdict bootstrap did not reach the committed offsets of every partition");
    }
    Ok(read)
}

fn offset_filter(committed: &Committed, topic: &str) -> String {
    let parts: Vec<String> = committed
        .iter()
        .filter(|((t, _), _)| t == topic)
        .map(|((_, p), c)| format!("(kafka_partition = {p} AND kafka_offset < {c})"))
        .collect();
    if parts.is_empty() { "FALSE".into() } else { parts.join(" OR ") }
}

async fn query(store: &DataStore, sql: &str) -> Result<Vec<Row>, ProcessorError> {
    Ok(query_rows(store, sql).await?)
}

fn s(r: &Row, k: &str) -> Option<String> {
    r.get(k).and_then(|v| v.as_str()).map(str::to_string)
}
fn f(r: &Row, k: &str) -> Option<f64> {
    r.get(k).and_then(|v| v.as_f64())
}
fn i(r: &Row, k: &str) -> Option<i64> {
    r.get(k).and_then(|v| v.as_i64())
}

/// Rebuilds summaries (as far as judging needs them) from `summaries` rows of one record.
fn summary_of(rows: &[Row]) -> Option<RunSummary> {
    let first = rows.first()?;
    let mut metrics = Vec::new();
    let mut derived = Vec::new();
    for r in rows {
        let name = s(r, "metric")?;
        let unit = s(r, "unit").unwrap_or_default();
        let mean = f(r, "mean")?;
        if s(r, "kind").as_deref() == Some("derived") {
            derived.push(DerivedMetric { name, value: mean, unit });
        } else {
            let g = |k: &str| f(r, k).unwrap_or(mean);
            metrics.push(MetricSummary {
                metric: name, unit, count: i(r, "count").unwrap_or(1), mean, stdev: f(r, "stdev"),
                min: g("min"), p50: g("p50"), p90: g("p90"), p95: g("p95"), p99: g("p99"), max: g("max"), histogram: None,
            });
        }
    }
    let status = match s(first, "status")?.as_str() {
        "completed" => RunStatus::Completed,
        "failed" => RunStatus::Failed,
        _ => RunStatus::Incomplete,
    };
    Some(RunSummary {
        run: RunStarted {
            run_id: s(first, "run_id")?,
            tool: s(first, "tool").unwrap_or_default(),
            tool_version: String::new(),
            timestamp: i(first, "started_us")?,
            platform: Platform::default(),
            workload: Workload::default(),
            version: VersionInfo::default(),
            labels: BTreeMap::new(),
            series_id: s(first, "series_id")?,
        },
        status,
        ended_at: 0,
        sample_count: 0,
        expected_sample_count: None,
        error: None,
        metrics,
        derived,
        cluster: None,
    })
}

/// Builds the start-up state: Parquet history through DataFusion, then the unarchived log.
pub async fn bootstrap(bus: &Bus, store: &DataStore, config: &VerdictConfig) -> Result<(Baselines, BootstrapStats), ProcessorError> {
    let topics = bus.topics().clone();
    let c = {
        let (bus, group) = (bus.clone(), config.group.clone());
        let t = [topics.summaries.clone(), topics.baselines.clone()];
        tokio::task::spawn_blocking(move || {
            let c = consumer(&bus, &group)?;
            let committed = committed(&c, &[&t[0], &t[1]])?;
            Ok::<_, ProcessorError>((c, committed))
        })
        .await
        .expect("bootstrap task")?
    };
    let (consumer, committed) = c;
    let mut baselines = Baselines::new(config.clone());
    let mut stats = BootstrapStats::default();
    if committed.is_empty() {
        return Ok((baselines, stats));
    }
    // Pins first: the latest of each series, at or before the committed offsets.
    let pin_sql = format!(
        "SELECT series_id, run_id, metric, value, CAST(set_at AS BIGINT) AS set_us, kafka_partition, kafka_offset FROM baselines WHERE {} ORDER BY kafka_partition, kafka_offset",
        offset_filter(&committed, &topics.baselines)
    );
    let mut pins: BTreeMap<(i64, i64), BaselinePin> = BTreeMap::new();
    for r in query(store, &pin_sql).await? {
        let (Some(p), Some(o), Some(series)) = (i(&r, "kafka_partition"), i(&r, "kafka_offset"), s(&r, "series_id")) else { continue };
        let pin = pins.entry((p, o)).or_insert_with(|| BaselinePin { series_id: series, runs: Vec::new(), set_at: i(&r, "set_us").unwrap_or(0), reason: None });
        if let (Some(run), Some(m), Some(v)) = (s(&r, "run_id"), s(&r, "metric"), f(&r, "value")) {
            match pin.runs.iter_mut().find(|x| x.run_id == run) {
                Some(x) => {
                    x.values.insert(m, v);
                }
                None => pin.runs.push(PinnedRun { run_id: run, values: BTreeMap::from([(m, v)]) }),
            }
        }
    }
    for pin in pins.values() {
        baselines.pin(pin);
        stats.pins_from_parquet += 1;
    }
    // The last M runs of every series, in log order.
    let keep = config.window + config.trends.window + config.findings.sustained_runs;
    let sql = format!(
        "WITH recs AS (SELECT DISTINCT series_id, kafka_partition, kafka_offset FROM summaries WHERE {filter}), \
         ranked AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY series_id ORDER BY kafka_partition DESC, kafka_offset DESC) AS rn FROM recs) \
         SELECT s.run_id, s.series_id, s.tool, CAST(s.started_at AS BIGINT) AS started_us, s.status, s.kind, s.metric, s.unit, s.count, s.mean, s.stdev, \
                s.min, s.p50, s.p90, s.p95, s.p99, s.max, s.kafka_partition, s.kafka_offset \
         FROM summaries s JOIN ranked r ON s.kafka_partition = r.kafka_partition AND s.kafka_offset = r.kafka_offset \
         WHERE r.rn <= {keep} ORDER BY s.kafka_partition, s.kafka_offset",
        filter = offset_filter(&committed, &topics.summaries)
    );
    let mut records: BTreeMap<(i64, i64), Vec<Row>> = BTreeMap::new();
    for r in query(store, &sql).await? {
        if let (Some(p), Some(o)) = (i(&r, "kafka_partition"), i(&r, "kafka_offset")) {
            records.entry((p, o)).or_default().push(r);
        }
    }
    for rows in records.values() {
        if let Some(summary) = summary_of(rows) {
            baselines.judge(&summary, 0);
            stats.summaries_from_parquet += 1;
        }
    }
    // What the archiver has not written yet: from the first unarchived offset to C.
    let mut archived: HashMap<(String, i32), i64> = HashMap::new();
    for (table, topic) in [("summaries", &topics.summaries), ("baselines", &topics.baselines)] {
        for r in query(store, &format!("SELECT kafka_partition, max(kafka_offset) AS hi FROM {table} GROUP BY kafka_partition")).await? {
            if let (Some(p), Some(hi)) = (i(&r, "kafka_partition"), i(&r, "hi")) {
                archived.insert((topic.clone(), p as i32), hi);
            }
        }
    }
    let ranges: BTreeMap<(String, i32), (i64, i64)> = committed
        .iter()
        .map(|(tp, &c)| (tp.clone(), (archived.get(tp).map_or(0, |hi| hi + 1), c)))
        .filter(|(_, (from, to))| from < to)
        .collect();
    let (from_log, b) = tokio::task::spawn_blocking(move || {
        let mut b = baselines;
        let n = replay(&consumer, &ranges, |e| match e {
            AnyEvent::RunSummary(s) => {
                b.judge(&s, 0);
            }
            AnyEvent::BaselinePin(p) => b.pin(&p),
            _ => {}
        })?;
        Ok::<_, ProcessorError>((n, b))
    })
    .await
    .expect("bootstrap task")?;
    stats.from_log = from_log;
    info!(?stats, "verdict state rebuilt");
    Ok((b, stats))
}
