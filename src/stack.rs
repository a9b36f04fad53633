//! The running pipeline: the embedded broker (unless an external one is configured), every
//! processor and sink as a supervised stage of the runtime, and the metrics endpoint. A
//! stage that fails is restarted on its own; the pipeline stops only when asked.
//!
//! A process may run only some [`Role`]s: several processes then share each stage's work in
//! its consumer group (the stages hand partitions over on a rebalance, see
//! `trackiq_infra::runtime::rebalance`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use trackiq_infra::metrics::PipelineMetrics;
use trackiq_infra::runtime::{StageContext, StageError, supervise};
use trackiq_infra::{Bus, DataStore, EmbeddedBroker, Shutdown, ShutdownTrigger};
use trackiq_processors::alerts::AlertStage;
use trackiq_processors::aggregator::AggregatorStage;
use trackiq_processors::archiver::ArchiverStage;
use trackiq_processors::archiver::naming::short_incarnation;
use trackiq_processors::compactor::Compactor;
use trackiq_processors::verdict::VerdictStage;
use trackiq_sinks::notify::NotifyStage;
use trackiq_sinks::report::ReportStage;
use trackiq_sinks::webhook::WebhookStage;

use crate::config::Config;

/// A part of the pipeline one process can run (`trackiq up --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Role {
    /// Run events → summaries and cluster-health detections.
    Aggregator,
    /// Every topic → Parquet history.
    Archiver,
    /// Summaries → verdicts and trends; verdicts and detections → alerts.
    Verdict,
    /// HTML reports, webhooks and alert notifications.
    Sinks,
    /// Merges small Parquet objects of the history; run it in one process only.
    Compactor,
    /// `[[scrape]]` jobs and the `[otlp]` receiver: continuous telemetry as windowed runs.
    /// Run it in one process only (each target's window lives in one process).
    Telemetry,
}

impl Role {
    /// Every role: what `trackiq up` runs without `--role`.
    pub const ALL: [Role; 6] = [Role::Aggregator, Role::Archiver, Role::Verdict, Role::Sinks, Role::Compactor, Role::Telemetry];
}

/// A started pipeline.
pub struct Stack {
    broker: Option<EmbeddedBroker>,
    pub bus: Bus,
    pub store: DataStore,
    pub metrics: PipelineMetrics,
    /// Address the metrics endpoint listens on, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    trigger: ShutdownTrigger,
    stages: Vec<(&'static str, JoinHandle<()>)>,
    server: Option<JoinHandle<()>>,
    /// The compactor's loop, when this process runs the role (not a Kafka stage: it works on
    /// the object store alone).
    compactor: Option<JoinHandle<()>>,
    /// Scrape jobs and the OTLP receiver, when configured and this process runs the role.
    telemetry: Option<trackiq_producers::streams::service::Running>,
    /// Where the OTLP receiver listens, when it runs.
    pub otlp_addr: Option<SocketAddr>,
}

fn fatal(e: impl std::fmt::Display) -> StageError {
    StageError::Fatal(e.to_string())
}

impl Stack {
    /// Starts the broker (when embedded), creates topics, and spawns every stage.
    pub async fn start(config: &Config) -> anyhow::Result<Stack> {
        Self::start_roles(config, &Role::ALL).await
    }

