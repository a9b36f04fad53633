//! History written before validation existed may hold NaN values. SQL must return NaN for
//! them, never another row's value: Parquet's min/max statistics leave NaN out, so a reader
//! that answers from statistics (or prunes with them) would be wrong.

use trackiq_infra::DataStore;
use trackiq_infra::runtime::Position;
use trackiq_processors::archiver::Archive;
use trackiq_schemas::{AnyEvent, Sample, SampleBatch};

fn batch(values: &[f64]) -> AnyEvent {
    let samples = values
        .iter()
        .enumerate()
        .map(|(i, &v)| Sample { ts_us: 1_763_900_000_000_000 + i as i64, metric: "latency_ms".into(), value: v, unit: "ms".into(), rank: None, step: Some(i as i64) })
        .collect();
    AnyEvent::SampleBatch(SampleBatch { run_id: "r".into(), seq: 0, samples })
}

#[test]
fn nan_in_parquet_is_returned_as_nan() {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(nan_in_parquet());
}

async fn nan_in_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let store = DataStore::open(&format!("file://{}", dir.path().display())).unwrap();
    let mut archive = Archive::open(store.clone(), "test").await.unwrap();
    let position = Position { topic: "trackiq.runs".into(), partition: 0, offset: 0 };
    archive.add(&position, Some(1_763_900_000_000), batch(&[1.0, f64::NAN, 3.0]));
    for slot in archive.due(0, std::time::Duration::ZERO, true) {
        archive.flush(&slot).await.unwrap();
    }
    let ctx = trackiq_infra::tables::session(&store).await.unwrap();
    let q = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            datafusion::arrow::util::pretty::pretty_format_batches(&b).unwrap().to_string()
        }
    };
    // DataFusion orders NaN above every number (IEEE total order): max is NaN, and NaN > 2.
    assert_eq!(q("SELECT max(value) AS v FROM samples").await, table("NaN"));
    assert_eq!(q("SELECT min(value) AS v FROM samples").await, table("1.0"));
    assert_eq!(q("SELECT value AS v FROM samples WHERE step = 1").await, table("NaN"));
    assert_eq!(q("SELECT count(*) AS v FROM samples WHERE value > 2").await, table("2"));
    assert_eq!(q("SELECT count(*) AS v FROM samples WHERE isnan(value)").await, table("1"));
}

/// A one-column, one-row table `v` as DataFusion prints it.
fn table(v: &str) -> String {
    let w = v.len().max(1);
    let line = format!("+{}+", "-".repeat(w + 2));
    format!("{line}\n| {:<w$} |\n{line}\n| {v:<w$} |\n{line}", "v")
}
