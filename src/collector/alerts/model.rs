//! The alert engine's words: what the evaluator is told about devices,
//! gateways, open alerts and silences (all with timestamps, Unix ms), and
//! the decisions it hands back (alerts to open, update and resolve, and
//! notifications to send). Plain data: serialisable so that stage-2 storage
//! can keep open alerts as rows and the API can show them.

use crate::collector::alerts::annotate::Annotation;
pub use crate::collector::alerts::branch::RouteLevel;
use crate::wire::{LinkKind, LinkState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    /// One device (by name).
    Device { device: String },
    /// One office (by code): the office-offline alert.
    Office { office: String },
    /// One link of one device (gateway link warnings).
    Link { device: String, link: String },
}

impl Subject {
    pub fn device(name: &str) -> Subject {
        Subject::Device {
            device: name.to_string(),
        }
    }
    pub fn office(code: &str) -> Subject {
        Subject::Office {
            office: code.to_string(),
        }
    }
    pub fn link(device: &str, link: &str) -> Subject {
        Subject::Link {
            device: device.to_string(),
            link: link.to_string(),
        }
    }
    /// The device it is about, if any.
    pub fn device_name(&self) -> Option<&str> {
        match self {
            Subject::Device { device } | Subject::Link { device, .. } => Some(device),
            Subject::Office { .. } => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Device { device } => write!(f, "device:{device}"),
            Subject::Office { office } => write!(f, "office:{office}"),
            Subject::Link { device, link } => write!(f, "link:{device}/{link}"),
        }
    }
}

/// An open alert's identity: the rule that raised it and what it is about.
/// At most one alert per key is open at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertKey {
    pub rule: String,
    pub subject: Subject,
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rule, self.subject)
    }
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A device silent while expected online.
    Unreachable,
    /// Most devices of an office (or its gateway) silent together.
    OfficeOffline,
    /// A device whose agent announced its stop, not running for long in
    /// office hours.
    NotRunning,
    /// A gateway runs on a backup link.
    Failover,
    /// A gateway's link is down (or absent) for long.
    LinkDown,
    /// A metered link carries the traffic for long.
    MeteredTraffic,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::Unreachable,
        AlertKind::OfficeOffline,
        AlertKind::NotRunning,
        AlertKind::Failover,
        AlertKind::LinkDown,
        AlertKind::MeteredTraffic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Unreachable => "unreachable",
            AlertKind::OfficeOffline => "office_offline",
            AlertKind::NotRunning => "not_running",
            AlertKind::Failover => "failover",
            AlertKind::LinkDown => "link_down",
            AlertKind::MeteredTraffic => "metered_traffic",
        }
    }

    /// Alerts call for action; warnings inform.
    pub fn severity(self) -> Severity {
        match self {
            AlertKind::Unreachable | AlertKind::OfficeOffline => Severity::Alert,
            _ => Severity::Warning,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Alert,
}

/// How the agent announced that it is not running (its last record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// The service was stopped cleanly.
    Stopped,
    /// The machine shut down.
    Shutdown,
    /// The machine went to sleep.
    Sleep,
}

/// What the collector knows about one device at evaluation time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceFacts {
    pub name: String,
    /// Office code, if attached.
    pub office: Option<String>,
    /// The office's gateway (routes mode): its silence takes the office down.
    pub gateway: bool,
    /// Placed time of the device's last record.
    pub last_record_ms: Option<i64>,
    /// When the collector last received an upload from it (its own clock).
    /// `None`: never heard from; such a device raises no alert.
    pub last_upload_ms: Option<i64>,
    /// The deadline the agent announced for its next upload; `None` for
    /// agents that do not announce it (the configured interval applies).
    pub next_upload_due_ms: Option<i64>,
    /// Set when the last record is a clean stop, shutdown or sleep: the
    /// device is "not running", never unreachable.
    pub stopped: Option<StopKind>,
    /// Links known down in the last records (named in messages).
    pub links_down: Vec<String>,
    /// Gateways in routes mode: their links and the chosen one.
    pub links: Option<GatewayLinks>,
}

/// A gateway's links as its last records tell (routes mode).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GatewayLinks {
    pub links: Vec<LinkStatus>,
    /// The link carrying the default route (`None`: no link left).
    pub chosen: Option<String>,
    /// Since when `chosen` carries it.
    pub chosen_since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub name: String,
    pub kind: LinkKind,
    pub metered: bool,
    /// Lower first, as the agent's policy orders links.
    pub priority: u32,
    pub state: LinkState,
    /// Since when it is in `state`.
    pub since_ms: i64,
}

/// Who acknowledged an alert, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    pub by: String,
    pub at_ms: i64,
}

/// An alert as the store keeps it while open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAlert {
    pub id: i64,
    pub key: AlertKey,
    pub kind: AlertKind,
    /// The office of the subject (routing), if any.
    pub office: Option<String>,
    /// When the condition began (last heard from, link down since, ...).
    pub since_ms: i64,
    pub opened_ms: i64,
    /// When the first notice was decided; `None` while pending (an
    /// unreachable alert waiting for the rest of its office).
    pub notified_ms: Option<i64>,
    /// The highest level told so far.
    pub level: RouteLevel,
    /// Since when at `level` (escalation counts from here).
    pub level_since_ms: i64,
    pub acked: Option<Acknowledged>,
    /// Office alerts: the devices it stands for.
    pub members: Vec<String>,
    /// Links named in the notices.
    pub links: Vec<String>,
    /// Office alerts: since when the office no longer looks down (it is
    /// resolved once its members are back, or after the grouping window).
    pub clearing_since_ms: Option<i64>,
}

