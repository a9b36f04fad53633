use super::*;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

use crate::streams::otlp_decode::{Attributes, decode, exponential};
use crate::streams::reading::{Observation, Reading};

/// `observations` with `[otlp]`'s default attribute lists.
fn observations(req: &ExportMetricsServiceRequest, config: &OtlpConfig, now_us: i64) -> Result<Vec<Observation>, String> {
    crate::streams::otlp_decode::observations(req, &Attributes { version: &config.version_attributes, labels: &config.label_attributes }, now_us)
}

/// An OTLP/JSON request as the specification writes one (64-bit integers as strings).
const JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"llm-serving"}},
  {"key":"service.version","value":{"stringValue":"v2.4.1"}},
  {"key":"host.name","value":{"stringValue":"gpu-7"}},
  {"key":"process.pid","value":{"intValue":"4242"}},
  {"key":"deployment.environment","value":{"stringValue":"prod"}}]},
 "scopeMetrics":[{"metrics":[
  {"name":"gen_ai.server.time_to_first_token","unit":"s","histogram":{"aggregationTemporality":2,"dataPoints":[
    {"timeUnixNano":"1764931200000000000","startTimeUnixNano":"1764931100000000000","count":"4","bucketCounts":["1","2","1"],"explicitBounds":[0.1,0.2]}]}},
  {"name":"gpu_power_watts","gauge":{"dataPoints":[{"timeUnixNano":"1764931200000000000","asDouble":287.5,"attributes":[{"key":"gpu","value":{"intValue":"0"}}]}]}},
  {"name":"requests","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"timeUnixNano":"1764931200000000000","startTimeUnixNano":"1764931190000000000","asInt":"50"}]}}
 ]}]}]}"#;

#[test]
fn json_requests_become_observations_of_their_resource() {
    let req = decode(JSON.as_bytes(), true).expect("OTLP/JSON decodes");
    let obs = observations(&req, &OtlpConfig::default(), 0).unwrap();
    assert_eq!(obs.len(), 1);
    let o = &obs[0];
    assert_eq!((o.target.job.as_str(), o.target.instance.as_str(), o.version.as_deref()), ("llm-serving", "gpu-7", Some("v2.4.1")));
    assert_eq!(o.target.labels, BTreeMap::from([("deployment.environment".to_string(), "prod".to_string())]), "process.pid is not part of the series");
    assert_eq!(o.at_us, 1_764_931_200_000_000);
    let Reading::CumulativeHistogram(h) = &o.points[0].reading else { panic!("{:?}", o.points[0]) };
    assert_eq!((h.bounds.clone(), h.counts.clone()), (vec![0.1, 0.2, f64::INFINITY], vec![1.0, 2.0, 1.0]));
    assert_eq!(o.points[1].reading, Reading::Gauge(287.5));
    assert_eq!(o.points[2].reading, Reading::Delta { value: 50.0, over_us: 10_000_000 });
}

#[test]
fn protobuf_round_trips_and_bad_points_are_named() {
    let req = decode(JSON.as_bytes(), true).unwrap();
    let again = decode(&req.encode_to_vec(), false).expect("protobuf decodes");
    assert_eq!(again, req);
    let bad = JSON.replace(r#"["1","2","1"]"#, r#"["1","2"]"#);
    let e = observations(&decode(bad.as_bytes(), true).unwrap(), &OtlpConfig::default(), 0).unwrap_err();
    assert!(e.contains("resourceMetrics[0].scopeMetrics[0].metrics[0] (`gen_ai.server.time_to_first_token`): dataPoints[0]: 2 bucketCounts for 2 explicitBounds"), "{e}");
    let e = decode(b"\xff\xff\xff", false).unwrap_err();
    assert!(e.contains("protobuf body is not an ExportMetricsServiceRequest"), "{e}");
    let e = decode(br#"{"resourceMetrics":[{"scopeMetrics":"no"}]}"#, true).unwrap_err();
    assert!(e.contains("not an ExportMetricsServiceRequest") && e.contains("expected a sequence"), "{e}");
}

#[test]
fn exponential_buckets_become_explicit_ones() {
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets as Exp;
    // Scale 0: base 2; offset 3: buckets (8,16], (16,32].
    let p = ExponentialHistogramDataPoint { scale: 0, zero_count: 1, positive: Some(Exp { offset: 3, bucket_counts: vec![2, 5] }), ..Default::default() };
    let b = exponential(&p, 1.0);
    assert_eq!((b.bounds, b.counts), (vec![0.0, 16.0, 32.0], vec![1.0, 2.0, 5.0]));
}

#[test]
fn a_receiver_off_loopback_needs_a_token() {
    let open = OtlpConfig { listen: "0.0.0.0:4318".into(), ..Default::default() };
    assert!(check_listen(&open, false).unwrap_err().to_string().contains("[otlp] token"));
    assert!(check_listen(&open, true).is_ok());
    assert!(check_listen(&OtlpConfig::default(), false).is_ok());
}

/// Inputs found by fuzz target `otlp_decode` (`tests/fuzz_regressions/otlp_decode/`): the
/// specification's request with one histogram bound turned into NaN; it decodes, and its
/// observations are refused naming the bound (a NaN bound passed the order check alone).
#[test]
fn fuzz_findings_are_answered_not_taken() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/otlp_decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        let req = decode(&body, false).expect("a protobuf request");
        let e = observations(&req, &OtlpConfig::default(), 0).unwrap_err();
        assert!(e.contains("explicitBounds hold NaN, not a finite number") && e.contains("gen_ai.server.time_to_first_tok"), "{e}");
        seen += 1;
    }
    assert_eq!(seen, 1);
}
