//! The tables of `[alerts]` as written (rules, office grouping, delivery,
//! templates, contacts and channels by name), with their defaults, which are
//! the alert engine's own. Compiling them is the parent's.

use super::ChannelSection;
use crate::collector::alerts::Secret;
use crate::collector::alerts::contacts::ContactEntry;
use crate::collector::alerts::message::TemplateTexts;
use crate::collector::alerts::outbox::OutboxPolicy;
use crate::collector::alerts::rules::OfficeGrouping;
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
    /// How often the rules are evaluated.
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
            interval: Duration::from_secs(15),
            grace: Duration::from_secs(120),
            upload_interval: Duration::from_secs(300),
            time_zone: crate::shared::schedule::DEFAULT_TZ.into(),
            escalate_after: "30m".into(),
            ack_key: None,
            ack_key_file: None,
            ack_url: None,
            ack_link_ttl: Duration::from_secs(7 * 86_400),
            contacts_file: None,
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
        let g = OfficeGrouping::default();
        OfficeOfflineSection {
            enabled: g.enabled,
            fraction: g.fraction,
            min_devices: g.min_devices,
            window: Duration::from_millis(g.window_ms as u64),
            wait: Duration::from_millis(g.wait_ms as u64),
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
        let p = OutboxPolicy::default();
        let d = |ms: i64| Duration::from_millis(ms as u64);
        DeliverySection {
            first_retry: d(p.first_retry_ms),
            max_retry: d(p.max_retry_ms),
            jitter: p.jitter,
            expire_after: d(p.expire_after_ms),
            rate_limit: p.rate_limit,
            rate_window: d(p.rate_window_ms),
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
