//! The agent's configuration: links, presets and health thresholds (the
//! probes themselves in [`super::probes`]). Every key is documented in
//! `config.example.toml`.

use super::{ConfigError, read_file};
use crate::shared::logging::LogFormat;
use crate::wire::LinkKind;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::probes::{NameServer, ProbeDefaults, ProbeRole, ProbeSpec};

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

/// The whole agent configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default)]
    pub agent: AgentSection,
    #[serde(default)]
    pub discovery: DiscoverySection,
    #[serde(default)]
    pub health: HealthSection,
    #[serde(default)]
    pub failover: FailoverSection,
    #[serde(default)]
    pub upload: UploadSection,
    /// Presets used by links that name none (`internet`, `whatsapp`).
    #[serde(default = "default_presets")]
    pub presets: Vec<String>,
    /// Probes added to every link that declares none of its own.
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
    /// Nameservers and CA file for every probe that sets none (presets too).
    #[serde(default)]
    pub probe_defaults: ProbeDefaults,
    /// `[preset.whatsapp]`: where the named presets look.
    #[serde(default)]
    pub preset: super::presets::PresetSettings,
    #[serde(default, rename = "link")]
    pub links: Vec<LinkConfig>,
    /// Where this configuration was read from (not a key).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_presets() -> Vec<String> {
    vec!["internet".into()]
}

/// Everything the agent needs to know about one link, after defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPlan {
    pub name: String,
    pub kind: LinkKind,
    pub priority: u32,
    pub metered: bool,
    pub quorum: u32,
    pub probes: Vec<ProbeSpec>,
}

pub fn default_priority(kind: LinkKind) -> u32 {
    match kind {
        LinkKind::Broadband => 10,
        LinkKind::Wifi => 20,
        LinkKind::Mobile => 30,
    }
}

