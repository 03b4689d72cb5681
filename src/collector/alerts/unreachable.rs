//! The unreachable rule and office grouping.
//!
//! A watched device is **silent** when its announced upload deadline (or
//! its last upload plus the configured interval, for agents that announce
//! none) plus the grace has passed, and its last record is not a clean
//! stop, shutdown or sleep. It is **unreachable** when silent while
//! expected online: the rule's schedule is open now and at least the grace
//! of scheduled time has passed since the deadline (a laptop shut at 16:58
//! with its deadline after the 17:00 closing raises nothing that night, and
//! nothing at 09:00 either until the grace has passed in office hours).
//!
//! **Office grouping.** Among an office's watched devices (silenced and
//! cleanly stopped ones left out), when the gateway is unreachable, or when
//! at least `max(min_devices, ⌈fraction × watched⌉)` are unreachable with
//! their last uploads within `window` of each other, one office-offline
//! alert opens instead, standing for them (the gateway's group: every
//! unreachable device heard from at most `window` before it). Their own
//! alerts close as merged; devices falling silent while the office is down
//! join it. Once the office no longer looks down, the alert closes when
//! every member is heard from again, or after `window` at the latest,
//! listing who came back; members still silent then get alerts of their
//! own, told at once.
//!
//! A device alert in an office with at least `min_devices` watched devices
//! waits `wait` before it is told, so that the rest of its office can
//! catch up; an alert resolved while waiting tells nobody.

use crate::collector::alerts::evaluate::{Cond, Eval};
use crate::collector::alerts::model::*;
use crate::collector::alerts::rules::scheduled_at_least;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One watched device under the rule.
struct Dev<'a> {
    d: &'a DeviceFacts,
    heard: i64,
    /// Deadline and grace passed, no announced stop.
    silent: bool,
    /// Silent while expected online, and not silenced.
    cond: bool,
    silenced: bool,
}

impl Dev<'_> {
    fn name(&self) -> &str {
        &self.d.name
    }
}

impl<'a> Eval<'a> {
    pub(super) fn unreachable(&mut self, i: usize) {
        let rule = self.rule(i);
        let g = self.ctx.rules.grouping;
        let mut devs: Vec<Dev<'a>> = Vec::new();
        for d in self.input.devices {
            if !rule.watches(d, &self.ctx.offices) {
                continue;
            }
            let (Some(heard), Some(deadline)) = (d.last_upload_ms, self.deadline(d)) else {
                continue;
            };
            let silent = self.silent(d) && d.stopped.is_none();
            let silenced = self
                .silenced(&Subject::device(&d.name), d.office.as_deref())
                .is_some();
            let cond = silent && !silenced && self.expected(i, d.office.as_deref(), deadline);
            devs.push(Dev {
                d,
                heard,
                silent,
                cond,
                silenced,
            });
        }
        let mut covered: HashSet<String> = HashSet::new();
        let mut told_at_once: HashSet<String> = HashSet::new();
        let mut groupable: HashSet<&'a str> = HashSet::new();
        if g.enabled {
            let mut by_office: BTreeMap<&'a str, Vec<usize>> = BTreeMap::new();
            for (k, dv) in devs.iter().enumerate() {
                if let Some(o) = dv.d.office.as_deref() {
                    by_office.entry(o).or_default().push(k);
                }
            }
            for a in self.input.open {
                if a.key.rule == rule.name
                    && let Subject::Office { office } = &a.key.subject
                {
                    by_office.entry(office.as_str()).or_default();
                }
            }
            for (office, idx) in by_office {
                let group: Vec<&Dev<'a>> = idx.iter().map(|k| &devs[*k]).collect();
                let watched = group
                    .iter()
                    .filter(|dv| !dv.silenced && dv.d.stopped.is_none())
                    .count();
                if watched >= g.min_devices {
                    groupable.insert(office);
                }
                self.office_group(i, office, &group, &mut covered, &mut told_at_once);
            }
        }
        let wait = g.wait_ms;
        for dv in &devs {
            let key = AlertKey {
                rule: rule.name.clone(),
                subject: Subject::device(dv.name()),
            };
            let existing = self.existing(&key);
            let office = dv.d.office.as_deref();
            if covered.contains(dv.name()) {
                if let Some(a) = existing {
                    let into = AlertKey {
                        rule: rule.name.clone(),
                        subject: Subject::office(office.unwrap_or_default()),
                    };
                    self.resolve(a, ResolveReason::Merged { into }, None, |_| {});
                }
                continue;
            }
            let waits = wait > 0
                && office.is_some_and(|o| groupable.contains(o))
                && !told_at_once.contains(dv.name());
            match existing {
                Some(a) if !dv.silent => {
                    // Heard again: told as recovered once its records tell
                    // what happened (see [`caught_up`]), or after the
                    // grouping window at the latest.
                    let clearing = a.clearing_since_ms.unwrap_or(self.now);
                    if caught_up(a.since_ms, dv.d) || self.now - clearing >= g.window_ms {
                        let annotation = self.input.annotations.get(dv.name()).cloned();
                        self.resolve(a, ResolveReason::Recovered, annotation, |_| {});
                    } else {
                        self.handled.insert(a.id);
                        if a.clearing_since_ms.is_none() {
                            self.push_update(AlertUpdate {
                                id: a.id,
                                clearing_since_ms: Some(Some(self.now)),
                                ..AlertUpdate::default()
                            });
                        }
                    }
                }
                Some(a) if a.clearing_since_ms.is_some() => {
                    // Silent again while its records were catching up.
                    self.push_update(AlertUpdate {
                        id: a.id,
                        clearing_since_ms: Some(None),
                        ..AlertUpdate::default()
                    });
                    let after = if waits {
                        a.opened_ms.saturating_add(wait)
                    } else {
                        i64::MIN
                    };
                    self.keep(a, i, after);
                }
                Some(a) => {
                    let after = if waits {
                        a.opened_ms.saturating_add(wait)
                    } else {
                        i64::MIN
                    };
                    self.keep(a, i, after);
                }
                None if dv.cond => {
                    let cond = Cond {
                        since_ms: dv.heard,
                        links: dv.d.links_down.clone(),
                    };
                    self.open_alert(key, AlertKind::Unreachable, office, cond, Vec::new(), waits);
                }
                None => {}
            }
        }
    }

