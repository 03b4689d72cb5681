//! The rules that warn rather than alarm: a device whose agent announced
//! its stop and has not run for `after` of scheduled time (`not_running`),
//! and a gateway's links in routes mode: on a backup link (`failover`), a
//! link down or absent (`link_down`), a metered link carrying the traffic
//! (`metered_traffic`), each for `after`.
//!
//! A gateway's link facts are only as fresh as its last upload: while it is
//! silent (or stopped) no link warning opens or closes.

use crate::collector::alerts::evaluate::{Cond, Eval};
use crate::collector::alerts::model::*;
use crate::collector::alerts::rules::{RuleKind, scheduled_at_least};
use crate::wire::LinkState;

impl<'a> Eval<'a> {
    pub(super) fn not_running(&mut self, i: usize) {
        let rule = self.rule(i);
        for d in self.input.devices {
            if !rule.watches(d, &self.ctx.offices) || d.last_upload_ms.is_none() {
                continue;
            }
            let office = d.office.as_deref();
            let cond = match d.stopped {
                Some(_) => {
                    let stop = d.last_record_ms.or(d.last_upload_ms).unwrap_or(self.now);
                    let open = self.open_since(i, office).is_some();
                    (open
                        && scheduled_at_least(
                            self.ctx.schedule(i, office),
                            stop,
                            self.now,
                            rule.after_ms,
                        ))
                    .then_some(Cond {
                        since_ms: stop,
                        links: Vec::new(),
                    })
                }
                None => None,
            };
            let running = d.stopped.is_none();
            self.simple(
                i,
                Subject::device(&d.name),
                AlertKind::NotRunning,
                office,
                cond,
                running,
            );
        }
    }

    pub(super) fn gateway_links(&mut self, i: usize) {
        let rule = self.rule(i);
        for d in self.input.devices {
            if !rule.watches(d, &self.ctx.offices) {
                continue;
            }
            let Some(gw) = &d.links else {
                continue;
            };
            let fresh = d.last_upload_ms.is_some() && !self.silent(d) && d.stopped.is_none();
            let office = d.office.as_deref();
            let now = self.now;
            let held = |since: i64| fresh && now.saturating_sub(since) >= rule.after_ms;
            match rule.kind {
                RuleKind::Failover => {
                    let preferred = gw
                        .links
                        .iter()
                        .min_by(|a, b| {
                            (a.metered, a.priority, &a.name).cmp(&(b.metered, b.priority, &b.name))
                        })
                        .map(|l| l.name.as_str());
                    let chosen = gw.chosen.as_deref();
                    let backup = chosen.is_some() && preferred.is_some() && chosen != preferred;
                    let cond = (backup && held(gw.chosen_since_ms)).then(|| Cond {
                        since_ms: gw.chosen_since_ms,
                        links: preferred
                            .into_iter()
                            .chain(chosen)
                            .map(str::to_string)
                            .collect(),
                    });
                    let over = fresh && chosen.is_some() && chosen == preferred;
                    self.simple(
                        i,
                        Subject::device(&d.name),
                        AlertKind::Failover,
                        office,
                        cond,
                        over,
                    );
                }
                RuleKind::LinkDown => {
                    for l in &gw.links {
                        let down = matches!(l.state, LinkState::Down | LinkState::Absent);
                        let cond = (down && held(l.since_ms)).then(|| Cond {
                            since_ms: l.since_ms,
                            links: vec![l.name.clone()],
                        });
                        self.simple(
                            i,
                            Subject::link(&d.name, &l.name),
                            AlertKind::LinkDown,
                            office,
                            cond,
                            fresh && l.state.is_online(),
                        );
                    }
                }
                RuleKind::MeteredTraffic => {
                    for l in &gw.links {
                        let carrying = gw.chosen.as_deref() == Some(l.name.as_str());
                        let cond =
                            (l.metered && carrying && held(gw.chosen_since_ms)).then(|| Cond {
                                since_ms: gw.chosen_since_ms,
                                links: vec![l.name.clone()],
                            });
                        self.simple(
                            i,
                            Subject::link(&d.name, &l.name),
                            AlertKind::MeteredTraffic,
                            office,
                            cond,
                            fresh && !carrying,
                        );
                    }
                }
                RuleKind::Unreachable | RuleKind::NotRunning => {}
            }
        }
    }
}
