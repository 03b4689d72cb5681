//! The words both sides share: link kinds and states, and the status document
//! the agent publishes. Later the agent-collector protocol v1 lives here too.

pub mod v1;

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of uplink an interface is, as the officer would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Broadband,
    Wifi,
    Mobile,
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkKind::Broadband => "broadband",
            LinkKind::Wifi => "wifi",
            LinkKind::Mobile => "mobile",
        })
    }
}

/// The health of one link (see PRODUCT.md for the meaning of each word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Up,
    Degraded,
    Down,
    Absent,
}

impl LinkState {
    /// Does this link reach the internet (possibly badly)?
    pub fn is_online(self) -> bool {
        matches!(self, LinkState::Up | LinkState::Degraded)
    }
    /// Numeric code used in the `linkwatch_link_state` metric.
    pub fn code(self) -> i64 {
        match self {
            LinkState::Absent => 0,
            LinkState::Down => 1,
            LinkState::Degraded => 2,
            LinkState::Up => 3,
        }
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkState::Up => "up",
            LinkState::Degraded => "degraded",
            LinkState::Down => "down",
            LinkState::Absent => "absent",
        })
    }
}

/// One link as shown by `linkwatch status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub name: String,
    pub kind: LinkKind,
    pub state: LinkState,
    /// Why the link is in this state (`carrier`, `probes`, `loss`, `latency`, `captive`, ...).
    pub reason: Option<String>,
    /// Median round-trip time over the recent window, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Loss over the recent window, percent.
    pub loss_pct: Option<f64>,
    /// When the link entered its current state (RFC 3339, UTC).
    pub since: String,
    /// Does this link carry the default route?
    pub active: bool,
    pub metered: bool,
    pub priority: u32,
    /// Problems that do not change the state but that IT staff should see
    /// (a target that never answers, a probe without permission, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Which link the policy chose and why (see `[failover]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FailoverStatus {
    /// The mode in effect: `observe` (routes untouched), `routes` (the agent owns the
    /// default routes) or `networkmanager` (NetworkManager moves them for the agent).
    pub mode: String,
    /// Why this mode applies (`failover.mode = "auto"` picks one; a mode that cannot work
    /// falls back to `observe` and says why and how to fix it).
    #[serde(default)]
    pub mode_reason: String,
    /// NetworkManager as the agent sees it (modes `auto` and `networkmanager`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networkmanager: Option<NmStatus>,
    /// The link the policy chose.
    pub chosen: Option<String>,
    /// Why the chosen link carries the route: the cause of the last change
    /// (`initial`, `current-down`, `current-degraded`, `fail-back`, `manual`, ...).
    pub cause: String,
    /// One sentence for IT staff.
    pub reason: String,
    /// Manual preference set with `linkwatch prefer`.
    pub preferred: Option<String>,
    /// A better link waiting out its hold-down: name and when it becomes eligible (RFC 3339).
    pub pending: Option<(String, String)>,
    /// Failovers and fail-backs since the agent started.
    pub switches: u64,
}

/// NetworkManager as the agent sees it (`failover.mode` `auto` or `networkmanager`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NmStatus {
    /// The agent acts through NetworkManager now.
    pub active: bool,
    pub version: Option<String>,
    /// NetworkManager's own connectivity checking, in words.
    pub connectivity_check: Option<String>,
    /// What keeps the agent from acting through NetworkManager, and the fix.
    pub error: Option<String>,
    #[serde(default)]
    pub links: Vec<NmLinkStatus>,
}

/// One watched link as NetworkManager has it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NmLinkStatus {
    pub name: String,
    /// NetworkManager manages the interface.
    pub managed: bool,
    /// The active connection's name, if any.
    pub connection: Option<String>,
    /// NetworkManager's connectivity of the device (`full`, `limited`, `portal`, `none`,
    /// `unknown`).
    pub connectivity: String,
    /// The IPv4 / IPv6 route metric the agent applied to the active connection; None while
    /// the connection's own metric is in effect.
    pub metric_v4: Option<u32>,
    pub metric_v6: Option<u32>,
    /// The metric of the default route NetworkManager installed (with its own penalty).
    pub route_v4: Option<u32>,
    pub route_v6: Option<u32>,
}

/// The durable record and its upload, as `status` shows them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordStatus {
    /// Records in the spool not yet acknowledged by the collector.
    pub depth: u64,
    /// Spool payload bytes.
    pub bytes: u64,
    /// Age of the oldest unsent record, seconds.
    pub oldest_unsent_age_s: Option<u64>,
    /// Is a collector configured?
    pub upload_enabled: bool,
    /// Last accepted upload (RFC 3339).
    pub last_upload: Option<String>,
    pub last_error: Option<String>,
    /// Compressed bytes sent to the collector since start.
    pub upload_bytes: u64,
}

/// The whole document served by the agent's status listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub online: bool,
    pub hostname: String,
    pub agent_version: String,
    pub started: String,
    pub links: Vec<LinkStatus>,
    #[serde(default)]
    pub failover: FailoverStatus,
    #[serde(default)]
    pub record: RecordStatus,
}
