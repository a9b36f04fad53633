//! The history over the PostgreSQL wire protocol, read by the clients analysts use: a Rust
//! driver (tokio-postgres: simple and extended protocol, SCRAM), `psql` with its `\d`
//! catalog queries, psycopg 3 with pandas, and the statements Grafana's PostgreSQL data
//! source sends (from Grafana's source: `pkg/tsdb/grafana-postgresql-datasource`, the
//! frontend's `postgresMetaQuery.ts` and the backend's `macros.go`).

use std::process::Command;
use std::time::Duration;

use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::skips::{self, have};
use crate::support::*;

const PASSWORD: &str = "sql-endpoint-secret-4711";
const LATENCIES: [f64; 7] = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0, 12.5];

/// The `postgresql://user@host:port/db` address printed in `line`'s `SQL ` field.
fn sql_addr(log: &str) -> (String, u16) {
    let addr = log.split("SQL postgresql://trackiq@").nth(1).or_else(|| log.split("at postgresql://trackiq@").nth(1)).expect("the SQL endpoint's address is printed");
    let hostport = addr.split('/').next().unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    (host.to_string(), port.parse().unwrap())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn connect(host: &str, port: u16, password: Option<&str>) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut conf = format!("host={host} port={port} user=trackiq dbname=trackiq connect_timeout=10");
    if let Some(p) = password {
        conf.push_str(&format!(" password={p}"));
    }
    let (client, conn) = tokio_postgres::connect(&conf, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Rows of a simple-protocol statement as text cells (how Grafana and psql read them).
async fn simple(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    let messages = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("").to_string()).collect()),
            _ => None,
        })
        .collect()
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| format!("{} {}", d.code().code(), d.message())).unwrap_or_else(|| format!("{e:?}"))
}

