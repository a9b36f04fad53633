//! Supervision: a stage that fails (a fatal error, a panic outside one record, a lost
//! consumer) is rebuilt from its factory and started again after a backoff, while every other
//! stage keeps running. `trackiq up` never stops because one stage is in trouble; the stage's
//! health is in the metrics (`trackiq_stage_up`, `trackiq_stage_restarts_total`).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tracing::{error, info};

use super::driver::{drive, panic_message, retry_delays};
use super::{Stage, StageError};
use crate::metrics::PipelineMetrics;
use crate::{Bus, Shutdown};

/// A stage that ran this long without failing starts its next restart backoff from the
/// shortest delay again.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// What every stage incarnation is given.
#[derive(Clone)]
pub struct StageContext {
    pub bus: Bus,
    pub metrics: PipelineMetrics,
    /// Consumer group of the stage.
    pub group: String,
    /// Stage name, known before the stage is built (for logs while building fails).
    pub stage: &'static str,
}

/// Runs a stage until shutdown, rebuilding it with `make` after each failure.
pub async fn supervise<S, F, Fut>(ctx: StageContext, mut make: F, mut shutdown: Shutdown)
where
    S: Stage,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, StageError>>,
{
    let name = ctx.stage;
    let mut delays = retry_delays();
    let mut first = true;
    while !shutdown.is_triggered() {
        if !first {
            ctx.metrics.restart(name);
        }
        first = false;
        let started = Instant::now();
        let built = tokio::select! {
            b = AssertUnwindSafe(make()).catch_unwind() => b,
            _ = shutdown.wait() => break,
        };
        let failure = match built {
            Ok(Ok(mut stage)) => {
                ctx.metrics.set_up(name, true);
                match AssertUnwindSafe(drive(&mut stage, &ctx, &mut shutdown)).catch_unwind().await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => e,
                    Err(p) => StageError::Fatal(format!("panic: {}", panic_message(p.as_ref()))),
                }
            }
            Ok(Err(e)) => e,
            Err(p) => StageError::Fatal(format!("panic while starting: {}", panic_message(p.as_ref()))),
        };
        ctx.metrics.set_up(name, false);
        if started.elapsed() >= HEALTHY_AFTER {
            delays = retry_delays();
        }
        let wait = delays.next().unwrap_or(Duration::from_secs(30));
        error!(stage = name, error = %failure, restart_in = ?wait, "stage failed; the other stages keep running");
        tokio::select! {
            _ = tokio::time::sleep(wait) => info!(stage = name, "restarting stage"),
            _ = shutdown.wait() => break,
        }
    }
    ctx.metrics.set_up(name, false);
}