    /// Is a device silent since `deadline` expected online now: the
    /// schedule open, and the grace passed in scheduled time?
    fn expected(&mut self, i: usize, office: Option<&'a str>, deadline: i64) -> bool {
        let Some(open) = self.open_since(i, office) else {
            return false;
        };
        let grace = self.ctx.rules.grace_ms;
        if open <= deadline || self.now - open >= grace {
            return self.now - deadline >= grace;
        }
        scheduled_at_least(self.ctx.schedule(i, office), deadline, self.now, grace)
    }

    /// The office-offline alert of one office (see the module docs).
    fn office_group(
        &mut self,
        i: usize,
        code: &'a str,
        group: &[&Dev<'a>],
        covered: &mut HashSet<String>,
        told_at_once: &mut HashSet<String>,
    ) {
        let g = self.ctx.rules.grouping;
        let key = AlertKey {
            rule: self.rule(i).name.clone(),
            subject: Subject::office(code),
        };
        let watched: Vec<&Dev<'a>> = group
            .iter()
            .copied()
            .filter(|dv| !dv.silenced && dv.d.stopped.is_none())
            .collect();
        let threshold = g
            .min_devices
            .max((g.fraction * watched.len() as f64).ceil() as usize);
        let gateway = watched.iter().copied().find(|dv| dv.d.gateway);
        let Some(a) = self.existing(&key) else {
            if self.silenced(&Subject::office(code), Some(code)).is_some() {
                return;
            }
            let mut cands: Vec<&Dev<'a>> = watched.iter().copied().filter(|dv| dv.cond).collect();
            cands.sort_by(|x, y| (x.heard, x.name()).cmp(&(y.heard, y.name())));
            let members: Vec<&Dev<'a>> = match gateway.filter(|gw| gw.cond) {
                Some(gw) => cands
                    .into_iter()
                    .filter(|dv| dv.heard >= gw.heard.saturating_sub(g.window_ms))
                    .collect(),
                None => {
                    let cluster = densest(&cands, g.window_ms);
                    if cluster.len() >= threshold {
                        cluster.to_vec()
                    } else {
                        Vec::new()
                    }
                }
            };
            if members.is_empty() {
                return;
            }
            let since = members.iter().map(|dv| dv.heard).min().unwrap_or(self.now);
            let names: Vec<String> = members.iter().map(|dv| dv.name().to_string()).collect();
            let cond = Cond {
                since_ms: since,
                links: gateway
                    .map(|gw| gw.d.links_down.clone())
                    .unwrap_or_default(),
            };
            covered.extend(names.iter().cloned());
            self.open_alert(
                key,
                AlertKind::OfficeOffline,
                Some(code),
                cond,
                names,
                false,
            );
            return;
        };
        let silent_now = watched.iter().filter(|dv| dv.silent).count();
        let down =
            gateway.is_some_and(|gw| gw.silent) || (silent_now >= threshold && silent_now > 0);
        let mut update = AlertUpdate {
            id: a.id,
            ..AlertUpdate::default()
        };
        // A member that has since announced its stop leaves the alert: a clean
        // stop is never counted as offline.
        let stopped: HashSet<&str> = group
            .iter()
            .filter(|dv| dv.d.stopped.is_some())
            .map(|dv| dv.name())
            .collect();
        let mut members: Vec<String> = a
            .members
            .iter()
            .filter(|m| !stopped.contains(m.as_str()))
            .cloned()
            .collect();
        if down {
            for dv in watched.iter().filter(|dv| dv.cond) {
                if !members.iter().any(|m| m == dv.name()) {
                    members.push(dv.name().to_string());
                }
            }
            if members != a.members {
                update.members = Some(members.clone());
            }
            if a.clearing_since_ms.is_some() {
                update.clearing_since_ms = Some(None);
            }
            self.push_update(update);
            covered.extend(members);
            self.keep(a, i, i64::MIN);
            return;
        }
        let by_name: HashMap<&str, &Dev<'a>> = group.iter().map(|dv| (dv.name(), *dv)).collect();
        let (back, still): (Vec<String>, Vec<String>) = members
            .iter()
            .cloned()
            .partition(|m| by_name.get(m.as_str()).is_none_or(|dv| !dv.silent));
        let clearing = a.clearing_since_ms.unwrap_or(self.now);
        if still.is_empty() || self.now - clearing >= g.window_ms {
            let annotated = |name: &str| self.input.annotations.get(name).cloned();
            let annotation = group
                .iter()
                .find(|dv| dv.d.gateway && back.iter().any(|b| b == dv.name()))
                .and_then(|gw| annotated(gw.name()))
                .or_else(|| back.iter().find_map(|b| annotated(b)));
            told_at_once.extend(still.iter().cloned());
            self.resolve(a, ResolveReason::Recovered, annotation, |v| {
                v.came_back = back;
                v.still_silent = still;
            });
            return;
        }
        self.handled.insert(a.id);
        if a.clearing_since_ms.is_none() {
            update.clearing_since_ms = Some(Some(self.now));
            self.push_update(update);
        }
        covered.extend(members);
    }