/// What a silence or maintenance window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Target {
    Device(String),
    Office(String),
    /// A branch: `level` and canonical name, as contacts name them.
    Branch(crate::collector::alerts::branch::BranchSpec),
}

/// A silence (now) or maintenance window (later): no alert opens for what it
/// covers between `start_ms` and `end_ms`, and open alerts send nothing new
/// then (recovery notices of alerts already told still go out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: i64,
    pub target: Target,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
}

impl Silence {
    pub fn active(&self, now_ms: i64) -> bool {
        self.start_ms <= now_ms && now_ms < self.end_ms
    }
}

/// Refers to an alert in [`Decisions`]: an open one by id, or one opened by
/// these decisions by its index in [`Decisions::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRef {
    Id(i64),
    New(usize),
}

/// An alert to open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAlert {
    pub key: AlertKey,
    pub kind: AlertKind,
    pub office: Option<String>,
    pub since_ms: i64,
    pub opened_ms: i64,
    pub notified_ms: Option<i64>,
    pub level: RouteLevel,
    pub members: Vec<String>,
    pub links: Vec<String>,
}

impl NewAlert {
    /// The open alert once the store gave it its id.
    pub fn with_id(&self, id: i64) -> OpenAlert {
        OpenAlert {
            id,
            key: self.key.clone(),
            kind: self.kind,
            office: self.office.clone(),
            since_ms: self.since_ms,
            opened_ms: self.opened_ms,
            notified_ms: self.notified_ms,
            level: self.level,
            level_since_ms: self.opened_ms,
            acked: None,
            members: self.members.clone(),
            links: self.links.clone(),
            clearing_since_ms: None,
        }
    }
}

/// Changes to an open alert; `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertUpdate {
    pub id: i64,
    pub notified_ms: Option<i64>,
    pub level: Option<(RouteLevel, i64)>,
    pub members: Option<Vec<String>>,
    /// `Some(None)` clears it.
    pub clearing_since_ms: Option<Option<i64>>,
}

/// Why an alert closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResolveReason {
    /// The condition is over.
    Recovered,
    /// Folded into an office-offline alert.
    Merged { into: AlertKey },
    /// Its rule is gone from the configuration.
    RuleRemoved,
    /// Its subject is no longer watched (device removed, rule narrowed).
    NotWatched,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub id: i64,
    pub at_ms: i64,
    pub reason: ResolveReason,
    /// What the late data said happened (unreachable alerts).
    pub annotation: Option<Annotation>,
}

/// Why a notice is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Opened,
    Escalated,
    Recovered,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Escalated => "escalated",
            Event::Recovered => "recovered",
        }
    }
}

/// A notice to send: routed to the contacts of `levels` of the subject's
/// office (see `contacts::Routing::recipients`), rendered per contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub alert: AlertRef,
    pub event: Event,
    /// The levels whose contacts get it: the first level for an opening,
    /// the new level for an escalation, every level told for a recovery.
    pub levels: Vec<RouteLevel>,
    pub view: AlertView,
}

/// Everything a message says about an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub key: AlertKey,
    pub kind: AlertKind,
    pub office: Option<String>,
    pub since_ms: i64,
    /// When the event happened (the evaluation's `now`).
    pub at_ms: i64,
    pub links: Vec<String>,
    /// Office alerts: the devices it stands for.
    pub members: Vec<String>,
    /// Office recoveries: members heard from again, and still silent.
    pub came_back: Vec<String>,
    pub still_silent: Vec<String>,
    /// Recoveries of unreachable alerts: what really happened.
    pub annotation: Option<Annotation>,
    /// The level this notice goes to (for a recovery: the highest told).
    pub level: RouteLevel,
    /// Escalations: the level it comes from.
    pub escalated_from: Option<RouteLevel>,
}

/// What one evaluation decided. Apply it in one transaction: open, update,
/// resolve, then turn each notification into outbox rows
/// (`outbox::plan_deliveries`); their dedupe keys make re-applying harmless.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Decisions {
    pub open: Vec<NewAlert>,
    pub update: Vec<AlertUpdate>,
    pub resolve: Vec<Resolution>,
    pub notify: Vec<Notification>,
}

impl Decisions {
    /// Apply to a list of open alerts held in memory, as the store would:
    /// new alerts get ids from `next_id` (returned in the order of
    /// [`Decisions::open`]), updates apply in order, resolved alerts leave.
    /// For tests and tools; the collector applies decisions to its store.
    pub fn apply(&self, open: &mut Vec<OpenAlert>, next_id: &mut i64) -> Vec<i64> {
        let mut ids = Vec::with_capacity(self.open.len());
        for n in &self.open {
            *next_id += 1;
            ids.push(*next_id);
            open.push(n.with_id(*next_id));
        }
        for u in &self.update {
            if let Some(a) = open.iter_mut().find(|a| a.id == u.id) {
                if let Some(t) = u.notified_ms {
                    a.notified_ms = Some(t);
                }
                if let Some((level, since)) = u.level {
                    a.level = level;
                    a.level_since_ms = since;
                }
                if let Some(m) = &u.members {
                    a.members = m.clone();
                }
                if let Some(c) = u.clearing_since_ms {
                    a.clearing_since_ms = c;
                }
            }
        }
        let gone: std::collections::HashSet<i64> = self.resolve.iter().map(|r| r.id).collect();
        open.retain(|a| !gone.contains(&a.id));
        ids
    }
}
