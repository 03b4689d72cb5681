//! Alerts: telling the right people when an officer or an office goes
//! offline (see `docs/alerts.md`). Decide, then act:
//!
//! - [`evaluate`]: the rules, pure (facts with timestamps, the open alerts,
//!   silences and `now` in; alerts to open, update, resolve and notices to
//!   send out), in [`unreachable`] (silence, office grouping) and
//!   [`gateway`] (not running, failover, link down, metered traffic), with
//!   [`rules`] (the compiled rules, branches, schedule arithmetic) and
//!   [`model`] (the types in and out);
//! - [`links`]: a gateway's links as its records tell (pure);
//! - [`annotate`]: what a silent device's late data says happened;
//! - [`contacts`]: who is told, and the routing along the hierarchy;
//! - [`message`] and [`template`]: the texts, Bangla and English;
//! - [`outbox`]: the delivery decisions, pure (rows, retries, rate limits);
//! - [`channels`]: the senders (webhook, e-mail, SMS) behind one trait;
//! - [`silence`]: silences and maintenance windows as asked for (API,
//!   CLI), checked, and what a token limited to a branch may silence;
//! - [`ack`]: signed acknowledgement links;
//! - [`wake`]: when to evaluate next (the next due time, pure);
//! - [`run`]: the collector's evaluator and delivery loop (I/O).
//!
//! The configuration (`[alerts]`) is `crate::config::alerts` as written;
//! [`setup`] compiles it into what the engine uses ([`AlertsConfig`]).

pub mod ack;
pub mod annotate;
pub mod branch;
pub mod channels;
pub mod contacts;
pub mod contacts_import;
pub mod evaluate;
pub mod gateway;
pub mod links;
pub mod message;
pub mod model;
pub mod outbox;
pub mod rules;
pub mod run;
pub mod setup;
pub mod silence;
pub mod template;
pub mod unreachable;
pub mod wake;

pub use evaluate::{Input, annotation_requests, evaluate};
pub use model::*;
pub use setup::AlertsConfig;

/// A secret from the configuration; defined with the configuration.
pub use crate::shared::secret::Secret;

#[cfg(test)]
mod tests;
