//! The agent: finds links, probes each through itself, keeps a health state per
//! link and publishes it (status listener, metrics).

pub mod check;
pub mod conntrack;
pub mod evidence;
pub mod health;
pub mod hooks;
pub mod host;
pub mod links;
pub mod netlink;
pub mod nm;
pub mod policy;
pub mod probe;
pub mod record;
pub mod report;
pub mod routes;
pub mod run;
pub mod spool;
pub mod status;
pub mod traffic;
pub mod upload;
pub mod worker;
