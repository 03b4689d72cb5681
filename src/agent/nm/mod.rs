//! `failover.mode = "networkmanager"`: on laptops where NetworkManager owns the routes, the
//! agent's policy decides and NetworkManager applies.
//!
//! NetworkManager is reached over the D-Bus system bus ([`dbus`], zbus) behind the small
//! [`NetworkManager`] trait, so everything above it is tested without a bus. The agent
//! - finds out at start whether NetworkManager runs, whether it lets the agent control the
//!   network (polkit action `org.freedesktop.NetworkManager.network-control`), how its
//!   connectivity checking is set ([`conf`] for the interval) and which links it manages
//!   ([`control`], [`mode`]);
//! - on every change of the chosen link asks NetworkManager to check connectivity at once
//!   (`CheckConnectivity`), so its own metric penalty agrees sooner;
//! - makes the kernel's default route follow the policy by changing the route metrics of the
//!   *applied* connections the documented way (`GetAppliedConnection`, change
//!   `ipv4.route-metric` / `ipv6.route-metric`, `Reapply` with the version id), never the
//!   saved profiles ([`plan`] decides which metrics, purely);
//! - remembers what it changed in a small state file ([`state`]) and undoes exactly that on
//!   a clean stop, and at the next start after a crash.

pub mod conf;
pub mod control;
pub mod dbus;
pub mod mode;
pub mod plan;
pub mod state;

pub use crate::agent::routes::Family;
pub use control::{Controller, NmHandle};
pub use mode::{ModeChoice, describe};

use async_trait::async_trait;
use std::time::Duration;

/// NetworkManager's view of connectivity (`NMConnectivityState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connectivity {
    Unknown,
    None,
    Portal,
    Limited,
    Full,
}

impl Connectivity {
    pub fn from_u32(v: u32) -> Connectivity {
        match v {
            1 => Connectivity::None,
            2 => Connectivity::Portal,
            3 => Connectivity::Limited,
            4 => Connectivity::Full,
            _ => Connectivity::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Connectivity::Unknown => "unknown",
            Connectivity::None => "none",
            Connectivity::Portal => "portal",
            Connectivity::Limited => "limited",
            Connectivity::Full => "full",
        }
    }
}

/// How NetworkManager's own connectivity checking is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectivityCheck {
    /// Checking is configured (a URI) and compiled in.
    pub available: bool,
    /// Checking is switched on (NetworkManager's run-time switch).
    pub enabled: bool,
    pub uri: Option<String>,
    /// From NetworkManager's configuration files; None when they do not say (NetworkManager
    /// then checks every 300 s).
    pub interval: Option<Duration>,
}

impl ConnectivityCheck {
    /// NetworkManager's interval when its configuration sets none.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

    /// Checks actually run (available, enabled and a non-zero interval).
    pub fn active(&self) -> bool {
        self.available && self.enabled && self.interval != Some(Duration::ZERO)
    }

    /// One line for `status` and `validate`.
    pub fn describe(&self) -> String {
        if !self.active() {
            return "connectivity checking off".into();
        }
        let interval = self.interval.unwrap_or(Self::DEFAULT_INTERVAL);
        format!(
            "connectivity checked every {} at {}",
            humantime::format_duration(interval),
            self.uri.as_deref().unwrap_or("?")
        )
    }
}

/// NetworkManager as found at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NmInfo {
    pub version: String,
    pub connectivity: ConnectivityCheck,
}

/// One interface as NetworkManager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub iface: String,
    /// NetworkManager manages the device.
    pub managed: bool,
    /// The device's connectivity as NetworkManager last checked it (IPv4).
    pub connectivity: Connectivity,
    /// The applied connection, when the device is activated.
    pub applied: Option<Observed>,
}

/// An activated device's applied connection: what [`plan`] works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub link: String,
    pub uuid: String,
    /// The connection's name (`id`), for messages.
    pub id: String,
    /// `ipv4.route-metric` of the applied connection (`-1`: NetworkManager's default).
    pub setting_v4: i64,
    pub setting_v6: i64,
    /// Metric of the default route NetworkManager installed for the device (IPv4), if any.
    pub route_v4: Option<u32>,
    pub route_v6: Option<u32>,
}

impl Observed {
    pub fn setting(&self, f: Family) -> i64 {
        match f {
            Family::V4 => self.setting_v4,
            Family::V6 => self.setting_v6,
        }
    }
    pub fn route(&self, f: Family) -> Option<u32> {
        match f {
            Family::V4 => self.route_v4,
            Family::V6 => self.route_v6,
        }
    }
}

/// Everything the agent asks of NetworkManager.
#[async_trait]
pub trait NetworkManager: Send + Sync {
    /// Is it running, does it let this process control the network, how does it check
    /// connectivity. Errors say which of these failed and how to fix it.
    async fn info(&self) -> Result<NmInfo, NmError>;
    /// One interface (`UnknownDevice` when NetworkManager does not know it).
    async fn device(&self, iface: &str) -> Result<DeviceInfo, NmError>;
    /// Change the route metric settings of `iface`'s applied connection, which must be the
    /// connection `uuid` (`GetAppliedConnection`, change, `Reapply` with its version id).
    async fn set_metrics(
        &self,
        iface: &str,
        uuid: &str,
        v4: Option<i64>,
        v6: Option<i64>,
    ) -> Result<(), NmError>;
    /// Ask NetworkManager to check connectivity now (`CheckConnectivity`); its answer.
    async fn check_connectivity(&self) -> Result<Connectivity, NmError>;
}

/// What went wrong with NetworkManager; every message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NmError {
    #[error(
        "cannot reach the D-Bus system bus at {address} ({reason}): start D-Bus (`systemctl start dbus`, Debian package `dbus`) or set failover.mode = \"observe\""
    )]
    NoBus { address: String, reason: String },
    #[error(
        "NetworkManager is not running (nothing owns org.freedesktop.NetworkManager on the system bus): start it (`systemctl start NetworkManager`) or set failover.mode = \"observe\""
    )]
    NotRunning,
    #[error(
        "NetworkManager does not let this agent ({user}) control the network ({action}: {detail}): run the agent as root, or allow its user the polkit action org.freedesktop.NetworkManager.network-control (packaging/polkit/50-linkwatch-networkmanager.rules does this for the user `linkwatch`)"
    )]
    PermissionDenied {
        user: String,
        action: String,
        detail: String,
    },
    #[error("NetworkManager does not know the interface {iface}")]
    UnknownDevice { iface: String },
    #[error(
        "{iface} has no active NetworkManager connection (or it changed while the agent worked on it): will retry"
    )]
    NotActive { iface: String },
    #[error("NetworkManager: {op} on {object} failed: {message}")]
    Call {
        op: &'static str,
        object: String,
        message: String,
    },
}

impl NmError {
    /// Errors after which NetworkManager must be found again from scratch.
    pub fn lost(&self) -> bool {
        matches!(self, NmError::NoBus { .. } | NmError::NotRunning)
    }
}

#[cfg(test)]
mod tests;
