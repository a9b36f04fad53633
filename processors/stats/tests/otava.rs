//! Apache Otava's answers on the TigerBeetle benchmark history (9 parameter sets), copied
//! from `../shared/conformance/changepoint/tigerbeetle.json` (apache/otava
//! tests/tigerbeetle_test.py, Apache-2.0). Every case must match exactly.

use trackiq_stats::changepoint::{ChangePointParams, change_points};

#[test]
fn tigerbeetle_cases_match_otava_exactly() {
    let data: serde_json::Value = serde_json::from_str(include_str!("fixtures/tigerbeetle.json")).unwrap();
    let series: Vec<f64> = data["series"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(series.len(), 365);
    let mut failures = Vec::new();
    for case in data["cases"].as_array().unwrap() {
        let params = ChangePointParams {
            window_len: case["window_len"].as_u64().unwrap() as usize,
            max_pvalue: case["max_pvalue"].as_f64().unwrap(),
            min_magnitude: case["min_magnitude"].as_f64().unwrap(),
        };
        let expected: Vec<usize> = case["expected_change_points"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let got: Vec<usize> = change_points(&series, &params).iter().map(|c| c.index).collect();
        if got != expected {
            failures.push(format!("{}: expected {expected:?}\n got {got:?}", case["name"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
