use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::*;

/// Deterministic pseudo-random values: a log-normal-ish latency shape, some negatives and zeros.
fn values(n: usize) -> Vec<f64> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            match i % 50 {
                0 => 0.0,
                1 => -u * 10.0,
                _ => (u * 6.0).exp() * 0.5,
            }
        })
        .collect()
}

fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

#[test]
fn same_sketch_for_any_partitioning_and_merge_order() {
    let v = values(100_000);
    let mut whole = QuantileSketch::default();
    v.iter().for_each(|x| whole.add(*x));
    for parts in [2, 3, 7, 64] {
        let mut sketches: Vec<QuantileSketch> = v
            .chunks(v.len().div_ceil(parts))
            .map(|c| {
                let mut s = QuantileSketch::default();
                c.iter().for_each(|x| s.add(*x));
                s
            })
            .collect();
        for order in 0..2 {
            if order == 1 {
                sketches.reverse();
            }
            let mut merged = QuantileSketch::default();
            sketches.iter().for_each(|s| merged.merge(s));
            assert_eq!(merged, whole, "{parts} parts, order {order}");
            let round = QuantileSketch::from_bytes(&merged.to_bytes()).expect("round trip");
            assert_eq!(round, whole);
        }
    }
}

#[test]
fn within_relative_accuracy_of_the_exact_quantile() {
    let v = values(200_000);
    let mut s = QuantileSketch::default();
    v.iter().for_each(|x| s.add(*x));
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    for q in [0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
        let (got, want) = (s.quantile(q).expect("values"), exact(&sorted, q));
        let err = if want == 0.0 { got.abs() } else { ((got - want) / want).abs() };
        assert!(err <= RELATIVE_ACCURACY + 1e-12, "q={q}: {got} vs exact {want}");
    }
    assert_eq!(QuantileSketch::default().quantile(0.5), None);
    let mut nan = QuantileSketch::default();
    nan.add(f64::NAN);
    nan.add(3.0);
    assert_eq!(nan.count(), 1);
    assert!((nan.quantile(0.5).expect("one value") - 3.0).abs() <= 3.0 * RELATIVE_ACCURACY);
}

async fn sql_answer(batches_of: usize, target_partitions: usize, v: &[f64]) -> Vec<Option<f64>> {
    let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Float64, true)]));
    let batches: Vec<RecordBatch> = v
        .chunks(batches_of)
        .map(|c| RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from(c.to_vec()))]).expect("batch"))
        .collect();
    // One partition per batch, so the merge order follows the scheduler.
    let parts: Vec<Vec<RecordBatch>> = batches.into_iter().map(|b| vec![b]).collect();
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(target_partitions));
    register(&ctx);
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, parts).expect("table"))).expect("register");
    let df = ctx.sql("SELECT approx_quantile(value, 0.5) AS p50, approx_quantile(value, 0.95) AS p95, approx_quantile(value, 0.99) AS p99 FROM t").await.expect("plan");
    let out = df.collect().await.expect("run");
    (0..3).map(|i| out[0].column(i).as_any().downcast_ref::<Float64Array>().map(|a| a.value(0))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_answers_are_identical_across_partitionings() {
    let v = values(50_000);
    let first = sql_answer(50_000, 1, &v).await;
    for (chunk, tp) in [(1_000, 4), (777, 8), (5_000, 2), (1_000, 4)] {
        assert_eq!(sql_answer(chunk, tp, &v).await, first, "chunks of {chunk}, {tp} partitions");
    }
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    for (got, q) in first.iter().zip([0.5, 0.95, 0.99]) {
        let want = exact(&sorted, q);
        assert!(((got.expect("value") - want) / want).abs() <= RELATIVE_ACCURACY + 1e-12);
    }
}

#[tokio::test]
async fn q_must_be_a_constant_in_range() {
    let ctx = SessionContext::new();
    register(&ctx);
    let r = ctx.sql("SELECT approx_quantile(v, 1.5) FROM (VALUES (1.0)) AS t(v)").await;
    let err = match r {
        Ok(df) => df.collect().await.expect_err("q out of range").to_string(),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("between 0 and 1"), "{err}");
}
