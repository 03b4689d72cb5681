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

// rustls picks its crypto provider from the crate features: exactly one must be on.
#[cfg(not(any(feature = "collector", feature = "ring")))]
compile_error!(
    "no TLS crypto provider: build the agent alone with `--no-default-features --features agent-only`"
);
#[cfg(all(feature = "collector", feature = "ring"))]
compile_error!(
    "features `collector` (aws-lc-rs) and `ring` both choose a TLS crypto provider: use one"
);