#[test]
fn analysts_tools_read_the_history_over_the_postgresql_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let mut runs = Vec::new();
    for (i, v) in LATENCIES.iter().enumerate() {
        let metric = format!("latency_ms={v}");
        runs.push(recorded_run_id(&ok(&up.cli(&["record", "--workload", "step", "--hardware", "box", "--version-tag", &format!("v{i}"), "--metric", &metric]))));
    }
    let last = runs.last().unwrap().clone();
    wait_for("the last run's verdict in Parquet", Duration::from_secs(90), || (!sql(&up, &format!("SELECT 1 FROM verdicts WHERE run_id = '{last}'")).is_empty()).then_some(()));
    wait_for("every summary in Parquet", Duration::from_secs(90), || (sql_n(&up, "SELECT count(*) AS n FROM summaries WHERE metric = 'latency_ms'") == LATENCIES.len() as i64).then_some(()));
    // `runs` is archived by its own writer, which may flush after the summaries' and verdicts'.
    wait_for("every run's start and end in Parquet", Duration::from_secs(90), || {
        (sql_n(&up, "SELECT count(*) AS n FROM run_overview WHERE status = 'completed'") == LATENCIES.len() as i64).then_some(())
    });
    wait_for("every sample in Parquet", Duration::from_secs(90), || {
        (sql_n(&up, "SELECT count(*) AS n FROM samples WHERE metric = 'latency_ms'") == LATENCIES.len() as i64).then_some(())
    });
    let by_cli = sql(&up, "SELECT metric, count(*) AS n FROM samples GROUP BY metric ORDER BY metric");

    // `trackiq up` serves the endpoint beside the dashboard, on loopback without a password.
    let (host, port) = sql_addr(&up.log.lock().unwrap());
    rt().block_on(async {
        let c = connect(&host, port, None).await.expect("loopback needs no password");
        // Extended protocol with a parameter, typed answers.
        let rows = c.query("SELECT run_id, mean FROM summaries WHERE metric = $1 ORDER BY ended_at", &[&"latency_ms"]).await.unwrap();
        let means: Vec<f64> = rows.iter().map(|r| r.get::<_, f64>("mean")).collect();
        assert_eq!(means, LATENCIES, "each run's mean, in order");
        assert_eq!(rows.iter().map(|r| r.get::<_, String>("run_id")).collect::<Vec<_>>(), runs);
        // One row per run: `runs` has a started and a finished event per run.
        let overview = c.query("SELECT run_id, status, sample_count, severity FROM run_overview ORDER BY started_at", &[]).await.unwrap();
        assert_eq!(overview.iter().map(|r| r.get::<_, String>("run_id")).collect::<Vec<_>>(), runs);
        assert!(overview.iter().all(|r| r.get::<_, String>("status") == "completed" && r.get::<_, Option<i64>>("sample_count") == Some(1)), "{overview:?}");
        assert_eq!(overview.last().unwrap().get::<_, Option<String>>("severity").as_deref(), Some("block"), "+25 % on the last run blocks");
        // The same answer as `trackiq sql`.
        let counts = c.query("SELECT metric, count(*) AS n FROM samples GROUP BY metric ORDER BY metric", &[]).await.unwrap();
        let counts: Vec<(String, i64)> = counts.iter().map(|r| (r.get(0), r.get(1))).collect();
        let expected: Vec<(String, i64)> = by_cli.iter().map(|r| (r["metric"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap())).collect();
        assert_eq!(counts, expected);
        // Read-only, whatever the statement; refused by name before anything runs.
        for statement in [
            "CREATE TABLE leak AS SELECT * FROM runs",
            "INSERT INTO runs SELECT * FROM runs",
            "DROP TABLE samples",
            "COPY (SELECT 1) TO '/tmp/trackiq-sql-endpoint-copy.csv'",
            "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'",
        ] {
            let e = c.simple_query(statement).await.expect_err(statement);
            assert_eq!(e.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION), "{statement}: {}", code(&e));
            assert!(code(&e).contains("read-only"), "{}", code(&e));
            let e = c.query(statement, &[]).await.expect_err(statement);
            assert_eq!(e.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION), "extended protocol, {statement}: {}", code(&e));
        }
        assert!(!std::path::Path::new("/tmp/trackiq-sql-endpoint-copy.csv").exists());
        // A client's SET changes its own session only.
        c.simple_query("SET datafusion.execution.batch_size = 7").await.unwrap();
        let other = connect(&host, port, None).await.unwrap();
        let batch_size = "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'";
        assert_eq!(simple(&c, batch_size).await, [["7"]]);
        assert_eq!(simple(&other, batch_size).await, [["8192"]]);

        // Grafana's PostgreSQL data source: "Save & test" pings with an empty statement, the
        // config page reads the version, the query editor lists tables and columns.
        for ping in ["-- ping", ";"] {
            c.simple_query(ping).await.unwrap_or_else(|e| panic!("Grafana's health check `{ping}`: {}", code(&e)));
        }
        assert_eq!(simple(&c, "SELECT current_setting('server_version_num')::int/100 as version").await, [["1600"]]);
        assert!(simple(&c, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").await.is_empty(), "no TimescaleDB: plain macros");
        let tables = simple(
            &c,
            "SELECT\n    CASE WHEN quote_ident(table_schema) IN ('public')\n      THEN quote_ident(table_name)\n      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)\n    END AS \"table\"\n    FROM information_schema.tables\n    WHERE quote_ident(table_schema) NOT IN ('information_schema',\n                             'pg_catalog',\n                             '_timescaledb_cache',\n                             '_timescaledb_catalog',\n                             '_timescaledb_internal',\n                             '_timescaledb_config',\n                             'timescaledb_information',\n                             'timescaledb_experimental')\n    ORDER BY CASE WHEN quote_ident(table_schema) IN ('public') THEN 0 ELSE 1 END, 1",
        )
        .await;
        let tables: Vec<&str> = tables.iter().map(|r| r[0].as_str()).collect();
        for t in ["runs", "samples", "summaries", "verdicts", "alerts"] {
            assert!(tables.contains(&t), "{t} in Grafana's table list {tables:?}");
        }
        let columns = simple(
            &c,
            "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\"\n    FROM information_schema.columns\n    WHERE\n      CASE WHEN array_length(parse_ident('public.summaries'),1) = 2\n        THEN quote_ident(table_schema) = (parse_ident('public.summaries'))[1]\n          AND quote_ident(table_name) = (parse_ident('public.summaries'))[2]\n        ELSE quote_ident(table_name) = 'public.summaries'\n      END",
        )
        .await;
        let names: Vec<&str> = columns.iter().map(|r| r[0].as_str()).collect();
        for col in ["run_id", "ended_at", "metric", "mean", "p99"] {
            assert!(names.contains(&col), "{col} in Grafana's column list {names:?}");
        }
        // Its older editor names a bare table's schema by the search path, split in a lateral
        // `string_to_array(...) s` (postgresMetaQuery.ts `buildSchemaConstraint`).
        let search_path = "quote_ident(table_schema) IN (\n  SELECT\n    CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END\n  FROM\n    generate_series(\n      array_lower(string_to_array(current_setting('search_path'),','),1),\n      array_upper(string_to_array(current_setting('search_path'),','),1)\n    ) as i,\n    string_to_array(current_setting('search_path'),',') s\n)";
        let bare = simple(&c, &format!("SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\"\n    FROM information_schema.columns\n    WHERE {search_path} AND table_name = 'summaries'\n    ORDER BY 1")).await;
        assert!(bare.iter().any(|r| r[0] == "mean" && r[1] == "double precision") && bare.len() == columns.len(), "the search-path form lists the same columns: {bare:?}");
        // Grafana types builder columns by `data_type` (and its schema handler by `udt_name`).
        let typed = |col: &str| columns.iter().find(|r| r[0] == col).map(|r| r[1].clone()).unwrap();
        assert_eq!((typed("mean").as_str(), typed("ended_at").as_str(), typed("metric").as_str(), typed("count").as_str()), ("double precision", "timestamp with time zone", "text", "bigint"));
        let udt = simple(&c, "SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale\n\t\t FROM information_schema.columns\n\t\t WHERE table_schema = 'public' AND table_name = 'summaries' AND column_name IN ('mean', 'ended_at')\n\t\t ORDER BY column_name").await;
        assert_eq!(udt.iter().map(|r| (r[0].as_str(), r[2].as_str())).collect::<Vec<_>>(), [("ended_at", "timestamptz"), ("mean", "float8")]);
        // A panel: run medians of a series over time, with Grafana's macros expanded as its
        // backend does ($__timeGroupAlias(ended_at, '1m'), $__timeFilter(ended_at)).
        let panel = "SELECT floor(extract(epoch from ended_at)/60)*60 AS \"time\", metric, avg(p50) AS value FROM summaries WHERE ended_at BETWEEN '2020-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z' AND metric = 'latency_ms' GROUP BY 1, 2 ORDER BY 1";
        let points = simple(&c, panel).await;
        assert!(!points.is_empty(), "the panel has points");
        assert!(points.iter().all(|p| p[0].parse::<f64>().is_ok_and(|t| t > 1.7e9) && p[1] == "latency_ms"), "{points:?}");
        // Grafana reads timestamps as PostgreSQL writes them.
        let ts = simple(&c, "SELECT ended_at AS \"time\" FROM summaries ORDER BY 1 LIMIT 1").await;
        assert!(ts[0][0].len() >= 19 && ts[0][0].as_bytes()[10] == b' ', "PostgreSQL's text form of a timestamp: {ts:?}");
    });

    // Standalone, with a password, a row cap and a time limit.
    let config = dir.path().join("sql.toml");
    std::fs::write(&config, "[sql_server]\nlisten = \"127.0.0.1:0\"\npassword = { env = \"TQ_TEST_SQL_PASSWORD\" }\nmax_rows = 50\nquery_timeout_secs = 1\n").unwrap();
    let env = [("TQ_TEST_SQL_PASSWORD".to_string(), PASSWORD.to_string())];
    let served = Up::spawn(&["serve-sql".into()], &up.brokers, &data, &config, &env, "trackiq serve-sql at");
    let (host, port) = sql_addr(&served.log.lock().unwrap());
    rt().block_on(async {
        let e = connect(&host, port, Some("not-the-password")).await.expect_err("a wrong password");
        assert_eq!(e.code(), Some(&SqlState::INVALID_PASSWORD), "{}", code(&e));
        assert!(connect(&host, port, None).await.is_err(), "no password");
        let c = connect(&host, port, Some(PASSWORD)).await.expect("SCRAM with the password");
        let n: i64 = c.query_one("SELECT count(*) FROM runs WHERE event = 'started'", &[]).await.unwrap().get(0);
        assert_eq!(n, LATENCIES.len() as i64);
        let e = c.query("SELECT * FROM generate_series(1, 100)", &[]).await.expect_err("over the row cap");
        assert_eq!(e.code(), Some(&SqlState::PROGRAM_LIMIT_EXCEEDED), "{}", code(&e));
        assert!(code(&e).contains("[sql_server] max_rows"), "{}", code(&e));
        let started = std::time::Instant::now();
        let e = c.simple_query("SELECT count(*) FROM generate_series(1, 100000000000)").await.expect_err("over the time limit");
        assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{}", code(&e));
        assert!(started.elapsed() < Duration::from_secs(30), "stopped at its limit, not at the end: {:?}", started.elapsed());
        // The connection is still usable after both.
        assert_eq!(simple(&c, "SELECT 1 AS one").await, [["1"]]);
    });

    // psql, as an analyst types it: \dt, \d, a query.
    if have("psql lists, describes and queries the history", &skips::PSQL) {
        let psql = |args: &[&str]| {
            let out = Command::new("psql").args(["-h", &host, "-p", &port.to_string(), "-U", "trackiq", "-d", "trackiq", "-X", "-v", "ON_ERROR_STOP=1"]).args(args).env("PGPASSWORD", PASSWORD).output().unwrap();
            assert!(out.status.success(), "psql {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let dt = psql(&["-c", "\\dt"]);
        assert!(dt.contains("samples") && dt.contains("verdicts"), "{dt}");
        let d = psql(&["-c", "\\d summaries"]);
        assert!(d.contains("mean") && d.contains("double precision"), "{d}");
        let n = psql(&["-At", "-c", "SELECT count(*) FROM summaries WHERE metric = 'latency_ms'"]);
        assert_eq!(n.trim(), LATENCIES.len().to_string());
    }

    // psycopg 3 and pandas, as in a notebook.
    if have("psycopg 3 and pandas read_sql", &skips::PSYCOPG_PANDAS) {
        let script = format!(
            "import json, warnings, psycopg, pandas as pd\nwarnings.simplefilter('ignore')\nwith psycopg.connect(host='{host}', port={port}, user='trackiq', password='{PASSWORD}', dbname='trackiq') as conn:\n    df = pd.read_sql(\"SELECT run_id, mean, ended_at FROM summaries WHERE metric = 'latency_ms' ORDER BY ended_at\", conn)\n    cur = conn.execute('SELECT count(*) FROM samples WHERE metric = %s', ['latency_ms'])\n    print(json.dumps({{'means': df['mean'].tolist(), 'ts': str(df['ended_at'].dtype), 'n': cur.fetchone()[0]}}))\n"
        );
        let out = Command::new("python3").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "psycopg/pandas: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["means"], serde_json::json!(LATENCIES));
        assert!(v["ts"].as_str().unwrap().starts_with("datetime64"), "pandas reads timestamps as datetimes: {v}");
        assert_eq!(v["n"], LATENCIES.len());
    }
    drop(served);

    // Off loopback without a password: refused before it listens, naming the setting.
    let out = Command::new(BIN).args(["--data", &data, "serve-sql", "--sql-listen", "0.0.0.0:0"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[sql_server] password"), "{err}");
}