impl AgentConfig {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_file(path)?;
        Self::parse(&text, path)
    }

    /// Parse and validate config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.path = path.to_path_buf();
        cfg.validate()?;
        Ok(cfg)
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Check every rule the type system cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let h = &self.health;
        let positive = [
            ("health.interval_active", h.interval_active),
            ("health.interval_standby", h.interval_standby),
            (
                "health.interval_metered_standby",
                h.interval_metered_standby,
            ),
            ("health.interval_metered_active", h.interval_metered_active),
            ("health.app_interval_active", h.app_interval_active),
            ("health.app_interval_standby", h.app_interval_standby),
            (
                "health.app_interval_metered_standby",
                h.app_interval_metered_standby,
            ),
            (
                "health.app_interval_metered_active",
                h.app_interval_metered_active,
            ),
        ];
        for (key, d) in positive {
            if d < Duration::from_millis(100) {
                return Err(self.invalid(key, "must be at least 100ms, for example \"500ms\""));
            }
        }
        if h.timeout_min.is_zero() || h.timeout_min > h.timeout_max {
            return Err(self.invalid(
                "health.timeout_min",
                "must be above zero and not above health.timeout_max",
            ));
        }
        for (key, v) in [
            ("health.down_after", h.down_after),
            ("health.up_after", h.up_after),
            ("health.quorum", h.quorum),
            ("health.window", h.window),
            ("health.app_fail_after", h.app_fail_after),
        ] {
            if v == 0 {
                return Err(self.invalid(key, "must be 1 or more"));
            }
        }
        if !(0.0..=100.0).contains(&h.loss_degraded_pct) || h.loss_degraded_pct.is_nan() {
            return Err(self.invalid(
                "health.loss_degraded_pct",
                "must be a percentage between 0 and 100",
            ));
        }
        if h.icmp_payload > 1400 {
            return Err(self.invalid("health.icmp_payload", "must be 1400 bytes or fewer"));
        }
        self.validate_failover()?;
        self.validate_upload()?;
        let key_error = |(key, message): super::probes::KeyError| self.invalid(key, message);
        super::probes::check_defaults(&self.probe_defaults).map_err(key_error)?;
        super::probes::check_presets("presets", &self.presets).map_err(key_error)?;
        super::presets::check_settings(&self.preset).map_err(key_error)?;
        super::probes::check_probes("probes", &self.probes).map_err(key_error)?;
        let mut names = HashSet::new();
        for (i, link) in self.links.iter().enumerate() {
            let key = format!("link[{i}]");
            if link.name.is_empty() || link.name.len() > 15 || link.name.contains('/') {
                return Err(self.invalid(
                    format!("{key}.name"),
                    "must be an interface name of 1 to 15 characters without `/`",
                ));
            }
            if !names.insert(link.name.clone()) {
                return Err(self.invalid(
                    format!("{key}.name"),
                    format!("link `{}` is declared twice: keep one [[link]]", link.name),
                ));
            }
            if let Some(p) = &link.presets {
                super::probes::check_presets(&format!("{key}.presets"), p).map_err(key_error)?;
            }
            if let Some(p) = &link.probes {
                super::probes::check_probes(&format!("{key}.probes"), p).map_err(key_error)?;
            }
            if link.quorum == Some(0) {
                return Err(self.invalid(format!("{key}.quorum"), "must be 1 or more"));
            }
            let plan = self.plan_for(link, link.kind.unwrap_or(LinkKind::Broadband));
            let reach = plan
                .probes
                .iter()
                .filter(|p| p.role() == ProbeRole::Reach)
                .count() as u32;
            if reach == 0 {
                return Err(self.invalid(
                    format!("{key}.probes"),
                    "the link has no reachability probe (icmp or tcp): add one or a preset such as \"internet\"",
                ));
            }
            if plan.quorum > reach {
                return Err(self.invalid(
                    format!("{key}.quorum"),
                    format!(
                        "quorum {} is more than the link's {} reachability targets: lower it",
                        plan.quorum, reach
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_failover(&self) -> Result<(), ConfigError> {
        let f = &self.failover;
        if f.hold_down.is_zero() || f.hold_down > f.hold_down_max {
            return Err(self.invalid(
                "failover.hold_down",
                "must be above zero and not above failover.hold_down_max",
            ));
        }
        if f.flap_window.is_zero() {
            return Err(self.invalid("failover.flap_window", "must be above zero"));
        }
        if f.metric_base == 0 || f.metric_base > 1_000_000 {
            return Err(self.invalid(
                "failover.metric_base",
                "must be between 1 and 1000000 (below the metrics DHCP uses, e.g. 10)",
            ));
        }
        if f.hook_timeout.is_zero() {
            return Err(self.invalid("failover.hook_timeout", "must be above zero"));
        }
        let declared: Vec<&str> = self.links.iter().map(|l| l.name.as_str()).collect();
        let unknown = |key: String, name: &str| {
            self.invalid(
                key,
                format!(
                    "unknown link `{name}`: declare it with [[link]] name = \"{name}\" (declared: {})",
                    if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    }
                ),
            )
        };
        if let Some(m) = &f.manage {
            for (i, n) in m.iter().enumerate() {
                if !declared.contains(&n.as_str()) {
                    return Err(unknown(format!("failover.manage[{i}]"), n));
                }
            }
        }
        if let Some(p) = &f.prefer
            && !declared.contains(&p.as_str())
        {
            return Err(unknown("failover.prefer".into(), p));
        }
        if let Some(h) = &f.hook
            && !h.is_absolute()
        {
            return Err(self.invalid("failover.hook", "must be an absolute path to an executable"));
        }
        if f.mode == FailoverMode::Routes {
            for (i, a) in self.links.iter().enumerate() {
                for b in &self.links[..i] {
                    if a.priority.is_some() && a.priority == b.priority {
                        return Err(self.invalid(
                            format!("link[{i}].priority"),
                            format!(
                                "links `{}` and `{}` both have priority {}: in routes mode give each link its own priority",
                                b.name,
                                a.name,
                                a.priority.unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_upload(&self) -> Result<(), ConfigError> {
        let u = &self.upload;
        if let Some(url) = &u.collector_url {
            UploadSection::check_collector_url(url)
                .map_err(|m| self.invalid("upload.collector_url", m))?;
            if u.token_file.is_none() {
                return Err(self.invalid(
                    "upload.token_file",
                    "is required with upload.collector_url: the file holding this device's token \
                     (from `linkwatch device add`)",
                ));
            }
        }
        if u.spool_path.as_os_str().is_empty() {
            return Err(self.invalid("upload.spool_path", "must be a file path"));
        }
        if u.spool_max_bytes < 64 * 1024 {
            return Err(self.invalid(
                "upload.spool_max_bytes",
                "must be at least 65536 (64 KiB); the default is 67108864 (64 MiB)",
            ));
        }
        if u.batch_max_records == 0 || u.batch_max_records > crate::wire::v1::MAX_RECORDS {
            return Err(self.invalid(
                "upload.batch_max_records",
                format!("must be 1 to {}", crate::wire::v1::MAX_RECORDS),
            ));
        }
        for (key, d) in [
            ("upload.heartbeat", u.heartbeat),
            ("upload.upload_interval", u.upload_interval),
            ("upload.backoff_max", u.backoff_max),
        ] {
            if d < Duration::from_secs(1) {
                return Err(self.invalid(key, "must be at least 1s, for example \"60s\""));
            }
        }
        Ok(())
    }

    /// The full plan for a link, declared or discovered (`kind` is the
    /// classification for discovered links).
    pub fn plan_for(&self, link: &LinkConfig, discovered_kind: LinkKind) -> LinkPlan {
        let kind = link.kind.unwrap_or(discovered_kind);
        let presets = link.presets.as_ref().unwrap_or(&self.presets);
        let from_presets: Vec<ProbeSpec> = presets
            .iter()
            .flat_map(|p| super::presets::probes(p, &self.preset).unwrap_or_default())
            .collect();
        let mut probes = self.probe_defaults.apply(from_presets, true);
        let own = link.probes.as_ref().unwrap_or(&self.probes).clone();
        probes.extend(self.probe_defaults.apply(own, false));
        let mut seen = HashSet::new();
        probes.retain(|p| seen.insert(p.label()));
        LinkPlan {
            name: link.name.clone(),
            kind,
            priority: link.priority.unwrap_or_else(|| default_priority(kind)),
            metered: link.metered.unwrap_or(kind == LinkKind::Mobile),
            quorum: link.quorum.unwrap_or(self.health.quorum),
            probes,
        }
    }

    /// Plan for an interface found by discovery and not declared.
    pub fn plan_discovered(&self, name: &str, kind: LinkKind) -> LinkPlan {
        let link = LinkConfig {
            name: name.to_string(),
            kind: None,
            priority: None,
            metered: None,
            presets: None,
            probes: None,
            quorum: None,
            gateway: None,
            gateway6: None,
        };
        let mut plan = self.plan_for(&link, kind);
        let reach = plan
            .probes
            .iter()
            .filter(|p| p.role() == ProbeRole::Reach)
            .count() as u32;
        plan.quorum = plan.quorum.min(reach.max(1));
        plan
    }

    /// The declared link of that name, if any.
    pub fn declared(&self, name: &str) -> Option<&LinkConfig> {
        self.links.iter().find(|l| l.name == name)
    }
}

/// Path helper for messages.
pub fn display_path(p: &Path) -> PathBuf {
    p.to_path_buf()
}
