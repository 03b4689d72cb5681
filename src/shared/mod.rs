//! Pieces both the agent and the collector use: logging set-up, time
//! helpers, files holding secrets, CA files, systemd notifications and the
//! TLS provider; and the uptime schedule (office hours, holidays), which the
//! collector's configuration parses and its uptime engine applies.

pub mod ca_file;
pub mod files;
pub mod logging;
#[cfg(feature = "collector")]
pub mod schedule;
pub mod sd;
pub mod time;
pub mod tls;
