//! A cloneable shutdown signal: services select on [`Shutdown::wait`] and finish their
//! in-flight work before returning.

use std::sync::Arc;

use tokio::sync::watch;

/// Sender side: trigger once to stop every service holding a [`Shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(Arc<watch::Sender<bool>>);

/// Receiver side, given to each service.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// A new trigger and its signal.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(Arc::new(tx)), Shutdown(rx))
    }

    /// Resolves once shutdown was triggered or every trigger was dropped.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}
