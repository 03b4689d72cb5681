//! The tables of the agent's configuration file, as written: `[agent]`,
//! `[discovery]`, `[health]`, `[failover]`, `[upload]` and `[[link]]`, with
//! their defaults and the checks of one value alone (the collector URL).
//! Checks across tables and the plans made from them are the parent's.

use super::ProbeSpec;
use crate::shared::logging::LogFormat;
use crate::wire::LinkKind;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// `[agent]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// Name of this device as the collector knows it (default: host name).
    pub device_name: Option<String>,
    /// Local status and metrics listener (`status`, `/metrics`).
    pub status_listen: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            device_name: None,
            status_listen: "127.0.0.1:9477".parse().expect("static address"),
            log_format: LogFormat::Auto,
            log_level: "info".into(),
        }
    }
}

/// `[discovery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverySection {
    /// Find uplinks by themselves; links declared with `[[link]]` always win.
    pub enabled: bool,
    /// Interfaces to watch even though discovery would skip them (veth, bridges, ...).
    pub include: Vec<String>,
    /// Interfaces never to watch. A trailing `*` matches a prefix.
    pub exclude: Vec<String>,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        DiscoverySection {
            enabled: true,
            include: vec![],
            exclude: vec![],
        }
    }
}

/// `[health]`: timing and thresholds of the health state machine.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSection {
    #[serde(with = "humantime_serde")]
    pub interval_active: Duration,
    #[serde(with = "humantime_serde")]
    pub interval_standby: Duration,
    #[serde(with = "humantime_serde")]
    pub interval_metered_standby: Duration,
    /// Rounds on a metered active link whose traffic is used as evidence.
    #[serde(with = "humantime_serde")]
    pub interval_metered_active: Duration,
    /// Use the packets a metered active link carries as evidence that it
    /// works (probing it slowly while they flow), instead of fast rounds.
    pub traffic_evidence: bool,
    #[serde(with = "humantime_serde")]
    pub app_interval_active: Duration,
    #[serde(with = "humantime_serde")]
    pub app_interval_standby: Duration,
    #[serde(with = "humantime_serde")]
    pub app_interval_metered_standby: Duration,
    #[serde(with = "humantime_serde")]
    pub app_interval_metered_active: Duration,
    /// Consecutive failed rounds before a link is declared `down`.
    pub down_after: u32,
    /// Consecutive clean rounds before a `down` link is `up` again.
    pub up_after: u32,
    /// Reachability targets that must answer for a round to count as clean.
    pub quorum: u32,
    #[serde(with = "humantime_serde")]
    pub timeout_min: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout_max: Duration,
    /// Rounds in the sliding window for loss and latency.
    pub window: u32,
    pub loss_degraded_pct: f64,
    #[serde(with = "humantime_serde")]
    pub latency_degraded: Duration,
    /// Consecutive failures of one application check before `degraded`
    /// (a captive portal is believed at once).
    pub app_fail_after: u32,
    /// ICMP payload size in bytes (small keeps metered links cheap).
    pub icmp_payload: u16,
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            interval_active: Duration::from_millis(500),
            interval_standby: Duration::from_secs(5),
            interval_metered_standby: Duration::from_secs(15),
            interval_metered_active: Duration::from_secs(20),
            traffic_evidence: true,
            app_interval_active: Duration::from_secs(30),
            app_interval_standby: Duration::from_secs(300),
            app_interval_metered_standby: Duration::from_secs(1800),
            app_interval_metered_active: Duration::from_secs(600),
            down_after: 4,
            up_after: 5,
            quorum: 1,
            timeout_min: Duration::from_millis(300),
            timeout_max: Duration::from_secs(3),
            window: 60,
            loss_degraded_pct: 30.0,
            latency_degraded: Duration::from_millis(800),
            app_fail_after: 2,
            icmp_payload: 8,
        }
    }
}

/// How the agent acts on its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailoverMode {
    /// `networkmanager` when NetworkManager runs on the system bus, `observe` otherwise
    /// (laptops). Never `routes`: a gateway says so.
    #[default]
    Auto,
    /// Measure and report only; never touch routes.
    Observe,
    /// Own the default routes (office gateways).
    Routes,
    /// Let NetworkManager move the default route: the agent changes the route metrics of its
    /// active connections (laptops where NetworkManager owns the routes).
    NetworkManager,
}

impl FailoverMode {
    /// The spelling in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverMode::Auto => "auto",
            FailoverMode::Observe => "observe",
            FailoverMode::Routes => "routes",
            FailoverMode::NetworkManager => "networkmanager",
        }
    }

    /// Modes in which the agent looks for NetworkManager.
    pub fn uses_networkmanager(self) -> bool {
        matches!(self, FailoverMode::Auto | FailoverMode::NetworkManager)
    }
}

/// When to flush connection-tracking entries of a link we moved away from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConntrackFlush {
    #[default]
    Keep,
    /// Flush the old link's flows on failover (so NATed flows re-establish on the new link).
    OnFailover,
    /// Flush the backup's flows on fail-back (so nothing stays pinned to a metered link).
    OnFailback,
    Both,
}

