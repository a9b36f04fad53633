//! `trackiq broker`: the embedded Kafka-API broker alone, for `trackiq up --brokers` processes
//! that share the work (`--role`). It listens on `--listen`, keeps its log where `trackiq up`
//! would (`broker_dir`, by default under the data directory), creates the pipeline's topics,
//! and runs until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use trackiq::config::Config;
use trackiq_infra::{Bus, EmbeddedBroker};

#[derive(Debug, Args)]
pub struct BrokerArgs {}

pub async fn run(mut config: Config, _a: BrokerArgs) -> anyhow::Result<ExitCode> {
    if !config.bus.embedded() {
        anyhow::bail!("`trackiq broker` runs the embedded broker; --brokers ({}) names another one", config.bus.brokers);
    }
    let addr: SocketAddr = config.bus.listen.parse().with_context(|| format!("listen address `{}` is not host:port", config.bus.listen))?;
    let dir = config.broker_dir();
    let broker = EmbeddedBroker::start_with(addr, &config.bus.broker_options()?, &dir).await?;
    config.bus.listen = broker.addr().to_string();
    let bus = Bus::new(config.bus.clone());
    if config.bus.advertise.trim().is_empty() {
        bus.ensure_topics().await?;
    } else {
        // Clients are sent to the advertised address (a TLS terminator), which this process's
        // plaintext client cannot use: the first `trackiq up --brokers <advertised>` creates them.
        println!("topics are created by the first `trackiq up` that connects through {}", config.bus.advertise);
    }
    let advertised = if config.bus.advertise.is_empty() { String::new() } else { format!(" · clients told to connect to {}", config.bus.advertise) };
    println!("trackiq broker is up: listening {}{advertised} · log {} · Ctrl-C to stop", broker.addr(), dir.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("stopping the broker");
    drop(bus);
    broker.stop();
    Ok(ExitCode::SUCCESS)
}
