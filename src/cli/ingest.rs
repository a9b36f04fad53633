//! What `POST /api/v1/runs` of `trackiq up` does with a body: the dashboard serves the route
//! (`trackiq_sinks::dashboard::ingest`, which checks the token and the size) and calls this
//! publisher, which parses the body with the importers of `trackiq import`, leaves out the
//! runs the history already holds, publishes the others as `trackiq import` does, and
//! answers with their ids.
//!
//! The same body names the same runs: run ids are derived from the content (and the tool's
//! own time, where it wrote one; a format without one takes the time the body is received,
//! which its ids do not depend on). A repeat the history already holds is answered from it;
//! one posted before the first was archived is published again and kept once by the archiver.
//!
//! A body comes from another machine: where a format records none, its runs name the machine
//! `hardware=` says (or `unknown`), not this server ([`ImportContext::remote`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use tracing::warn;
use trackiq_infra::{Bus, DataStore, InfraError};
use trackiq_producers::ProducerError;
use trackiq_producers::importers::{Format, ImportContext, ImportedRun, emit, parse, parse_time};
use trackiq_sinks::dashboard::ingest::{IngestFailure, IngestFn, IngestParams, Ingested, IngestedRun};

use super::history::archived_runs;

/// The publisher of `POST /api/v1/runs`.
pub fn publisher(bus: Bus, store: DataStore) -> IngestFn {
    Arc::new(move |params: IngestParams, body: Bytes| {
        let (bus, store) = (bus.clone(), store.clone());
        Box::pin(async move {
            let mut runs = read(&params, body, trackiq_schemas::now_us()).await?;
            let archived = match archived_runs(&store, runs.iter().map(|r| r.run.run_id.as_str())).await {
                Ok(a) => a,
                Err(e) => {
                    // The archiver still keeps a repeat of a recent run once.
                    warn!(error = %e, "could not check the history for runs posted before; publishing all");
                    HashMap::new()
                }
            };
            let format = runs.first().and_then(|r| r.run.labels.get("imported_from").cloned()).unwrap_or(params.format);
            let mut answer = Vec::with_capacity(runs.len());
            let mut fresh = Vec::with_capacity(runs.len());
            for r in runs.drain(..) {
                // Archived with another series (the same body posted with other parameters):
                // the run id is taken, and the answer says where it is.
                let old = archived.get(&r.run.run_id);
                answer.push(IngestedRun {
                    run_id: r.run.run_id.clone(),
                    series_id: old.cloned().unwrap_or_else(|| r.run.series_id.clone()),
                    workload: r.run.workload.name.clone(),
                    samples: r.samples.len(),
                    already_in_history: old.is_some(),
                });
                if old.is_none() {
                    fresh.push(r);
                }
            }
            emit::send_runs(&bus, &mut fresh, |_| {}).await.map_err(|e| match e {
                ProducerError::Infra(InfraError::BrokerUnreachable { brokers }) => IngestFailure::Unavailable(format!("the pipeline's broker ({brokers}) is unreachable: nothing was published; retry later")),
                ProducerError::Infra(e) => IngestFailure::Unavailable(format!("publishing the runs: {e}")),
                e => IngestFailure::Internal(format!("publishing the runs: {e}")),
            })?;
            Ok(Ingested { format, runs: answer })
        })
    })
}

/// The body's runs, or what is wrong with the request.
async fn read(params: &IngestParams, body: Bytes, received: i64) -> Result<Vec<ImportedRun>, IngestFailure> {
    let format = Format::from_name(&params.format).ok_or_else(|| {
        let known: Vec<&str> = std::iter::once(Format::Auto).chain(Format::ALL).map(Format::name).collect();
        IngestFailure::BadRequest(format!("unknown format `{}`; known formats: {}", params.format, known.join(", ")))
    })?;
    let at_us = match &params.at {
        Some(a) => Some(parse_time(a).ok_or_else(|| IngestFailure::BadRequest(format!("at `{a}` is not a time: give RFC 3339 (2026-12-05T11:20:00Z) or Unix seconds")))?),
        None => None,
    };
    let ctx = ImportContext {
        file: "request body".into(),
        file_time_us: Some(received),
        at_us,
        hardware: params.hardware.clone(),
        workload: params.workload.clone(),
        version_tag: params.version_tag.clone(),
        git_commit: params.git_commit.clone(),
        labels: params.labels.clone(),
        remote: true,
    };
    tokio::task::spawn_blocking(move || parse(format, &body, &ctx).map_err(|e| IngestFailure::BadRequest(e.to_string())))
    .await
    .map_err(|e| IngestFailure::Internal(format!("parsing the body: {e}")))?
}