    fn push_update(&mut self, u: AlertUpdate) {
        if u.notified_ms.is_some()
            || u.level.is_some()
            || u.members.is_some()
            || u.clearing_since_ms.is_some()
        {
            self.out.update.push(u);
        }
    }
}

/// Whether a device heard again after a silence that began at `since_ms`
/// has sent records far enough into it for the recovery's account (the
/// annotation) not to be a guess: its newest record is past the middle of
/// `[since_ms, last upload]`. An upload sent before the silence and
/// delivered late (held in TCP retransmission while the links were down)
/// carries only records from before it, and an agent draining a large
/// spool sends its oldest records first; in both the next uploads bring
/// the rest within seconds. A device whose clock is far behind never
/// looks caught up, hence the caller's bound.
fn caught_up(since_ms: i64, d: &DeviceFacts) -> bool {
    match (d.last_record_ms, d.last_upload_ms) {
        (Some(rec), Some(up)) if up > since_ms => rec >= since_ms + (up - since_ms) / 2,
        _ => true,
    }
}

/// The largest run of `sorted` (by `heard`) within `window` of its first
/// (the earliest such run on a tie).
fn densest<'d, 'a>(sorted: &'d [&'d Dev<'a>], window: i64) -> &'d [&'d Dev<'a>] {
    let mut best = (0, 0);
    let mut lo = 0;
    for hi in 0..sorted.len() {
        while sorted[hi].heard - sorted[lo].heard > window {
            lo += 1;
        }
        if hi + 1 - lo > best.1 - best.0 {
            best = (lo, hi + 1);
        }
    }
    &sorted[best.0..best.1]
}