/// `[failover]`: which link carries the default route, and how it moves.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverSection {
    pub mode: FailoverMode,
    /// Log route changes instead of making them (`routes` mode only).
    pub dry_run: bool,
    /// A better link must be clean this long before traffic fails back to it.
    #[serde(with = "humantime_serde")]
    pub hold_down: Duration,
    /// The hold-down doubles on every flap within `flap_window`, up to this.
    #[serde(with = "humantime_serde")]
    pub hold_down_max: Duration,
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// Never fail back automatically while the current link is up.
    pub sticky: bool,
    /// Metric of the chosen link's default route; the others get +10 per rank.
    pub metric_base: u32,
    /// Links whose default routes the agent manages (default: every watched link).
    pub manage: Option<Vec<String>>,
    /// Start with a manual preference for this link (as `linkwatch prefer`).
    pub prefer: Option<String>,
    pub conntrack_flush: ConntrackFlush,
    /// Command run on every link state change and every failover, with the
    /// facts in `LINKWATCH_*` environment variables.
    pub hook: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub hook_timeout: Duration,
}

impl Default for FailoverSection {
    fn default() -> Self {
        FailoverSection {
            mode: FailoverMode::Auto,
            dry_run: false,
            hold_down: Duration::from_secs(10),
            hold_down_max: Duration::from_secs(300),
            flap_window: Duration::from_secs(600),
            sticky: false,
            metric_base: 10,
            manage: None,
            prefer: None,
            conntrack_flush: ConntrackFlush::Keep,
            hook: None,
            hook_timeout: Duration::from_secs(5),
        }
    }
}

/// `[upload]`: the local spool and the upload of its records to the collector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSection {
    /// Collector base URL (`https://...`; `http://` only to a loopback
    /// address). None: records are spooled and never uploaded.
    pub collector_url: Option<String>,
    /// File holding this device's bearer token (required with `collector_url`).
    pub token_file: Option<PathBuf>,
    /// Extra CA certificate(s), PEM, trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// The spool's SQLite file.
    pub spool_path: PathBuf,
    /// Payload budget of the spool; beyond it old minute summaries and
    /// heartbeats are folded (transitions are never dropped).
    pub spool_max_bytes: u64,
    /// Most records per upload request (at most 5000).
    pub batch_max_records: usize,
    /// How often a heartbeat record is written.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How often the spool is drained (also at once when a link comes back).
    #[serde(with = "humantime_serde")]
    pub upload_interval: Duration,
    /// Records that matter at once (link state changes, failovers, start,
    /// stop, clock steps, facts) are sent this long after they are made
    /// rather than at the next interval (the wait gathers a burst into one
    /// request). Never longer than `upload_interval`.
    #[serde(with = "humantime_serde")]
    pub urgent_delay: Duration,
    /// Longest wait between failed attempts (back-off from 1 s, doubling, jittered).
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// When the only links online are metered, hold a large backlog back.
    pub hold_backlog_on_metered: bool,
    /// A backlog of this many records or more is "large".
    pub metered_backlog_threshold: u64,
}

impl Default for UploadSection {
    fn default() -> Self {
        UploadSection {
            collector_url: None,
            token_file: None,
            ca_file: None,
            spool_path: PathBuf::from("/var/lib/linkwatch/spool.db"),
            spool_max_bytes: 64 * 1024 * 1024,
            batch_max_records: 2000,
            heartbeat: Duration::from_secs(60),
            upload_interval: Duration::from_secs(300),
            urgent_delay: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            hold_backlog_on_metered: false,
            metered_backlog_threshold: 5000,
        }
    }
}

impl UploadSection {
    /// Check a collector URL: `https://`, or `http://` to a loopback
    /// address; returns the parsed URL or what is wrong with it.
    pub fn check_collector_url(url: &str) -> Result<reqwest::Url, String> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL ({e})"))?;
        let host = parsed.host_str().unwrap_or("");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "`{url}` must start with https:// (http:// only to a loopback address)"
                ));
            }
        }
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        Ok(parsed)
    }
}

/// `[[link]]`: a link declared by hand. Overrides discovery for that interface.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Interface name (`eth0`, `wlan0`, `wwan0`, ...).
    pub name: String,
    /// broadband, wifi or mobile (default: classified from the kernel's facts).
    pub kind: Option<LinkKind>,
    /// Lower wins. Default: broadband 10, wifi 20, mobile 30.
    pub priority: Option<u32>,
    /// Metered links are probed sparingly. Default: true for mobile.
    pub metered: Option<bool>,
    /// Presets for this link (default: the top-level `presets`).
    pub presets: Option<Vec<String>>,
    /// Probes for this link, added to its presets (default: the top-level `probes`).
    pub probes: Option<Vec<ProbeSpec>>,
    /// Round quorum for this link (default: `health.quorum`).
    pub quorum: Option<u32>,
    /// IPv4 gateway for the agent's own default route through this link
    /// (`routes` mode; default: learned from the route DHCP installed).
    pub gateway: Option<std::net::Ipv4Addr>,
    /// IPv6 gateway for the agent's own IPv6 default route through this link
    /// (`routes` mode; default: learned from the route the router
    /// advertisement, DHCPv6 client or administrator installed).
    pub gateway6: Option<std::net::Ipv6Addr>,
}
