//! Alert rules as the evaluator uses them (compiled from the `[alerts]`
//! configuration by `config::alerts`): which devices a rule watches, when
//! (its schedule, each office's hours by default, holidays off), how long a
//! condition must last, and when an unacknowledged alert escalates; the
//! office grouping; branches of the hierarchy as contacts, rules and
//! silences name them; and the schedule arithmetic the rules need. Pure.

pub use crate::collector::alerts::branch::BranchSpec;
use crate::collector::alerts::model::DeviceFacts;
use crate::collector::model::Office;
use crate::shared::schedule::{OfficeHours, Schedule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a rule watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Silent (upload deadline + grace passed) while expected online and
    /// without an announced stop. Grouped into office-offline alerts.
    Unreachable,
    /// An announced stop, and `after` of scheduled time without running.
    NotRunning,
    /// A gateway on a link other than its preferred one for `after`.
    Failover,
    /// A gateway link down or absent for `after`.
    LinkDown,
    /// A metered link carrying the traffic for `after`.
    MeteredTraffic,
}

impl RuleKind {
    pub const ALL: [RuleKind; 5] = [
        RuleKind::Unreachable,
        RuleKind::NotRunning,
        RuleKind::Failover,
        RuleKind::LinkDown,
        RuleKind::MeteredTraffic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Unreachable => "unreachable",
            RuleKind::NotRunning => "not_running",
            RuleKind::Failover => "failover",
            RuleKind::LinkDown => "link_down",
            RuleKind::MeteredTraffic => "metered_traffic",
        }
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

/// Which devices a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceFilter {
    #[default]
    All,
    /// Office gateways only.
    Gateways,
    /// Everything but gateways (officers' devices).
    Officers,
}

impl DeviceFilter {
    pub fn parse(s: &str) -> Option<DeviceFilter> {
        match s.trim() {
            "all" => Some(DeviceFilter::All),
            "gateways" => Some(DeviceFilter::Gateways),
            "officers" => Some(DeviceFilter::Officers),
            _ => None,
        }
    }

    pub fn accepts(self, gateway: bool) -> bool {
        match self {
            DeviceFilter::All => true,
            DeviceFilter::Gateways => gateway,
            DeviceFilter::Officers => !gateway,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique; part of every alert's key.
    pub name: String,
    pub kind: RuleKind,
    /// When it applies (`office`: each office's hours, holidays off).
    pub schedule: Schedule,
    pub devices: DeviceFilter,
    /// Only devices of this branch; `None`: all.
    pub branch: Option<BranchSpec>,
    /// How long the condition must last (scheduled time for `not_running`,
    /// wall time for the link rules; unused by `unreachable`, whose wait is
    /// the grace).
    pub after_ms: i64,
    /// Escalate one level up when not acknowledged for this long (counted
    /// while the schedule is open); `None`: never.
    pub escalate_after_ms: Option<i64>,
}

impl Rule {
    /// Does the rule watch this device?
    pub fn watches(&self, d: &DeviceFacts, offices: &BTreeMap<String, Office>) -> bool {
        self.devices.accepts(d.gateway)
            && self
                .branch
                .as_ref()
                .is_none_or(|b| b.contains(d.office.as_ref().and_then(|code| offices.get(code))))
    }
}

/// When several devices of an office fall silent together, one
/// office-offline alert replaces theirs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfficeGrouping {
    pub enabled: bool,
    /// Share of the office's watched devices that must be silent.
    pub fraction: f64,
    /// Fewest silent devices that make an office offline (its gateway alone
    /// always does).
    pub min_devices: usize,
    /// The devices' last uploads lie within this of each other (at least
    /// the upload interval: devices upload at different moments).
    pub window_ms: i64,
    /// How long a device alert of an office that could still be grouped
    /// waits for the others before it is sent alone. Devices' deadlines
    /// are spread over their upload interval, so about `fraction` × the
    /// upload interval lets the group form first.
    pub wait_ms: i64,
}

impl Default for OfficeGrouping {
    fn default() -> Self {
        OfficeGrouping {
            enabled: true,
            fraction: 0.5,
            min_devices: 2,
            window_ms: 10 * 60_000,
            wait_ms: 3 * 60_000,
        }
    }
}

/// Every rule and the settings they share.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Silence tolerated past the announced upload deadline.
    pub grace_ms: i64,
    /// The upload interval assumed for agents that announce no deadline.
    pub upload_interval_ms: i64,
    pub grouping: OfficeGrouping,
}

/// What the evaluator knows besides the facts of the tick: the rules, and
/// the offices (with each office's own hours per rule). Rebuild it when the
/// offices change.
#[derive(Debug, Clone)]
pub struct Context {
    pub rules: RuleSet,
    pub offices: BTreeMap<String, Office>,
    /// Per rule (same order), the offices' own schedules.
    hours: Vec<OfficeHours>,
}

impl Context {
    pub fn new(rules: RuleSet, offices: impl IntoIterator<Item = Office>) -> Context {
        let offices: BTreeMap<String, Office> =
            offices.into_iter().map(|o| (o.code.clone(), o)).collect();
        let hours = rules
            .rules
            .iter()
            .map(|r| {
                r.schedule.office_hours(
                    offices
                        .values()
                        .filter_map(|o| o.hours.as_deref().map(|h| (o.code.as_str(), h))),
                )
            })
            .collect();
        Context {
            rules,
            offices,
            hours,
        }
    }

    /// The schedule rule `i` applies to a device of `office`.
    pub fn schedule(&self, i: usize, office: Option<&str>) -> &Schedule {
        self.rules.rules[i]
            .schedule
            .for_office(&self.hours[i], office)
    }

    pub fn office(&self, code: Option<&str>) -> Option<&Office> {
        code.and_then(|c| self.offices.get(c))
    }
}

const DAY_MS: i64 = 24 * 3_600_000;

/// If the schedule is open at `now`, since when (the start of the open
/// stretch containing `now`, looked for up to a week back).
pub fn open_since(s: &Schedule, now: i64) -> Option<i64> {
    let mask = s.mask(now.saturating_sub(7 * DAY_MS), now.saturating_add(1));
    let last = mask.last()?;
    (last.0 <= now && now < last.1).then_some(last.0)
}

/// Is there at least `need` ms of scheduled time in `[from, to)`? Looks
/// back from `to` a day at a time, so the cost follows `need`, not the span.
pub fn scheduled_at_least(s: &Schedule, from: i64, to: i64, need: i64) -> bool {
    if need <= 0 {
        return true;
    }
    let mut total = 0i64;
    let mut end = to;
    while end > from {
        let start = end.saturating_sub(DAY_MS).max(from);
        total += s.mask(start, end).iter().map(|(a, b)| b - a).sum::<i64>();
        if total >= need {
            return true;
        }
        end = start;
    }
    false
}
