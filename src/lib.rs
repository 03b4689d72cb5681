//! linkwatch: measure every link of a device through that link, fail over
//! between links, keep a durable record and report it to a collector.
//!
//! `agent` runs on officer devices and office gateways, `collector` centrally;
//! `wire` is the contract between them, `config` and `shared` serve both.

pub mod agent;
#[cfg(feature = "collector")]
pub mod collector;
pub mod config;
pub mod shared;
pub mod wire;
