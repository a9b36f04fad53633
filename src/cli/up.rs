//! `trackiq up`: the pipeline until Ctrl-C or SIGTERM. A failing stage is restarted by its
//! supervisor; `up` says so and keeps every other stage running.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq::stack::{Role, Stack};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// POST warn/block verdicts to this URL (repeatable). Env: TRACKIQ_WEBHOOK_URLS (comma-separated).
    #[arg(long)]
    pub webhook: Vec<String>,
    /// Run only these parts (comma-separated or repeated; default: all). `sinks` is the
    /// report and webhook stages. Processes running the same role against one broker share
    /// its partitions in one consumer group.
    #[arg(long = "role", value_enum, value_delimiter = ',')]
    pub roles: Vec<Role>,
    /// Do not serve the web dashboard (served by default with the `sinks` role, on
    /// `[dashboard] listen`, 127.0.0.1:8080), nor the HTTP ingest API beside it, nor the
    /// PostgreSQL endpoint (`[sql_server] listen`, 127.0.0.1:5433).
    #[arg(long)]
    pub no_ui: bool,
}

/// The dashboard's launches: this binary, given this pipeline's history, brokers, topic prefix,
/// librdkafka options and configuration file before each entry's arguments.
fn launcher(config: &Config, stack: &Stack) -> anyhow::Result<trackiq_sinks::dashboard::launch_runner::Launcher> {
    let program = std::env::current_exe()?;
    let mut base = vec!["--data".to_string(), super::hint::absolute_data(&config.data), "--brokers".into(), stack.brokers(), "--topic-prefix".into(), config.bus.topic_prefix.clone()];
    if let Some(file) = &config.source {
        base.extend(["--config".to_string(), file.display().to_string()]);
    }
    // Credentials are never options (`Config::load` refuses them); they travel in the file.
    for (key, value) in config.bus.options.iter().filter(|(k, _)| !trackiq_infra::kafka_security::SECRET_OPTIONS.contains(&k.as_str())) {
        base.extend(["--kafka-option".to_string(), format!("{key}={value}")]);
    }
    Ok(trackiq_sinks::dashboard::launch_runner::Launcher::new(config.dashboard.launch.clone(), program, base)?)
}

/// Binds and serves the dashboard with the pipeline's health; returns its address and stopper.
async fn start_ui(config: &Config, stack: &Stack) -> anyhow::Result<(std::net::SocketAddr, trackiq_infra::ShutdownTrigger, tokio::task::JoinHandle<()>)> {
    use anyhow::Context;
    let addr: std::net::SocketAddr = config.dashboard.listen.parse().with_context(|| format!("[dashboard] listen `{}` is not host:port", config.dashboard.listen))?;
    let mut dashboard = trackiq_sinks::dashboard::Dashboard::new(stack.store.clone(), config.dashboard.clone(), addr)?;
    let metrics = stack.metrics.clone();
    dashboard.health = Some(std::sync::Arc::new(move || super::status::health_rows(&metrics.encode())));
    let verdict = config.verdict.clone();
    dashboard.direction_of = std::sync::Arc::new(move |m: &str| verdict.direction_of(m));
    let pin_config = config.clone();
    dashboard.pin = Some(std::sync::Arc::new(move |req: trackiq_sinks::dashboard::PinRequest| {
        let config = pin_config.clone();
        Box::pin(async move { super::baseline::pin_runs(&config, &req.series_id, &req.run_ids, &req.reason).await.map_err(|e| format!("{e:#}")) })
    }));
    // `POST /api/v1/runs`: results from CI systems, parsed by the importers and published.
    let publish = super::ingest::publisher(stack.bus.clone(), stack.store.clone());
    dashboard.ingest = Some(trackiq_sinks::dashboard::ingest::Ingest::new(&config.ingest, publish)?);
    let decide_config = config.clone();
    dashboard.decide = Some(std::sync::Arc::new(move |d: trackiq_schemas::ReleaseDecision| {
        let config = decide_config.clone();
        Box::pin(async move { super::alerts::publish_decision(&config, &d).await.map_err(|e| format!("{e:#}")) })
    }));
    if !config.dashboard.launch.is_empty() {
        dashboard.launcher = Some(std::sync::Arc::new(launcher(config, stack)?));
    }
    let (trigger, shutdown) = trackiq_infra::Shutdown::new();
    // Live pages: every summary and verdict the pipeline publishes from now on.
    let feed = dashboard.live.clone();
    let bus = stack.bus.clone();
    let topics = [bus.topics().summaries.clone(), bus.topics().verdicts.clone()];
    let follow_stop = shutdown.clone();
    let fed = dashboard.fed.clone();
    let follower = tokio::spawn(async move {
        let send = |e: trackiq_schemas::AnyEvent| {
            if let Some(ev) = trackiq_sinks::dashboard::live::LiveEvent::of(&e) {
                let _ = feed.send(ev);
            }
        };
        fed.set(true);
        let followed = trackiq_infra::replay::follow(&bus, &topics, follow_stop, send).await;
        fed.set(false);
        if let Err(e) = followed {
            eprintln!("the dashboard's live feed stopped: {e}");
        }
    });
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the dashboard to {addr} (set [dashboard] listen, or --no-ui)"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = trackiq_sinks::dashboard::serve(dashboard, listener, shutdown).await {
            eprintln!("dashboard stopped: {e}");
        }
        // The live feed's Kafka consumer goes before the broker (else it logs the broker gone).
        let _ = follower.await;
    });
    Ok((bound, trigger, task))
}

