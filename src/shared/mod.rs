//! Pieces both the agent and the collector use: logging set-up, time
//! helpers, secrets from configuration files, files holding secrets, CA files, the embedded SQL migrations, systemd notifications and the
//! TLS provider; and the uptime schedule (office hours, holidays), which the
//! collector's configuration parses and its uptime engine applies.

pub mod ca_file;
pub mod files;
pub mod logging;
pub mod migrations;
#[cfg(feature = "collector")]
pub mod schedule;
pub mod sd;
pub mod secret;
pub mod time;
pub mod tls;
