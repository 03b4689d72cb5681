//! The evaluator: one tick of the alert rules, as a pure function. Facts
//! about every device (with timestamps), the open alerts, the silences and
//! `now` in; alerts to open, update and resolve, and notices to send out.
//! No clock, no database: the collector's evaluator task (stage 2) reads
//! the facts, calls [`evaluate`], and applies the [`Decisions`] in one
//! transaction.
//!
//! Shared by every rule:
//! - an alert opens only while its rule's schedule is open and nothing
//!   silences its subject; it is told at once to the lowest level with a
//!   contact, except a device's unreachable alert in an office that could
//!   still turn out offline as a whole, which waits `grouping.wait` first;
//! - an alert that was told and is not acknowledged escalates one level up
//!   (to the next level with a contact) after its rule's `escalate_after`,
//!   counted while the schedule is open; a silence defers it to its end;
//! - a recovery is told to every level told before, silenced or not; an
//!   alert resolved before it was told (pending) tells nobody;
//! - alerts whose rule is gone, or whose subject is no longer watched,
//!   close without a notice.
//!
//! The rules themselves live in `unreachable` (silence, office grouping)
//! and `gateway` (not running, failover, link down, metered traffic).

use crate::collector::alerts::annotate::{Annotation, AnnotationRequest};
use crate::collector::alerts::contacts::Routing;
use crate::collector::alerts::model::*;
use crate::collector::alerts::rules::{Context, Rule, RuleKind, RuleSet, open_since};
use crate::collector::model::Office;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The facts of one tick.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub now_ms: i64,
    pub devices: &'a [DeviceFacts],
    pub open: &'a [OpenAlert],
    pub silences: &'a [Silence],
    /// What the late data says, by device, for the requests of
    /// [`annotation_requests`] (missing ones: no annotation).
    pub annotations: &'a BTreeMap<String, Annotation>,
}

