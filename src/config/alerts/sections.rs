//! The tables of `[alerts]` as written (rules, office grouping, delivery,
//! templates, contacts and channels by name), with their defaults, which the
//! alert engine's defaults are made from. `collector::alerts::setup` compiles
//! them.

use super::ChannelSection;
use crate::shared::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[alerts]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Evaluate rules and send notices.
    pub enabled: bool,
    /// How often the rules are evaluated (4 s by default: with the round's
    /// own time, an alert leaves within 5 s of its deadline plus `grace`).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Silence tolerated past a device's announced upload deadline.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// The upload interval assumed for agents that announce no deadline.
    #[serde(with = "humantime_serde")]
    pub upload_interval: Duration,
    /// Time zone of messages about devices whose office has no hours of its own.
    pub time_zone: String,
    /// Default escalation delay of the rules (`"30m"`, or `"never"`).
    pub escalate_after: String,
    /// HMAC key of acknowledgement links (32 bytes or more), or `ack_key_file`.
    pub ack_key: Option<Secret>,
    pub ack_key_file: Option<PathBuf>,
    /// The acknowledgement page the links lead to (the token is added as `t`).
    pub ack_url: Option<String>,
    #[serde(with = "humantime_serde")]
    pub ack_link_ttl: Duration,
    /// More contacts, CSV or TOML (like the hierarchy file).
    pub contacts_file: Option<PathBuf>,
    /// The devices that are office gateways (by name): the `gateways`
    /// rules watch them (link warnings from their records), and an
    /// unreachable gateway takes its office offline.
    pub gateways: Vec<String>,
    pub office_offline: OfficeOfflineSection,
    pub delivery: DeliverySection,
    /// The rules; none written: the defaults (see [`default_rules`]).
    pub rule: Vec<RuleSection>,
    pub contact: Vec<ContactEntry>,
    pub channel: BTreeMap<String, ChannelSection>,
    pub templates: TemplatesSection,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            enabled: true,
            interval: Duration::from_secs(4),
            grace: Duration::from_secs(120),
            upload_interval: Duration::from_secs(300),
            time_zone: crate::shared::schedule::DEFAULT_TZ.into(),
            escalate_after: "30m".into(),
            ack_key: None,
            ack_key_file: None,
            ack_url: None,
            ack_link_ttl: Duration::from_secs(7 * 86_400),
            contacts_file: None,
            gateways: Vec::new(),
            office_offline: OfficeOfflineSection::default(),
            delivery: DeliverySection::default(),
            rule: Vec::new(),
            contact: Vec::new(),
            channel: BTreeMap::new(),
            templates: TemplatesSection::default(),
        }
    }
}

/// `[alerts.office_offline]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfficeOfflineSection {
    pub enabled: bool,
    pub fraction: f64,
    pub min_devices: usize,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    #[serde(with = "humantime_serde")]
    pub wait: Duration,
}

impl Default for OfficeOfflineSection {
    fn default() -> Self {
        OfficeOfflineSection {
            enabled: true,
            fraction: 0.5,
            min_devices: 2,
            window: Duration::from_secs(10 * 60),
            wait: Duration::from_secs(3 * 60),
        }
    }
}

/// `[alerts.delivery]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    #[serde(with = "humantime_serde")]
    pub first_retry: Duration,
    #[serde(with = "humantime_serde")]
    pub max_retry: Duration,
    pub jitter: f64,
    #[serde(with = "humantime_serde")]
    pub expire_after: Duration,
    pub rate_limit: u32,
    #[serde(with = "humantime_serde")]
    pub rate_window: Duration,
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            first_retry: Duration::from_secs(30),
            max_retry: Duration::from_secs(30 * 60),
            jitter: 0.2,
            expire_after: Duration::from_secs(24 * 3600),
            rate_limit: 30,
            rate_window: Duration::from_secs(3600),
        }
    }
}

/// `[[alerts.rule]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub devices: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub after: Option<Duration>,
    #[serde(default)]
    pub escalate_after: Option<String>,
}

/// `[alerts.templates.bn]` and `[alerts.templates.en]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesSection {
    pub bn: TemplateTexts,
    pub en: TemplateTexts,
}

/// The rules used when none are written: `unreachable` (every device, each
/// office's hours), and for gateways (24/7) `failover` (at once),
/// `link_down` (15 min) and `metered_traffic` (30 min).
pub fn default_rules() -> Vec<RuleSection> {
    let r = |name: &str, after: Option<u64>| RuleSection {
        name: name.into(),
        kind: name.into(),
        schedule: None,
        devices: None,
        branch: None,
        after: after.map(Duration::from_secs),
        escalate_after: None,
    };
    vec![
        r("unreachable", None),
        r("failover", Some(0)),
        r("link_down", Some(15 * 60)),
        r("metered_traffic", Some(30 * 60)),
    ]
}

/// A contact as written in TOML (`[[contact]]` in a file, `[[alerts.contact]]`
/// in the collector configuration).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactEntry {
    pub name: String,
    pub branch: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub channels: Vec<String>,
}

/// Template texts of one language as written in the configuration; `None`
/// keeps the built-in one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateTexts {
    pub subject: Option<String>,
    pub opened: Option<String>,
    pub escalated: Option<String>,
    pub recovered: Option<String>,
}