pub async fn run(config: Config, a: UpArgs) -> anyhow::Result<ExitCode> {
    let roles = if a.roles.is_empty() { Role::ALL.to_vec() } else { a.roles };
    let serve_ui = !a.no_ui && roles.contains(&Role::Sinks);
    if serve_ui {
        // A non-loopback address without a token is refused before anything starts.
        let addr = config.dashboard.listen.parse().map_err(|_| anyhow::anyhow!("[dashboard] listen `{}` is not host:port", config.dashboard.listen))?;
        trackiq_sinks::dashboard::Dashboard::new(trackiq_infra::DataStore::open(&config.data)?, config.dashboard.clone(), addr)?;
        config.ingest.read_token()?;
        if config.sql_server.enabled {
            let addr = config.sql_server.listen.parse().map_err(|_| anyhow::anyhow!("[sql_server] listen `{}` is not host:port", config.sql_server.listen))?;
            config.sql_server.check(addr)?;
        }
    }
    let stack = Stack::start_roles(&config, &roles).await?;
    stack.wait_ready(std::time::Duration::from_secs(60)).await?;
    let ui = if serve_ui { Some(start_ui(&config, &stack).await?) } else { None };
    let sql = if serve_ui && config.sql_server.enabled { Some(super::serve_sql::start(&config, &stack.store).await?) } else { None };
    let sql_line = sql.as_ref().map(|s| format!(" · SQL postgresql://{}@{}/trackiq", config.sql_server.user, s.addr)).unwrap_or_default();
    let metrics = stack.metrics_addr.map(|a| format!(" · metrics http://{a}/metrics")).unwrap_or_default();
    let dashboard = ui.as_ref().map(|(a, _, _)| format!(" · dashboard http://{a}/")).unwrap_or_default();
    let ingest = match &ui {
        Some((a, _, _)) if config.ingest.token.is_some() => format!(" · ingest http://{a}{}", trackiq_sinks::dashboard::ingest::RUNS),
        _ => String::new(),
    };
    let telemetry = match (config.scrape.iter().map(|j| j.targets.len()).sum::<usize>(), stack.otlp_addr) {
        (0, None) => String::new(),
        (n, otlp) => format!(" · scraping {n} target(s){}", otlp.map(|a| format!(" · OTLP http://{a}{}", trackiq_producers::streams::otlp::METRICS_PATH)).unwrap_or_default()),
    };
    println!("trackiq is up: brokers {} · data {}{metrics}{dashboard}{ingest}{sql_line}{telemetry} · Ctrl-C to stop", stack.brokers(), stack.store);
    if roles.contains(&Role::Aggregator) {
        // What to run next, from another terminal in any directory.
        let bench = super::hint::to_brokers(&stack.brokers(), &["bench", "cmd", "--iterations", "20", "--workload", "sleep", "--", "sleep", "0.01"]);
        let query = super::hint::over_data(&stack.store, &["sql", "SELECT run_id, metric, value, baseline, severity FROM verdicts WHERE kind = 'metric' ORDER BY evaluated_at DESC LIMIT 10"]);
        println!("try: {bench}\n     {query}");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut down: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = check.tick() => {
                let now = stack.down_stages();
                if now != down {
                    if now.is_empty() {
                        eprintln!("all stages running again");
                    } else {
                        eprintln!("stage(s) down, restarting: {} (the others keep running; see `trackiq status`)", now.join(", "));
                    }
                    down = now;
                }
            }
        }
    }
    if let Some(s) = sql {
        s.stop().await;
    }
    if let Some((_, trigger, task)) = ui {
        trigger.trigger();
        let _ = task.await;
    }
    println!("stopping: flushing Parquet and committing offsets");
    stack.stop().await?;
    Ok(ExitCode::SUCCESS)
}