/// The annotations the next [`evaluate`] may need: for each device of an
/// open unreachable or office-offline alert that was heard from since the
/// alert's start and is not silent now (back, or stopped cleanly: the
/// alert may close), its records over the silence. An office's members
/// still silent are not read (each round would read them again).
pub fn annotation_requests(ctx: &Context, input: &Input<'_>) -> Vec<AnnotationRequest> {
    // Only the devices open alerts name are looked up: a set of those, then
    // one pass over the fleet (no map of every device each round).
    let named: HashSet<&str> = input
        .open
        .iter()
        .flat_map(|a| match (&a.kind, &a.key.subject) {
            (AlertKind::Unreachable, Subject::Device { device }) => vec![device.as_str()],
            (AlertKind::OfficeOffline, _) => a.members.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let heard: HashMap<&str, i64> = input
        .devices
        .iter()
        .filter(|d| named.contains(d.name.as_str()))
        .filter(|d| d.stopped.is_some() || !silent(&ctx.rules, d, input.now_ms))
        .filter_map(|d| Some((d.name.as_str(), d.last_upload_ms?)))
        .collect();
    let mut out: BTreeMap<&str, i64> = BTreeMap::new();
    for a in input.open {
        let devices: Vec<&str> = match (&a.kind, &a.key.subject) {
            (AlertKind::Unreachable, Subject::Device { device }) => vec![device.as_str()],
            (AlertKind::OfficeOffline, _) => a.members.iter().map(String::as_str).collect(),
            _ => continue,
        };
        for d in devices {
            if heard.get(d).is_some_and(|h| *h > a.since_ms) {
                let from = out.entry(d).or_insert(a.since_ms);
                *from = (*from).min(a.since_ms);
            }
        }
    }
    out.into_iter()
        .map(|(device, from_ms)| AnnotationRequest {
            device: device.to_string(),
            from_ms,
            to_ms: input.now_ms,
        })
        .collect()
}

/// One tick: see the module documentation.
pub fn evaluate(ctx: &Context, routing: &Routing, input: &Input<'_>) -> Decisions {
    let mut ev = Eval::new(ctx, routing, input);
    for (i, rule) in ctx.rules.rules.iter().enumerate() {
        match rule.kind {
            RuleKind::Unreachable => ev.unreachable(i),
            RuleKind::NotRunning => ev.not_running(i),
            RuleKind::Failover | RuleKind::LinkDown | RuleKind::MeteredTraffic => {
                ev.gateway_links(i)
            }
        }
    }
    ev.close_leftovers();
    ev.out
}

/// A condition that holds: since when, and the links to name.
pub(super) struct Cond {
    pub since_ms: i64,
    pub links: Vec<String>,
}

/// The state of one evaluation.
pub(super) struct Eval<'a> {
    pub ctx: &'a Context,
    pub routing: &'a Routing,
    pub input: &'a Input<'a>,
    pub now: i64,
    pub open: HashMap<&'a AlertKey, &'a OpenAlert>,
    pub handled: HashSet<i64>,
    pub out: Decisions,
    /// (rule, office) -> since when its schedule is open now.
    sched: HashMap<(usize, Option<&'a str>), Option<i64>>,
}

impl<'a> Eval<'a> {
    fn new(ctx: &'a Context, routing: &'a Routing, input: &'a Input<'a>) -> Self {
        Eval {
            ctx,
            routing,
            input,
            now: input.now_ms,
            open: input.open.iter().map(|a| (&a.key, a)).collect(),
            handled: HashSet::new(),
            out: Decisions::default(),
            sched: HashMap::new(),
        }
    }

    pub fn rule(&self, i: usize) -> &'a Rule {
        &self.ctx.rules.rules[i]
    }

    pub fn office(&self, code: Option<&str>) -> Option<&'a Office> {
        self.ctx.office(code)
    }

    /// Since when rule `i`'s schedule is open for `office`, if it is now.
    pub fn open_since(&mut self, i: usize, office: Option<&'a str>) -> Option<i64> {
        let now = self.now;
        let ctx = self.ctx;
        *self
            .sched
            .entry((i, office))
            .or_insert_with(|| open_since(ctx.schedule(i, office), now))
    }

    /// The active silence covering a subject of `office`, ending last.
    pub fn silenced(&self, subject: &Subject, office: Option<&str>) -> Option<&'a Silence> {
        let o = self.office(office);
        self.input
            .silences
            .iter()
            .filter(|s| s.active(self.now))
            .filter(|s| match &s.target {
                Target::Device(name) => subject.device_name() == Some(name.as_str()),
                Target::Office(code) => office == Some(code.as_str()),
                Target::Branch(b) => b.contains(o),
            })
            .max_by_key(|s| s.end_ms)
    }

    pub fn existing(&self, key: &AlertKey) -> Option<&'a OpenAlert> {
        self.open.get(key).copied()
    }

    fn view(&self, a: &OpenAlert) -> AlertView {
        AlertView {
            key: a.key.clone(),
            kind: a.kind,
            office: a.office.clone(),
            since_ms: a.since_ms,
            at_ms: self.now,
            links: a.links.clone(),
            members: a.members.clone(),
            came_back: Vec::new(),
            still_silent: Vec::new(),
            annotation: None,
            level: a.level,
            escalated_from: None,
        }
    }

    /// Open an alert; told at once unless `pending`.
    pub fn open_alert(
        &mut self,
        key: AlertKey,
        kind: AlertKind,
        office: Option<&str>,
        cond: Cond,
        members: Vec<String>,
        pending: bool,
    ) -> usize {
        let level = self.routing.first_level(self.office(office));
        let new = NewAlert {
            key,
            kind,
            office: office.map(str::to_string),
            since_ms: cond.since_ms,
            opened_ms: self.now,
            notified_ms: (!pending).then_some(self.now),
            level,
            members,
            links: cond.links,
        };
        let idx = self.out.open.len();
        if !pending {
            let view = self.view(&new.with_id(-1));
            self.out.notify.push(Notification {
                alert: AlertRef::New(idx),
                event: Event::Opened,
                levels: vec![level],
                view,
            });
        }
        self.out.open.push(new);
        idx
    }

    /// An open alert whose condition still holds: tell it when its wait is
    /// over (`told_after`: the earliest time a pending alert may be told),
    /// escalate it when due.
    pub fn keep(&mut self, a: &'a OpenAlert, rule: usize, told_after: i64) {
        self.handled.insert(a.id);
        let silence = self.silenced(&a.key.subject, a.office.as_deref());
        if a.notified_ms.is_none() {
            if silence.is_none() && self.now >= told_after {
                let level = self.routing.first_level(self.office(a.office.as_deref()));
                self.out.update.push(AlertUpdate {
                    id: a.id,
                    notified_ms: Some(self.now),
                    level: (level != a.level).then_some((level, self.now)),
                    ..AlertUpdate::default()
                });
                let mut view = self.view(a);
                view.level = level;
                self.out.notify.push(Notification {
                    alert: AlertRef::Id(a.id),
                    event: Event::Opened,
                    levels: vec![level],
                    view,
                });
            }
            return;
        }
        self.escalate(a, rule, silence);
    }

    fn escalate(&mut self, a: &'a OpenAlert, rule: usize, silence: Option<&Silence>) {
        let Some(after) = self.rule(rule).escalate_after_ms else {
            return;
        };
        if a.acked.is_some() || self.now - a.level_since_ms < after {
            return;
        }
        let office = a.office.as_deref();
        let Some(next) = self.routing.next_level(self.office(office), a.level) else {
            return;
        };
        if self.open_since(rule, office).is_none() {
            return;
        }
        if let Some(s) = silence {
            // Deferred: the escalation clock restarts when the silence ends.
            if a.level_since_ms < s.end_ms {
                self.out.update.push(AlertUpdate {
                    id: a.id,
                    level: Some((a.level, s.end_ms)),
                    ..AlertUpdate::default()
                });
            }
            return;
        }
        self.out.update.push(AlertUpdate {
            id: a.id,
            level: Some((next, self.now)),
            ..AlertUpdate::default()
        });
        let mut view = self.view(a);
        view.escalated_from = Some(a.level);
        view.level = next;
        self.out.notify.push(Notification {
            alert: AlertRef::Id(a.id),
            event: Event::Escalated,
            levels: vec![next],
            view,
        });
    }

    /// Close an alert; a recovery of an alert that was told is told to
    /// every level told. `fill` completes the recovery's view.
    pub fn resolve(
        &mut self,
        a: &'a OpenAlert,
        reason: ResolveReason,
        annotation: Option<Annotation>,
        fill: impl FnOnce(&mut AlertView),
    ) {
        if !self.handled.insert(a.id) && self.out.resolve.iter().any(|r| r.id == a.id) {
            return;
        }
        self.out.resolve.push(Resolution {
            id: a.id,
            at_ms: self.now,
            reason: reason.clone(),
            annotation: annotation.clone(),
        });
        if reason != ResolveReason::Recovered || a.notified_ms.is_none() {
            return;
        }
        let levels = self
            .routing
            .told_up_to(self.office(a.office.as_deref()), a.level);
        let mut view = self.view(a);
        view.annotation = annotation;
        fill(&mut view);
        self.out.notify.push(Notification {
            alert: AlertRef::Id(a.id),
            event: Event::Recovered,
            levels,
            view,
        });
    }

    /// The generic life of a non-grouped alert: open when `cond` holds and
    /// nothing silences it, keep while it holds, resolve once `can_resolve`
    /// (fresh facts say it is over); stale facts change nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn simple(
        &mut self,
        rule: usize,
        subject: Subject,
        kind: AlertKind,
        office: Option<&'a str>,
        cond: Option<Cond>,
        can_resolve: bool,
    ) {
        let key = AlertKey {
            rule: self.rule(rule).name.clone(),
            subject,
        };
        match (self.existing(&key), cond) {
            (Some(a), Some(_)) => self.keep(a, rule, i64::MIN),
            (Some(a), None) if can_resolve => {
                self.resolve(a, ResolveReason::Recovered, None, |_| {})
            }
            (Some(a), None) => {
                self.handled.insert(a.id);
            }
            (None, Some(c)) => {
                if self.open_since(rule, office).is_some()
                    && self.silenced(&key.subject, office).is_none()
                {
                    self.open_alert(key, kind, office, c, Vec::new(), false);
                }
            }
            (None, None) => {}
        }
    }

    /// Open alerts no rule looked at: their rule is gone or their subject
    /// no longer watched. Closed without a notice.
    fn close_leftovers(&mut self) {
        let rules: HashSet<&str> = self
            .ctx
            .rules
            .rules
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        for a in self.input.open {
            if self.handled.contains(&a.id) {
                continue;
            }
            let reason = if rules.contains(a.key.rule.as_str()) {
                ResolveReason::NotWatched
            } else {
                ResolveReason::RuleRemoved
            };
            self.out.resolve.push(Resolution {
                id: a.id,
                at_ms: self.now,
                reason,
                annotation: None,
            });
        }
    }

    /// When a device's upload is due at the latest, grace not included.
    pub fn deadline(&self, d: &DeviceFacts) -> Option<i64> {
        deadline(&self.ctx.rules, d)
    }

    /// Silent: the deadline plus the grace passed with nothing received.
    pub fn silent(&self, d: &DeviceFacts) -> bool {
        silent(&self.ctx.rules, d, self.now)
    }
}

/// When a device's upload is due at the latest, grace not included.
fn deadline(rules: &RuleSet, d: &DeviceFacts) -> Option<i64> {
    let heard = d.last_upload_ms?;
    Some(
        d.next_upload_due_ms
            .unwrap_or(heard.saturating_add(rules.upload_interval_ms)),
    )
}

/// Silent at `now`: the deadline plus the grace passed with nothing received.
fn silent(rules: &RuleSet, d: &DeviceFacts, now: i64) -> bool {
    deadline(rules, d).is_some_and(|dl| now >= dl.saturating_add(rules.grace_ms))
}
