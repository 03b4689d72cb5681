//! Pieces both the agent and the collector use: logging set-up and time helpers.

pub mod logging;
pub mod time;
