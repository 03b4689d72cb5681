//! Pieces both the agent and the collector use: logging set-up, time
//! helpers, files holding secrets, systemd notifications and the TLS provider.

pub mod files;
pub mod logging;
pub mod sd;
pub mod time;
pub mod tls;
