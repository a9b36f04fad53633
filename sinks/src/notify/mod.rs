//! The notifier: alert changes (topic `alerts`) → log, Slack, email and GitHub issues, and
//! every outcome → the `notifications` topic (archived as the `notifications` table).
//!
//! The alert processor already decided what is worth a message; here an alert group (the
//! changes one verdict, detection or pin made) is gathered — its records are held until the
//! last one arrives — routed, rendered from the templates and sent once per channel. A
//! channel that fails transiently is retried with backoff (the channels that succeeded are
//! not sent to again); after `max_attempts`, or at once on a refusal, the outcome is
//! recorded as failed and the record dead-lettered with the reason. Silenced alerts are
//! recorded, not sent.
//!
//! Restarts never send twice what was recorded: at start-up the notification ids already
//! recorded (table and log) are skipped, and the offsets of a group are stored only after
//! its outcomes are published. (A crash between a channel's answer and the outcome's
//! publication can still resend that one message: delivery is at-least-once; the email
//! Message-ID is stable so mail clients thread a resend.)
//!
//! # Layout
//! - [`config`] — channels, routes, secrets; [`route`] — routing and rate limits
//! - [`message`] — the message model and templates
//! - [`slack`], [`email`], [`github`] — the channels

pub mod config;
pub mod email;
pub mod github;
pub mod message;
pub mod route;
pub mod slack;
mod stage;
#[cfg(test)]
mod tests;

pub use config::{ChannelConfig, NotifyConfig, RouteConfig, Secret, SecretSource, SmtpSecurity};
pub use stage::NotifyStage;

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying: the endpoint is down, overloaded or timed out.
    Transient(String),
    /// The endpoint refuses this message: retrying will not help.
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(e) | Failure::Refused(e) => f.write_str(e),
        }
    }
}
