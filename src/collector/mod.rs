//! The collector: authenticated ingest of the agents' records, storage on
//! SQLite (default) or PostgreSQL, device registry and administrative
//! hierarchy, API tokens with roles and branch limits, the uptime engine and
//! reports. Alerts come later.

pub mod access;
pub mod api;
pub mod devices;
pub mod report;
pub mod schedule;
pub mod server;
pub mod store;
pub mod uptime;
