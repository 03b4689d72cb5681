//! Pieces both the agent and the collector use: logging set-up, time
//! helpers, files holding secrets and systemd notifications.

pub mod files;
pub mod logging;
pub mod sd;
pub mod time;
