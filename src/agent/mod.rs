//! The agent: finds links, probes each through itself, keeps a health state per
//! link and publishes it (status listener, metrics).

pub mod check;
pub mod health;
pub mod links;
pub mod netlink;
pub mod probe;
pub mod run;
pub mod status;
pub mod worker;
