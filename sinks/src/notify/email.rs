//! Email over SMTP with lettre: an HTML body with a plain-text alternative. The Message-ID
//! is derived from the notification id, so a receiver can tell a resend after a crash.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header::MessageId};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::Failure;
use super::config::{Secret, SmtpSecurity};
use crate::error::SinkError;

/// `<hex@trackiq>`, the same for the same key.
fn message_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("<{}@trackiq>", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
}

/// One SMTP channel.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// Settings of one SMTP channel, secrets read.
pub struct MailerSettings<'a> {
    pub channel: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    pub credentials: Option<(String, Secret)>,
    pub from: &'a str,
    pub to: &'a [String],
    pub timeout: Duration,
}

impl Mailer {
    pub fn new(s: MailerSettings<'_>) -> Result<Mailer, SinkError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| SinkError::NotifyConfig(format!("channel `{}`: {what}: {e}", s.channel));
        let builder = match s.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host).port(s.port.unwrap_or(25)),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(s.host).map_err(|e| bad("STARTTLS", &e))?.port(s.port.unwrap_or(587)),
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(s.host).map_err(|e| bad("TLS", &e))?.port(s.port.unwrap_or(465)),
        };
        let builder = builder.timeout(Some(s.timeout));
        let builder = match s.credentials {
            Some((user, password)) => builder.credentials(Credentials::new(user, password.expose().to_string())),
            None => builder,
        };
        let from = s.from.parse().map_err(|e| bad("`from`", &e))?;
        let to = s.to.iter().map(|t| t.parse::<Mailbox>().map_err(|e| bad(&format!("recipient `{t}`"), &e))).collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(SinkError::NotifyConfig(format!("channel `{}`: no recipients (`to`)", s.channel)));
        }
        Ok(Mailer { transport: builder.build(), from, to })
    }

    /// Sends one message; returns its Message-ID. Messages of one episode (fired, worse,
    /// resolved) refer to the same thread id, so mail clients show them as one thread.
    pub async fn send(&self, notification_id: &str, episode: &str, subject: &str, text: String, html: String) -> Result<String, Failure> {
        let id = message_id(notification_id);
        let thread = message_id(episode);
        let mut b = Message::builder().from(self.from.clone()).subject(subject).header(MessageId::from(id.clone())).in_reply_to(thread.clone()).references(thread);
        for t in &self.to {
            b = b.to(t.clone());
        }
        let message = b.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|e| Failure::Refused(format!("building the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(id),
            Err(e) if e.is_permanent() => Err(Failure::Refused(format!("SMTP server refused the message: {e}"))),
            Err(e) => Err(Failure::Transient(format!("SMTP: {e}"))),
        }
    }
}
