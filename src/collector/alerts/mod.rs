//! Alerts: telling the right people when an officer or an office goes
//! offline (see `docs/alerts.md`). Decide, then act:
//!
//! - [`evaluate`]: the rules, pure (facts with timestamps, the open alerts,
//!   silences and `now` in; alerts to open, update, resolve and notices to
//!   send out), in [`unreachable`] (silence, office grouping) and
//!   [`gateway`] (not running, failover, link down, metered traffic), with
//!   [`rules`] (the compiled rules, branches, schedule arithmetic) and
//!   [`model`] (the types in and out);
//! - [`annotate`]: what a silent device's late data says happened;
//! - [`contacts`]: who is told, and the routing along the hierarchy;
//! - [`message`] and [`template`]: the texts, Bangla and English;
//! - [`outbox`]: the delivery decisions, pure (rows, retries, rate limits);
//! - [`channels`]: the senders (webhook, e-mail, SMS) behind one trait;
//! - [`ack`]: signed acknowledgement links;
//! - [`run`]: the collector's evaluator and delivery loop (I/O).
//!
//! The configuration (`[alerts]`) is `crate::config::alerts`.

pub mod ack;
pub mod annotate;
pub mod branch;
pub mod channels;
pub mod contacts;
pub mod contacts_import;
pub mod evaluate;
pub mod gateway;
pub mod message;
pub mod model;
pub mod outbox;
pub mod rules;
pub mod run;
pub mod template;
pub mod unreachable;

pub use evaluate::{Input, annotation_requests, evaluate};
pub use model::*;

use std::fmt;

/// A secret from the configuration (password, token, key, a URL carrying
/// one): its Debug and Display show nothing of it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests;
