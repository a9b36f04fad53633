//! The same path with the history in S3: a real S3 server (s3s + s3s-fs) on 127.0.0.1:0.

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::{ObjectStoreExt, path::Path};

use crate::pipeline::scenario;
use crate::support::*;

const KEY: &str = "trackiq-test-key";
const SECRET: &str = "trackiq-test-secret";

/// Serves `root` (one folder per bucket) as S3 on loopback; returns the endpoint URL.
fn s3_server(rt: &tokio::runtime::Runtime, root: &std::path::Path) -> String {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(KEY, SECRET));
    let service = builder.build();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
            tokio::spawn(conn);
        }
    });
    url
}

#[test]
fn the_pipeline_keeps_its_history_in_s3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("s3").join("perf-history")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let endpoint = s3_server(&rt, &dir.path().join("s3"));
    let env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let hooks = Receiver::start(0);
    // The embedded broker's log stays local; only the history goes to S3.
    let config = fast_config(dir.path());
    let extra = format!("broker_dir = \"{}\"\n", dir.path().join("broker").display());
    std::fs::write(&config, format!("{extra}{}", std::fs::read_to_string(&config).unwrap())).unwrap();
    let up = Up::start("s3://perf-history/trackiq", &config, &[hooks.url.clone()], &env);

    let s3 = Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("perf-history")
            .with_access_key_id(KEY)
            .with_secret_access_key(SECRET)
            .with_region("us-east-1")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .build()
            .unwrap(),
    );
    let read_report = |id: &str| {
        let path = Path::from(format!("trackiq/reports/{id}.html"));
        rt.block_on(async { s3.get(&path).await.ok()?.bytes().await.ok() }).map(|b| String::from_utf8_lossy(&b).to_string())
    };
    scenario(&up, &hooks, read_report);
    // The Parquet objects really are in the bucket (s3s-fs stores them as files).
    let parquet = walk(&dir.path().join("s3").join("perf-history").join("trackiq").join("samples"));
    assert!(parquet.iter().any(|p| p.ends_with(".parquet") && p.contains("date=")), "{parquet:?}");
    assert!(up.stop().success());
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p.display().to_string()) }
    }
    out
}
