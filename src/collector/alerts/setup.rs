//! Compiling the `[alerts]` section as written (`crate::config::alerts`)
//! into what the alert engine uses ([`AlertsConfig`]): rules, office
//! grouping, contacts (inline and from the contacts file), channels,
//! templates, acknowledgement links and delivery. Anything invalid is a
//! [`ConfigError`] naming the key (`alerts.rule[1].schedule`,
//! `alerts.channel.mail.from`, `alerts.templates.bn.opened`) and the fix.

mod channels;

use crate::collector::alerts::ack::{AckKey, AckLinks};
use crate::collector::alerts::channels::{ChannelSpec, Needs};
use crate::collector::alerts::contacts::{self, Contact, Language, Routing};
use crate::collector::alerts::message::{TemplateSet, Templates};
use crate::collector::alerts::outbox::{OutboxPolicy, Planner};
use crate::collector::alerts::rules::{
    BranchSpec, DeviceFilter, OfficeGrouping, Rule, RuleKind, RuleSet,
};
use crate::config::ConfigError;
use crate::config::alerts::{AlertsSection, default_rules};
use crate::config::collector::CollectorConfig;
use crate::shared::schedule::parse_schedule;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

/// The `[alerts]` section of a collector configuration compiled for the
/// alert engine; `None` without the section. The collector and `validate`
/// call it right after loading the file, so a bad rule stops them first.
pub fn alerts_config(cfg: &CollectorConfig) -> Result<Option<AlertsConfig>, ConfigError> {
    cfg.alerts
        .as_ref()
        .map(|a| a.compile(&cfg.path, &cfg.holidays))
        .transpose()
}

/// The `[alerts]` section compiled for the alert engine.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub rules: RuleSet,
    /// Inline contacts, then the contacts file's.
    pub contacts: Vec<Contact>,
    pub channels: BTreeMap<String, ChannelSpec>,
    /// What address each channel needs.
    pub channel_needs: BTreeMap<String, Needs>,
    pub templates: Templates,
    pub zone: jiff::tz::TimeZone,
    pub ack: Option<AckLinks>,
    pub outbox: OutboxPolicy,
    /// The devices named office gateways (`alerts.gateways`).
    pub gateways: BTreeSet<String>,
}

impl AlertsConfig {
    /// Parse a file holding only an `[alerts]` section, and compile it.
    pub fn parse_toml(
        text: &str,
        path: &Path,
        holidays: &BTreeSet<jiff::civil::Date>,
    ) -> Result<AlertsConfig, ConfigError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            alerts: AlertsSection,
        }
        let f: File = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        f.alerts.compile(path, holidays)
    }

    pub fn routing(&self) -> Routing {
        Routing::new(self.contacts.clone())
    }

    /// The outbox planner of these settings over `routing`.
    pub fn planner<'a>(&'a self, routing: &'a Routing) -> Planner<'a> {
        Planner {
            routing,
            channels: &self.channel_needs,
            templates: &self.templates,
            zone: &self.zone,
            ack: self.ack.as_ref(),
            policy: self.outbox,
        }
    }
}

/// A name usable as a key: letters, digits, `_` and `-`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(format!(
            "`{name}` contains {c:?}: use letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// `"never"` or a duration of at least a minute.
