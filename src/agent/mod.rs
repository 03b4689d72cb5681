//! The agent: finds links, probes each through itself, keeps a health state per
//! link and publishes it (status listener, metrics).

pub mod health;
pub mod links;
pub mod netlink;
pub mod probe;
