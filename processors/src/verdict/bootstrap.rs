//! Start-up state of the verdict processor, rebuilt whether or not its consumer group has
//! committed offsets, and whether or not the broker is the one the history was written
//! through:
//!
//! 1. Pins from the `baselines` table, in the order they were set.
//! 2. From the `summaries` table, the last M judged runs of every series (runs that have a
//!    row in `verdicts`; M = baseline window + trend window + sustained-shift streak: the
//!    state is bounded), re-judged in start order without emitting.
//! 3. The tail of the verdicts topic that the archiver has not written yet in this log
//!    incarnation: each verdict carries the summary it judged.
//!
//! Then the processor consumes summaries from its committed offsets (the earliest when it has
//! none: a new broker). A summary judged before is recognised by its run id and not judged
//! twice; a summary whose verdict was never published is judged then, because its offset
//! was never stored.

use std::collections::BTreeMap;

use tracing::info;
use trackiq_infra::replay::{read_log, replay_consumer};
use trackiq_infra::tables::{Row, query_rows};
use trackiq_infra::{Bus, DataStore};
use trackiq_schemas::{
    AnyEvent, BaselinePin, DerivedMetric, MetricSummary, PinnedRun, Platform, RunStarted, RunStatus, RunSummary, VersionInfo, Workload,
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
    /// Verdicts re-read from the log (not yet archived).
    pub from_log: usize,
}

/// First offset per partition of `topic` not yet archived to `table` in incarnation `incarnation`.
async fn unarchived_from(store: &DataStore, table: &str, topic: &str, incarnation: &str) -> Result<BTreeMap<i32, i64>, ProcessorError> {
    let (last, _) = crate::archiver::archived_last_offsets(store, table, incarnation).await?;
    Ok(last.into_iter().filter(|((t, _), _)| t == topic).map(|((_, partition), offset)| (partition, offset + 1)).collect())
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
                min: g("min"), p50: g("p50"), p90: g("p90"), p95: g("p95"), p99: g("p99"), max: g("max"), histogram: None, percentile_error: None,
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

/// Builds the start-up state (see the module doc). `incarnation` is the short id of the
/// current log incarnation (see `archiver::naming`).
pub async fn bootstrap(bus: &Bus, store: &DataStore, config: &VerdictConfig, incarnation: &str) -> Result<(Baselines, BootstrapStats), ProcessorError> {
    let topics = bus.topics().clone();
    let mut baselines = Baselines::new(config.clone());
    let mut stats = BootstrapStats::default();
    // Pins, in the order they were set.
    let pin_sql = "SELECT series_id, run_id, metric, value, CAST(set_at AS BIGINT) AS set_us FROM baselines ORDER BY set_at, kafka_partition, kafka_offset";
    let mut pins: BTreeMap<(i64, String), BaselinePin> = BTreeMap::new();
    for r in query(store, pin_sql).await? {
        let (Some(series), Some(set_us)) = (s(&r, "series_id"), i(&r, "set_us")) else { continue };
        let pin = pins.entry((set_us, series.clone())).or_insert_with(|| BaselinePin { series_id: series, runs: Vec::new(), set_at: set_us, reason: None });
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
    // Listed before the SQL below: a verdict archived in between is then read twice (judging
    // dedupes by run id), never missed.
    let from = unarchived_from(store, "verdicts", &topics.verdicts, incarnation).await?;
    // The last M judged runs of every series, one record per run, in start order.
    let keep = config.window + config.trends.window + config.findings.sustained_runs;
    let sql = format!(
        "WITH judged AS (SELECT DISTINCT run_id FROM verdicts), \
         recs AS (SELECT series_id, run_id, started_at, min(kafka_partition * 1000000000000 + kafka_offset) AS rec FROM summaries \
                  WHERE run_id IN (SELECT run_id FROM judged) GROUP BY series_id, run_id, started_at), \
         ranked AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY series_id ORDER BY started_at DESC) AS rn FROM recs) \
         SELECT s.run_id, s.series_id, s.tool, CAST(s.started_at AS BIGINT) AS started_us, s.status, s.kind, s.metric, s.unit, s.count, s.mean, s.stdev, \
                s.min, s.p50, s.p90, s.p95, s.p99, s.max, r.rec \
         FROM summaries s JOIN ranked r ON s.run_id = r.run_id AND s.kafka_partition * 1000000000000 + s.kafka_offset = r.rec \
         WHERE r.rn <= {keep} ORDER BY s.started_at, r.rec"
    );
    let mut records: BTreeMap<(i64, i64), Vec<Row>> = BTreeMap::new();
    for r in query(store, &sql).await? {
        if let (Some(started), Some(rec)) = (i(&r, "started_us"), i(&r, "rec")) {
            records.entry((started, rec)).or_default().push(r);
        }
    }
    for rows in records.values() {
        if let Some(summary) = summary_of(rows) {
            baselines.judge(&summary, 0);
            stats.summaries_from_parquet += 1;
        }
    }
    // Runs judged longer ago than the history kept above: known, so a replay never judges
    // them twice (the most recent ids per series, as `judge` keeps them).
    let judged_sql = "SELECT series_id, run_id FROM (SELECT series_id, run_id, max(evaluated_at) AS at FROM verdicts GROUP BY series_id, run_id) ORDER BY at";
    for r in query(store, judged_sql).await? {
        if let (Some(series), Some(run)) = (s(&r, "series_id"), s(&r, "run_id")) {
            baselines.mark_judged(&series, &run);
        }
    }
    // Verdicts not archived yet in this log incarnation: each holds the summary it judged.
    let (bus, group, topic) = (bus.clone(), config.group.clone(), topics.verdicts.clone());
    let (from_log, b) = tokio::task::spawn_blocking(move || {
        let c = replay_consumer(&bus, &format!("{group}-bootstrap"))?;
        let mut b = baselines;
        let n = read_log(&c, &topic, &from, |e| {
            if let AnyEvent::Verdict(v) = e {
                b.judge(&v.summary, 0);
            }
        })?;
        Ok::<_, ProcessorError>((n, b))
    })
    .await
    .map_err(|e| ProcessorError::Task(e.to_string()))??;
    stats.from_log = from_log;
    info!(?stats, "verdict state rebuilt");
    Ok((b, stats))
}
