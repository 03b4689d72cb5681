//! The collector: authenticated ingest of the agents' records, storage on
//! SQLite (default) or PostgreSQL, device registry and administrative
//! hierarchy. Uptime, alerts and reports come later.

pub mod api;
pub mod devices;
pub mod report;
pub mod schedule;
pub mod server;
pub mod store;
pub mod uptime;