#[cfg(test)]
mod tests {
    use trackiq_schemas::Platform;
    use trackiq_schemas::identity::series_id;

    use super::*;

    #[test]
    fn the_same_bmf_body_names_the_same_runs_and_no_machine_is_this_server() {
        let body = Bytes::from_static(br#"{"bench_adder": {"latency": {"value": 3247.5}}, "bench_parser": {"latency": {"value": 88314.0}}}"#);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let read_at = |p: &IngestParams, t: i64| rt.block_on(read(p, body.clone(), t)).unwrap();
        let p = IngestParams::parse("format=bmf&git_commit=abc123").unwrap();
        let (a, b) = (read_at(&p, 1_800_000_000_000_000), read_at(&p, 1_800_000_000_000_000));
        assert_eq!(a.iter().map(|r| &r.run.run_id).collect::<Vec<_>>(), b.iter().map(|r| &r.run.run_id).collect::<Vec<_>>());
        let later = read_at(&p, 1_800_000_100_000_000);
        assert_eq!(a[0].run.run_id, later[0].run.run_id, "received later: BMF has no time, its ids do not depend on the body's");
        assert_eq!(later[0].run.timestamp, 1_800_000_100_000_000, "the run's time is when it was received");
        assert!(a.iter().all(|r| r.run.platform == Platform { hardware_name: "unknown".into(), ..Default::default() }), "{:?}", a[0].run.platform);
        assert_eq!(a[0].run.version.git_commit.as_deref(), Some("abc123"));
        let named = read_at(&IngestParams::parse("format=bmf&hardware=ci-runner").unwrap(), 1_800_000_000_000_000);
        assert_eq!(named[0].run.platform.hardware_name, "ci-runner");
        assert_ne!(named[0].run.series_id, a[0].run.series_id);
        assert_eq!(named[0].run.series_id, series_id(&named[0].run));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let fail = |q: &str, body: &'static [u8]| match rt.block_on(read(&IngestParams::parse(q).unwrap(), Bytes::from_static(body), 1)) {
            Err(IngestFailure::BadRequest(e)) => e,
            other => panic!("{q}: {other:?}"),
        };
        let e = fail("format=nope", b"{}");
        assert!(e.contains("unknown format `nope`") && e.contains("bmf") && e.contains("pytest-benchmark"), "{e}");
        assert!(fail("format=bmf&at=yesterday", b"{}").contains("at `yesterday` is not a time"));
        let e = fail("format=bmf", br#"{"b": {"latency": {"value": 1.0}"#);
        assert!(e.starts_with("request body: line 1 column") && e.contains("not valid JSON"), "{e}");
        let e = fail("format=bmf", br#"{"b": {"latency": {"value": "fast"}}}"#);
        assert_eq!(e, "request body: $.b.latency.value: expected a number, found a string");
    }

    #[test]
    fn the_openapi_document_names_every_format() {
        let doc: serde_json::Value = serde_json::from_str(trackiq_sinks::dashboard::ingest::OPENAPI_JSON).unwrap();
        let listed: Vec<&str> = doc["paths"]["/api/v1/runs"]["post"]["parameters"][0]["schema"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        // A criterion result is a directory: no request body holds one.
        let known: Vec<&str> = std::iter::once(Format::Auto).chain(Format::ALL).filter(|f| *f != Format::Criterion).map(Format::name).collect();
        assert_eq!(listed, known);
    }
}