    /// Like [`Stack::start`], with only the stages of `roles`.
    pub async fn start_roles(config: &Config, roles: &[Role]) -> anyhow::Result<Stack> {
        let mut config = config.clone();
        let store = DataStore::open(&config.data)?;
        // Unknown channels in routes, unset secrets and broken templates stop the start-up
        // with the reason, before a broker or a stage starts (no restart loop, no noise).
        if roles.contains(&Role::Sinks) && !config.notify.channels.is_empty() {
            NotifyStage::new(config.notify.clone(), trackiq_schemas::Topics::new(&config.bus.topic_prefix), &store.to_string())?;
        }
        // The compactor works on the object store alone: a process with only that role
        // neither starts a broker nor needs one to be reachable.
        let needs_kafka = roles.iter().any(|r| *r != Role::Compactor);
        let broker = if needs_kafka && config.bus.embedded() {
            let addr: SocketAddr = config.bus.listen.parse().with_context(|| format!("listen address `{}` is not host:port", config.bus.listen))?;
            let broker = EmbeddedBroker::start_with(addr, &config.bus.broker_options()?, &config.broker_dir()).await?;
            config.bus.listen = broker.addr().to_string();
            Some(broker)
        } else {
            None
        };
        // The stages of the process that runs the broker read its log in-process.
        let bus = match &broker {
            Some(b) => Bus::new(config.bus.clone()).with_embedded_log(b.log().clone()),
            None => Bus::new(config.bus.clone()),
        };
        let incarnation = if needs_kafka {
            bus.check_reachable().await?;
            bus.ensure_topics().await?;
            short_incarnation(&bus.cluster_id().await?)
        } else {
            String::new()
        };
        let metrics = PipelineMetrics::new();
        let (trigger, shutdown) = Shutdown::new();
        let (metrics_addr, server) = if config.metrics.enabled {
            let listener = tokio::net::TcpListener::bind(&config.metrics.listen)
                .await
                .with_context(|| format!("binding the metrics address {} (set [metrics] listen, or enabled = false)", config.metrics.listen))?;
            let addr = listener.local_addr()?;
            let (m, s) = (metrics.clone(), shutdown.clone());
            let server = tokio::spawn(async move {
                if let Err(e) = trackiq_infra::metrics::serve(m, listener, s).await {
                    warn!(error = %e, "metrics endpoint stopped");
                }
            });
            (Some(addr), Some(server))
        } else {
            (None, None)
        };
        let ctx = |stage: &'static str, group: &str| StageContext { bus: bus.clone(), metrics: metrics.clone(), group: group.to_string(), stage };
        let mut stages: Vec<(&'static str, JoinHandle<()>)> = Vec::new();
        if roles.contains(&Role::Aggregator) {
            let (c, topics) = (config.aggregator.clone(), bus.topics().clone());
            let make = move || {
                let (c, topics) = (c.clone(), topics.clone());
                async move { Ok::<_, StageError>(AggregatorStage::new(c, topics)) }
            };
            stages.push(("aggregator", tokio::spawn(supervise(ctx("aggregator", &config.aggregator.group), make, shutdown.clone()))));
        }
        if roles.contains(&Role::Archiver) {
            let (c, st, m, inc) = (config.archiver.clone(), store.clone(), metrics.clone(), incarnation.clone());
            let make = move || {
                let (c, st, m, inc) = (c.clone(), st.clone(), m.clone(), inc.clone());
                async move { ArchiverStage::open(c, st, &inc, m).await.map_err(fatal) }
            };
            stages.push(("archiver", tokio::spawn(supervise(ctx("archiver", &config.archiver.group), make, shutdown.clone()))));
        }
        if roles.contains(&Role::Verdict) {
            let (c, b, st, inc) = (config.verdict.clone(), bus.clone(), store.clone(), incarnation.clone());
            let make = move || {
                let (c, b, st, inc) = (c.clone(), b.clone(), st.clone(), inc.clone());
                async move { VerdictStage::start(c, &b, &st, &inc).await.map_err(fatal) }
            };
            stages.push(("verdict", tokio::spawn(supervise(ctx("verdict", &config.verdict.group), make, shutdown.clone()))));
            let (c, b, st) = (config.alerts.clone(), bus.clone(), store.clone());
            let make = move || {
                let (c, b, st) = (c.clone(), b.clone(), st.clone());
                async move { AlertStage::start(c, &b, &st).await.map_err(fatal) }
            };
            stages.push(("alerts", tokio::spawn(supervise(ctx("alerts", &config.alerts.group), make, shutdown.clone()))));
        }
        if roles.contains(&Role::Sinks) {
            let st = store.clone();
            let make = move || {
                let st = st.clone();
                async move { Ok::<_, StageError>(ReportStage::new(st)) }
            };
            stages.push(("report", tokio::spawn(supervise(ctx("report", &config.report.group), make, shutdown.clone()))));
        }
        if roles.contains(&Role::Sinks) && !config.webhook.urls.is_empty() {
            // Bad URLs are a configuration error: refuse to start rather than restart forever.
            WebhookStage::new(config.webhook.clone(), store.to_string())?;
            let (c, base) = (config.webhook.clone(), store.to_string());
            let make = move || {
                let (c, base) = (c.clone(), base.clone());
                async move { WebhookStage::new(c, base).map_err(fatal) }
            };
            stages.push(("webhook", tokio::spawn(supervise(ctx("webhook", &config.webhook.group), make, shutdown.clone()))));
        }
        if roles.contains(&Role::Sinks) && !config.notify.channels.is_empty() {
            let (c, b, st) = (config.notify.clone(), bus.clone(), store.clone());
            let make = move || {
                let (c, b, st) = (c.clone(), b.clone(), st.clone());
                async move { NotifyStage::start(c, &b, &st).await.map_err(fatal) }
            };
            stages.push(("notify", tokio::spawn(supervise(ctx("notify", &config.notify.group), make, shutdown.clone()))));
        }
        let compactor = roles.contains(&Role::Compactor).then(|| {
            let (c, st, m, s) = (config.compactor.clone(), store.clone(), metrics.clone(), shutdown.clone());
            info!(interval_secs = c.interval_secs, target_rows = c.target_rows, "compactor running: a pass now, then every interval");
            tokio::spawn(run_compactor(Compactor::new(st, c.clone()), Duration::from_secs(c.interval_secs.max(1)), m, s))
        });
        let telemetry = if roles.contains(&Role::Telemetry) && (!config.scrape.is_empty() || config.otlp.enabled) {
            let listener = if config.otlp.enabled {
                trackiq_producers::streams::otlp::check_listen(&config.otlp, config.otlp.token.is_some())?;
                Some(tokio::net::TcpListener::bind(&config.otlp.listen).await.with_context(|| format!("binding the OTLP receiver to {} (set [otlp] listen)", config.otlp.listen))?)
            } else {
                None
            };
            let deps = trackiq_producers::streams::service::Deps { bus: bus.clone(), metrics: metrics.clone() };
            Some(trackiq_producers::streams::service::start(&config.scrape, &config.otlp, listener, deps).await?)
        } else {
            None
        };
        let otlp_addr = telemetry.as_ref().and_then(|t| t.otlp_addr);
        info!(brokers = bus.config().bootstrap(), data = %store, incarnation, metrics = ?metrics_addr, stages = ?stages.iter().map(|(n, _)| *n).collect::<Vec<_>>(), compactor = compactor.is_some(), "trackiq pipeline running");
        Ok(Stack { broker, bus, store, metrics, metrics_addr, trigger, stages, server, compactor, telemetry, otlp_addr })
    }

    /// Waits until every stage's consumer group has its partitions (so nothing produced
    /// from now on waits for a group rebalance). Errors after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.bus.assigned_groups() < self.stages.len() {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("only {} of {} stages got their partitions within {timeout:?}", self.bus.assigned_groups(), self.stages.len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Address producers connect to.
    pub fn brokers(&self) -> String {
        self.bus.config().bootstrap().to_string()
    }

    /// Stages that are down now (failed and waiting to restart).
    pub fn down_stages(&self) -> Vec<String> {
        self.metrics.down_stages()
    }

    /// Stops every stage (each flushes and commits), then the broker.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Open telemetry windows are published (as short runs) while the stages still run.
        if let Some(t) = self.telemetry {
            t.stop().await;
        }
        self.trigger.trigger();
        for (name, task) in self.stages {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(())) => {}
                Ok(Err(join)) => warn!(stage = name, error = %join, "stage task ended abnormally"),
                Err(_) => warn!(stage = name, "stage did not stop within 30 s"),
            }
        }
        if let Some(c) = self.compactor {
            // A pass stopped midway is safe (its output is uncommitted and rolled back later).
            let _ = tokio::time::timeout(Duration::from_secs(30), c).await;
        }
        if let Some(s) = self.server {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
        // Kafka clients are dropped with the stages; now the broker's listen loop can end.
        if let Some(b) = self.broker {
            b.stop();
        }
        Ok(())
    }
}

/// Compaction passes, the first at once, then every `interval` until shutdown. A failed
/// pass marks the `compactor` stage down (`trackiq_stage_up`, `/healthz` answers 503) and
/// is retried at the next interval (each pass starts with recovery).
async fn run_compactor(compactor: Compactor, interval: Duration, metrics: PipelineMetrics, mut shutdown: Shutdown) {
    const STAGE: &str = "compactor";
    metrics.set_up(STAGE, true);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            result = compactor.pass(&trackiq_schemas::arrow::TABLES, |_, _, _| {}) => match result {
                Ok(_) => metrics.set_up(STAGE, true),
                Err(e) => {
                    metrics.error(STAGE, "pass");
                    metrics.set_up(STAGE, false);
                    warn!(error = %e, "compaction pass failed; retrying at the next interval");
                }
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
