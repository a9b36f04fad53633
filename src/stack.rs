//! The running pipeline: the embedded broker (unless an external one is configured) and
//! every processor and sink as a task, stopped together with one trigger.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use trackiq_infra::{Bus, DataStore, EmbeddedBroker, Shutdown, ShutdownTrigger};

use crate::config::Config;

/// A started pipeline.
pub struct Stack {
    broker: Option<EmbeddedBroker>,
    pub bus: Bus,
    pub store: DataStore,
    trigger: ShutdownTrigger,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl Stack {
    /// Starts the broker (when embedded), creates topics, and spawns the services.
    pub async fn start(config: &Config) -> anyhow::Result<Stack> {
        let mut config = config.clone();
        let store = DataStore::open(&config.data)?;
        let broker = if config.bus.embedded() {
            let addr: SocketAddr = config.bus.listen.parse().with_context(|| format!("listen address `{}` is not host:port", config.bus.listen))?;
            let broker = EmbeddedBroker::start(addr, &config.broker_dir()).await?;
            config.bus.listen = broker.addr().to_string();
            Some(broker)
        } else {
            None
        };
        let bus = Bus::new(config.bus.clone());
        bus.check_reachable().await?;
        bus.ensure_topics().await?;
        let (trigger, shutdown) = Shutdown::new();
        let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
        let (b, s) = (bus.clone(), shutdown.clone());
        let c = config.aggregator.clone();
        tasks.push(("aggregator", tokio::spawn(async move { Ok(trackiq_processors::aggregator::run(c, b, s).await?) })));
        let (b, st, s) = (bus.clone(), store.clone(), shutdown.clone());
        let c = config.archiver.clone();
        tasks.push(("archiver", tokio::spawn(async move { Ok(trackiq_processors::archiver::run(c, b, st, s).await?) })));
        let (b, st, s) = (bus.clone(), store.clone(), shutdown.clone());
        let c = config.verdict.clone();
        tasks.push(("verdict", tokio::spawn(async move { Ok(trackiq_processors::verdict::run(c, b, st, s).await?) })));
        let (b, st, s) = (bus.clone(), store.clone(), shutdown.clone());
        let c = config.report.clone();
        tasks.push(("report", tokio::spawn(async move { Ok(trackiq_sinks::report::run(c, b, st, s).await?) })));
        if !config.webhook.urls.is_empty() {
            let (b, s) = (bus.clone(), shutdown.clone());
            let c = config.webhook.clone();
            let base = store.to_string();
            tasks.push(("webhook", tokio::spawn(async move { Ok(trackiq_sinks::webhook::run(c, b, base, s).await?) })));
        }
        info!(brokers = bus.config().bootstrap(), data = %store, "trackiq pipeline running");
        Ok(Stack { broker, bus, store, trigger, tasks })
    }

    /// Waits until every service's consumer group has its partitions (so nothing produced
    /// from now on waits for a group rebalance). Errors after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.bus.assigned_groups() < self.tasks.len() {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("only {} of {} services got their partitions within {timeout:?}", self.bus.assigned_groups(), self.tasks.len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Address producers connect to.
    pub fn brokers(&self) -> String {
        self.bus.config().bootstrap().to_string()
    }

    /// A service that stopped on its own (an error), if any.
    pub fn failed_service(&mut self) -> Option<&'static str> {
        self.tasks.iter().find(|(_, t)| t.is_finished()).map(|(n, _)| *n)
    }

    /// Stops every service (each flushes and commits), then the broker.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.trigger();
        let mut first_error = None;
        for (name, task) in self.tasks {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    warn!(service = name, error = %format!("{e:#}"), "service failed");
                    first_error.get_or_insert(e.context(format!("{name} failed")));
                }
                Ok(Err(join)) => {
                    first_error.get_or_insert(anyhow::anyhow!("{name} panicked: {join}"));
                }
                Err(_) => warn!(service = name, "service did not stop within 30 s"),
            }
        }
        // Kafka clients are dropped with the tasks; now the broker's listen loop can end.
        if let Some(b) = self.broker {
            b.stop();
        }
        first_error.map_or(Ok(()), Err)
    }
}
