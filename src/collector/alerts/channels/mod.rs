//! How messages leave: a [`Sender`] trait in front of every channel (so the
//! outbox logic is tested without a network), the channels' settings as
//! the configuration compiles them, and the three senders: webhook (generic
//! JSON, Slack- and Microsoft Teams-compatible payloads), e-mail (SMTP with
//! STARTTLS through `lettre`) and SMS through an HTTP gateway template.
//!
//! A failed send says whether trying again can help ([`SendError::permanent`]):
//! refused connections, timeouts, 5xx, 408 and 429 answers and SMTP 4xx
//! replies are transient; other 4xx answers and SMTP 5xx replies are not.

mod email;
mod sms;
mod webhook;

pub use email::{EmailSender, EmailSpec, SmtpTls};
pub use sms::{SMS_PLACEHOLDERS, SmsEncoding, SmsSender, SmsSpec};
pub use webhook::{WebhookFormat, WebhookSender, WebhookSpec, payload};

use crate::collector::alerts::contacts::Language;
use crate::collector::alerts::message::Rendered;
use crate::collector::alerts::model::{AlertView, Event};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One message as the outbox keeps it, ready for any channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Unique per alert, event, level, contact and channel: receivers can
    /// drop repeats (it is the e-mail's Message-ID and in webhook payloads).
    pub dedupe_key: String,
    pub event: Event,
    pub language: Language,
    #[serde(flatten)]
    pub rendered: Rendered,
    pub ack_url: Option<String>,
    /// The alert as data, for webhook receivers.
    pub alert: AlertView,
}

/// A send that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel `{channel}`: {message}")]
pub struct SendError {
    pub channel: String,
    /// Trying again cannot help (the receiver refused the message itself).
    pub permanent: bool,
    pub message: String,
}

impl SendError {
    pub fn transient(channel: &str, message: impl Into<String>) -> Self {
        SendError {
            channel: channel.to_string(),
            permanent: false,
            message: message.into(),
        }
    }
    pub fn permanent(channel: &str, message: impl Into<String>) -> Self {
        SendError {
            channel: channel.to_string(),
            permanent: true,
            message: message.into(),
        }
    }
}

/// Sends one message to one address (an e-mail address, a phone number;
/// empty for webhooks, whose URL is the address).
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, to: &str, msg: &Message) -> Result<(), SendError>;
}

/// What kind of address a channel needs from a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    Email,
    Phone,
}

/// One channel's settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelSpec {
    Webhook(WebhookSpec),
    Email(EmailSpec),
    Sms(SmsSpec),
}

impl ChannelSpec {
    pub fn needs(&self) -> Needs {
        match self {
            ChannelSpec::Webhook(_) => Needs::Nothing,
            ChannelSpec::Email(_) => Needs::Email,
            ChannelSpec::Sms(_) => Needs::Phone,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelSpec::Webhook(_) => "webhook",
            ChannelSpec::Email(_) => "email",
            ChannelSpec::Sms(_) => "sms",
        }
    }

    /// The sender of this channel (named `name` in its errors).
    pub fn sender(&self, name: &str) -> Result<Arc<dyn Sender>, SendError> {
        Ok(match self {
            ChannelSpec::Webhook(s) => Arc::new(WebhookSender::new(name, s.clone())?),
            ChannelSpec::Email(s) => Arc::new(EmailSender::new(name, s)?),
            ChannelSpec::Sms(s) => Arc::new(SmsSender::new(name, s.clone())?),
        })
    }
}

/// The address a contact is reached at on a channel (`None`: it has none).
pub fn address(
    needs: Needs,
    contact: &crate::collector::alerts::contacts::Contact,
) -> Option<String> {
    match needs {
        Needs::Nothing => Some(String::new()),
        Needs::Email => contact.email.clone(),
        Needs::Phone => contact.phone.clone(),
    }
}

/// Every channel's sender, by channel name.
pub fn senders(
    specs: &BTreeMap<String, ChannelSpec>,
) -> Result<BTreeMap<String, Arc<dyn Sender>>, SendError> {
    specs
        .iter()
        .map(|(name, s)| Ok((name.clone(), s.sender(name)?)))
        .collect()
}

/// An HTTP client for a channel: its timeout, no proxy unless one is given.
fn http_client(
    channel: &str,
    timeout: std::time::Duration,
    proxy: Option<&str>,
) -> Result<reqwest::Client, SendError> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("linkwatch/", env!("CARGO_PKG_VERSION")));
    b = match proxy {
        Some(p) => b.proxy(
            reqwest::Proxy::all(p)
                .map_err(|e| SendError::permanent(channel, format!("bad proxy `{p}`: {e}")))?,
        ),
        None => b.no_proxy(),
    };
    b.build()
        .map_err(|e| SendError::permanent(channel, format!("cannot build the HTTP client: {e}")))
}

/// The error of an HTTP exchange, classified.
fn http_error(channel: &str, e: reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The URL may carry a secret (an SMS gateway's key): never show it.
    let e = e.without_url();
    SendError::transient(channel, format!("{what}: {e}"))
}

/// A non-2xx answer, classified: 408, 429 and 5xx may pass, others will not.
fn status_error(channel: &str, status: reqwest::StatusCode, body: &str) -> SendError {
    let snippet: String = body.chars().take(200).collect();
    let message = format!("answered {status}: {}", snippet.trim());
    let transient = status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    if transient {
        SendError::transient(channel, message)
    } else {
        SendError::permanent(channel, message)
    }
}
