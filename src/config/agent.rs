//! The agent's configuration: links, presets and health thresholds (the
//! probes themselves in [`super::probes`]). Every key is documented in
//! `config.example.toml`.

use super::{ConfigError, read_file};
use crate::wire::LinkKind;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::probes::{NameServer, ProbeDefaults, ProbeRole, ProbeSpec};
pub use sections::{
    AgentSection, ConntrackFlush, DiscoverySection, FailoverMode, FailoverSection, HealthSection,
    LinkConfig, UploadSection,
};

mod sections;

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
    /// The probes of every preset the file names (not a key), by preset
    /// name, resolved when the file is loaded.
    #[serde(skip)]
    pub preset_probes: BTreeMap<String, Vec<ProbeSpec>>,
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
        // The presets' probes first: validation checks the links' plans.
        cfg.preset_probes = cfg.resolve_presets();
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
        super::presets::check_presets("presets", &self.presets).map_err(key_error)?;
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
                super::presets::check_presets(&format!("{key}.presets"), p).map_err(key_error)?;
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

    /// The probes of each preset named at the top or by a link (an unknown
    /// name has none here: [`Self::validate`] refuses it, naming the key).
    fn resolve_presets(&self) -> BTreeMap<String, Vec<ProbeSpec>> {
        let named = self
            .links
            .iter()
            .filter_map(|l| l.presets.as_ref())
            .chain([&self.presets])
            .flatten();
        named
            .filter_map(|name| {
                super::presets::probes(name, &self.preset).map(|p| (name.clone(), p))
            })
            .collect()
    }

    /// The full plan for a link, declared or discovered (`kind` is the
    /// classification for discovered links).
    pub fn plan_for(&self, link: &LinkConfig, discovered_kind: LinkKind) -> LinkPlan {
        let kind = link.kind.unwrap_or(discovered_kind);
        let presets = link.presets.as_ref().unwrap_or(&self.presets);
        let from_presets: Vec<ProbeSpec> = presets
            .iter()
            .filter_map(|p| self.preset_probes.get(p))
            .flatten()
            .cloned()
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