fn escalation(text: &str) -> Result<Option<i64>, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}): write e.g. \"30m\", \"2h\", or \"never\"")
    })?;
    if d < Duration::from_secs(60) {
        return Err("must be at least 1m (or \"never\")".into());
    }
    Ok(Some(d.as_millis() as i64))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl AlertsSection {
    /// Validate and compile; `path` names the file in errors, `holidays`
    /// are the collector's (office hours are off on them).
    pub fn compile(
        &self,
        path: &Path,
        holidays: &BTreeSet<jiff::civil::Date>,
    ) -> Result<AlertsConfig, ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: format!("alerts.{key}"),
            message,
        };
        let within = |key: &str, d: Duration, lo: u64, hi: u64, default: &str| {
            if d < Duration::from_secs(lo) || d > Duration::from_secs(hi) {
                Err(bad(
                    key,
                    format!(
                        "must be between {} and {} (default \"{default}\")",
                        humantime::format_duration(Duration::from_secs(lo)),
                        humantime::format_duration(Duration::from_secs(hi))
                    ),
                ))
            } else {
                Ok(())
            }
        };
        within("interval", self.interval, 1, 3600, "4s")?;
        within("grace", self.grace, 0, 86_400, "2m")?;
        within("upload_interval", self.upload_interval, 10, 86_400, "5m")?;
        let zone = crate::shared::schedule::time_zone(self.time_zone.trim()).map_err(|_| {
            bad(
                "time_zone",
                format!(
                    "unknown time zone `{}`: use an IANA name such as \"Asia/Dhaka\"",
                    self.time_zone
                ),
            )
        })?;
        let default_escalation =
            escalation(&self.escalate_after).map_err(|m| bad("escalate_after", m))?;

        // Office grouping.
        let o = &self.office_offline;
        if !(o.fraction > 0.0 && o.fraction <= 1.0) {
            return Err(bad(
                "office_offline.fraction",
                "must be above 0 and at most 1 (default 0.5: half the office's devices)".into(),
            ));
        }
        if o.min_devices < 2 {
            return Err(bad(
                "office_offline.min_devices",
                "must be at least 2 (an office of one device is that device; default 2)".into(),
            ));
        }
        within("office_offline.window", o.window, 60, 3600, "10m")?;
        if o.wait > o.window {
            return Err(bad(
                "office_offline.wait",
                format!(
                    "must not be longer than office_offline.window ({}) (default \"3m\")",
                    humantime::format_duration(o.window)
                ),
            ));
        }
        let grouping = OfficeGrouping {
            enabled: o.enabled,
            fraction: o.fraction,
            min_devices: o.min_devices,
            window_ms: ms(o.window),
            wait_ms: ms(o.wait),
        };

        // Rules.
        let written = if self.rule.is_empty() {
            default_rules()
        } else {
            self.rule.clone()
        };
        let mut rules = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, r) in written.iter().enumerate() {
            let key = |f: &str| format!("rule[{i}].{f}");
            check_name(&r.name).map_err(|m| bad(&key("name"), m))?;
            if let Some(first) = names.insert(&r.name, i) {
                return Err(bad(
                    &key("name"),
                    format!("rule `{}` is already named by rule[{first}]", r.name),
                ));
            }
            let kind = RuleKind::parse(&r.kind).ok_or_else(|| {
                bad(
                    &key("kind"),
                    format!(
                        "unknown kind `{}`: use one of {}",
                        r.kind,
                        RuleKind::ALL.map(|k| k.as_str()).join(", ")
                    ),
                )
            })?;
            let links = matches!(
                kind,
                RuleKind::Failover | RuleKind::LinkDown | RuleKind::MeteredTraffic
            );
            let schedule_text = r
                .schedule
                .clone()
                .unwrap_or_else(|| if links { "always" } else { "office" }.into());
            let schedule = parse_schedule(&schedule_text)
                .map_err(|e| bad(&key("schedule"), e.to_string()))?
                .with_holidays(holidays.clone());
            let devices = match &r.devices {
                None if links => DeviceFilter::Gateways,
                None => DeviceFilter::All,
                Some(d) => DeviceFilter::parse(d).ok_or_else(|| {
                    bad(
                        &key("devices"),
                        format!("unknown `{d}`: use all, gateways or officers"),
                    )
                })?,
            };
            let branch = r
                .branch
                .as_deref()
                .map(BranchSpec::parse)
                .transpose()
                .map_err(|m| bad(&key("branch"), m))?;
            let after_ms = match (kind, r.after) {
                (RuleKind::Unreachable, Some(_)) => {
                    return Err(bad(
                        &key("after"),
                        "an unreachable rule waits the grace past the upload deadline: set alerts.grace instead".into(),
                    ));
                }
                (RuleKind::Unreachable, None) => 0,
                (RuleKind::NotRunning, None) => 4 * 3_600_000,
                (RuleKind::NotRunning, Some(d)) if d < Duration::from_secs(60) => {
                    return Err(bad(
                        &key("after"),
                        "must be at least 1m of scheduled time (default \"4h\")".into(),
                    ));
                }
                (RuleKind::Failover | RuleKind::LinkDown | RuleKind::MeteredTraffic, Some(d))
                    if d > Duration::from_secs(7 * 86_400) =>
                {
                    return Err(bad(
                        &key("after"),
                        format!(
                            "`{}` is longer than 7 days: a link warning that late warns of nothing (default \"{}\")",
                            humantime::format_duration(d),
                            match kind {
                                RuleKind::Failover => "0s",
                                RuleKind::LinkDown => "15m",
                                _ => "30m",
                            }
                        ),
                    ));
                }
                (RuleKind::Failover, None) => 0,
                (RuleKind::LinkDown, None) => 15 * 60_000,
                (RuleKind::MeteredTraffic, None) => 30 * 60_000,
                (_, Some(d)) => ms(d),
            };
            let escalate_after_ms = match &r.escalate_after {
                None => default_escalation,
                Some(t) => escalation(t).map_err(|m| bad(&key("escalate_after"), m))?,
            };
            rules.push(Rule {
                name: r.name.clone(),
                kind,
                schedule,
                devices,
                branch,
                after_ms,
                escalate_after_ms,
            });
        }

        // Channels, templates, contacts.
        let mut specs = BTreeMap::new();
        for (name, c) in &self.channel {
            check_name(name).map_err(|m| bad(&format!("channel.{name}"), m))?;
            let spec = c
                .compile()
                .map_err(|(field, m)| bad(&format!("channel.{name}.{field}"), m))?;
            specs.insert(name.clone(), spec);
        }
        let channel_needs: BTreeMap<String, Needs> =
            specs.iter().map(|(n, s)| (n.clone(), s.needs())).collect();
        let templates = Templates {
            bn: TemplateSet::build(Language::Bn, &self.templates.bn)
                .map_err(|(f, m)| bad(&format!("templates.bn.{f}"), m))?,
            en: TemplateSet::build(Language::En, &self.templates.en)
                .map_err(|(f, m)| bad(&format!("templates.en.{f}"), m))?,
        };
        let mut all = contacts::check_entries(&self.contact, "alerts.contact", "")
            .map_err(|(k, m)| bad(k.trim_start_matches("alerts."), m))?;
        let mut gateways = BTreeSet::new();
        for (i, name) in self.gateways.iter().enumerate() {
            let key = format!("gateways[{i}]");
            crate::collector::devices::check_device_name(name).map_err(|m| bad(&key, m))?;
            if !gateways.insert(name.clone()) {
                return Err(bad(&key, format!("`{name}` is listed twice")));
            }
        }
        if let Some(file) = &self.contacts_file {
            let more = crate::collector::alerts::contacts_import::load_contacts(file)
                .map_err(|e| bad("contacts_file", e.to_string()))?;
            all.extend(more);
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        for c in &all {
            if let Some(first) = seen.insert(c.name.to_lowercase(), &c.origin) {
                return Err(bad(
                    if c.origin.starts_with("alerts.") {
                        c.origin.trim_start_matches("alerts.")
                    } else {
                        "contacts_file"
                    },
                    format!(
                        "{}: contact `{}` is already defined at {first}",
                        c.origin, c.name
                    ),
                ));
            }
            for ch in &c.channels {
                let which = if c.origin.starts_with("alerts.") {
                    format!("{}.channels", c.origin.trim_start_matches("alerts."))
                } else {
                    "contacts_file".to_string()
                };
                let Some(needs) = channel_needs.get(ch) else {
                    return Err(bad(
                        &which,
                        format!(
                            "{}: contact `{}` uses channel `{ch}`, which is not defined: add [alerts.channel.{ch}] or use one of: {}",
                            c.origin,
                            c.name,
                            channel_needs.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                };
                let missing = match needs {
                    Needs::Email if c.email.is_none() => Some("email"),
                    Needs::Phone if c.phone.is_none() => Some("phone"),
                    _ => None,
                };
                if let Some(field) = missing {
                    return Err(bad(
                        &which,
                        format!(
                            "{}: contact `{}` uses channel `{ch}` but has no {field}: add it or drop the channel",
                            c.origin, c.name
                        ),
                    ));
                }
            }
        }

        // Acknowledgement links.
        let key = match (&self.ack_key, &self.ack_key_file) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "ack_key_file",
                    "both ack_key and ack_key_file are set: keep one".into(),
                ));
            }
            (Some(k), None) => {
                Some(AckKey::new(k.expose().as_bytes()).map_err(|m| bad("ack_key", m))?)
            }
            (None, Some(f)) => {
                let bytes = std::fs::read(f).map_err(|e| {
                    bad("ack_key_file", format!("cannot read {}: {e}", f.display()))
                })?;
                let trimmed = String::from_utf8(bytes.clone())
                    .map(|s| s.trim().as_bytes().to_vec())
                    .unwrap_or(bytes);
                Some(
                    AckKey::new(trimmed)
                        .map_err(|m| bad("ack_key_file", format!("{}: {m}", f.display())))?,
                )
            }
            (None, None) => None,
        };
        let ack = match (key, &self.ack_url) {
            (Some(key), Some(url)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(bad(
                        "ack_url",
                        format!(
                            "`{url}` is not an http(s) URL: give the acknowledgement page, e.g. https://linkwatch.example.gov.bd/ack"
                        ),
                    ));
                }
                within("ack_link_ttl", self.ack_link_ttl, 60, 90 * 86_400, "7d")?;
                Some(AckLinks {
                    key,
                    base_url: url.clone(),
                    ttl_ms: ms(self.ack_link_ttl),
                })
            }
            (Some(_), None) => {
                return Err(bad(
                    "ack_url",
                    "ack_key is set but ack_url is not: give the acknowledgement page the links lead to".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "ack_key",
                    "ack_url is set but no key signs the links: set ack_key (32+ random bytes) or ack_key_file".into(),
                ));
            }
            (None, None) => None,
        };

        // Delivery.
        let d = &self.delivery;
        within("delivery.first_retry", d.first_retry, 1, 3600, "30s")?;
        if d.max_retry < d.first_retry || d.max_retry > Duration::from_secs(86_400) {
            return Err(bad(
                "delivery.max_retry",
                "must be at least delivery.first_retry and at most 1day (default \"30m\")".into(),
            ));
        }
        if !(0.0..=1.0).contains(&d.jitter) {
            return Err(bad(
                "delivery.jitter",
                "must be between 0 and 1 (the share a wait may be shortened by; default 0.2)"
                    .into(),
            ));
        }
        within(
            "delivery.expire_after",
            d.expire_after,
            60,
            30 * 86_400,
            "24h",
        )?;
        within("delivery.rate_window", d.rate_window, 60, 86_400, "1h")?;
        let outbox = OutboxPolicy {
            first_retry_ms: ms(d.first_retry),
            max_retry_ms: ms(d.max_retry),
            jitter: d.jitter,
            expire_after_ms: ms(d.expire_after),
            rate_limit: d.rate_limit,
            rate_window_ms: ms(d.rate_window),
            lease_ms: channels::longest_timeout(&specs)
                .saturating_mul(2)
                .max(60_000),
        };

        Ok(AlertsConfig {
            enabled: self.enabled,
            interval: self.interval,
            rules: RuleSet {
                rules,
                grace_ms: ms(self.grace),
                upload_interval_ms: ms(self.upload_interval),
                grouping,
            },
            contacts: all,
            channels: specs,
            channel_needs,
            templates,
            zone,
            ack,
            outbox,
            gateways,
        })
    }
}

#[cfg(test)]
mod tests;
