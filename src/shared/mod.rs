//! Pieces both the agent and the collector use: logging set-up, time
//! helpers and files holding secrets.

pub mod files;
pub mod logging;
pub mod time;
