//! The collector: authenticated ingest of the agents' records, storage on
//! SQLite (default) or PostgreSQL, device registry and administrative
//! hierarchy, the uptime engine, its daily roll-ups, reports and the read API (API tokens with
//! roles and branch limits), and alerts (rules, routing, channels; `alerts`).

pub mod access;
pub mod alerts;
pub mod conn;
pub mod csv_writer;
pub mod devices;
pub mod fleet_copy;
pub mod http;
pub mod last_seen;
pub mod lead;
pub mod maintainer;
pub mod metrics;
pub mod model;
pub mod outages;
pub mod report;
pub mod rollup;
pub mod server;
pub mod storage;
pub mod store;
pub mod timeline;
pub mod uptime;
pub mod web;
