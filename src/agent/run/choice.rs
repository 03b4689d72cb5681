//! The agent's choice of link, acted on: asks the pure policy, records and
//! announces a change of the chosen link (metrics, hook, record, conntrack),
//! tells the links which one is chosen and which must confirm themselves, and
//! keeps the device's `online` (status, gauge, log) current.

use super::Agent;
use crate::agent::hooks::HookEvent;
use crate::agent::policy::Cause;
use crate::agent::status::SwitchLabels;
use crate::agent::worker::LinkMsg;
use crate::shared::time::{Millis, rfc3339};
use crate::wire::FailoverStatus;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::{info, warn};

impl Agent {
    /// Ask the policy which link should carry the default route, and act on it.
    pub(super) async fn decide(&mut self) {
        // Decide on the freshest facts: take in the notes already sent.
        self.drain_notes();
        let candidates = self.book.candidates(&|n| self.managed(n));
        let now = self.clock.now();
        let d = self.policy.decide(now, &candidates);
        self.recheck = d.pending.as_ref().map(|(_, at)| {
            tokio::time::Instant::now() + at.saturating_sub(now) + Duration::from_millis(5)
        });
        // Waiting for a link's confirmation is no change yet: the move is
        // announced and recorded once it is made (from the link left to the
        // one confirmed), so the collector counts one failover.
        let waiting = d.cause == Cause::Confirming;
        if waiting && self.last_cause != Cause::Confirming {
            info!(reason = %d.reason, "confirming a link before moving the route to it");
        }
        if d.chosen != self.chosen || d.cause != Cause::Stay {
            self.last_cause = d.cause;
        }
        if d.chosen != self.chosen && !waiting {
            self.switches += 1;
            info!(from = ?self.chosen, to = ?d.chosen, cause = %d.cause, reason = %d.reason,
                  mode = ?self.cfg.failover.mode, "chosen link changed");
            self.shared
                .metrics
                .switches
                .get_or_create(&SwitchLabels {
                    cause: d.cause.as_str().into(),
                    from: self.chosen.clone().unwrap_or_default(),
                    to: d.chosen.clone().unwrap_or_default(),
                })
                .inc();
            self.hooks.fire(HookEvent::Failover {
                from: self.chosen.clone(),
                to: d.chosen.clone(),
                cause: d.cause.as_str().into(),
                reason: d.reason.clone(),
            });
            self.recorder.record(crate::wire::v1::Body::Failover {
                from: self.chosen.clone(),
                to: d.chosen.clone(),
                cause: d.cause.as_str().into(),
                reason: d.reason.clone(),
            });
            if let Some(old) = &self.chosen {
                self.send(old, LinkMsg::Chosen(false));
            }
            if let Some(new) = &d.chosen {
                self.send(new, LinkMsg::Chosen(true));
            }
            let previous = std::mem::replace(&mut self.chosen, d.chosen.clone());
            self.flush_conntrack(previous.as_deref(), d.cause);
        }
        {
            let mut f = self
                .shared
                .failover
                .write()
                .unwrap_or_else(|e| e.into_inner());
            // With NetworkManager, its task says which mode is in effect and why.
            let (mode, mode_reason, networkmanager) = match &self.nm {
                Some(_) => (
                    std::mem::take(&mut f.mode),
                    std::mem::take(&mut f.mode_reason),
                    f.networkmanager.take(),
                ),
                None => {
                    let c = crate::agent::nm::mode::choose(self.cfg.failover.mode, None);
                    (c.mode.into(), c.reason, None)
                }
            };
            *f = FailoverStatus {
                mode,
                mode_reason,
                networkmanager,
                chosen: d.chosen.clone(),
                cause: self.last_cause.as_str().into(),
                reason: d.reason.clone(),
                preferred: self.policy.preferred().map(str::to_string),
                pending: d
                    .pending
                    .as_ref()
                    .map(|(n, at)| (n.clone(), rfc3339(self.clock.wall(*at)))),
                switches: self.switches,
            };
        }
        self.ask_confirmations(&d.confirm);
        self.refresh_online();
        if let Some(nm) = &self.nm {
            nm.order(d.chosen.clone(), d.order.clone(), d.switched());
        }
        if self.routes_mode() && (d.order != self.last_order || d.switched()) {
            self.last_order = d.order.clone();
            self.sync_routes().await;
        }
    }

    /// Flush connection tracking of the link traffic left, as configured.
    fn flush_conntrack(&self, previous: Option<&str>, cause: Cause) {
        use crate::config::agent::ConntrackFlush::*;
        let Some(prev) = previous else { return };
        let failover = matches!(cause, Cause::CurrentDown | Cause::CurrentDegraded);
        let failback = matches!(
            cause,
            Cause::FailBack | Cause::Manual | Cause::ManualCleared
        );
        let wanted = match self.cfg.failover.conntrack_flush {
            Keep => false,
            OnFailover => failover,
            OnFailback => failback,
            Both => failover || failback,
        };
        if !wanted || prev.is_empty() {
            return;
        }
        let link = prev.to_string();
        let host = self.host.clone();
        tokio::spawn(async move {
            match host.flush_conntrack(&link).await {
                Ok(n) => info!(link = %link, flows = n, "connection tracking flushed"),
                Err(e) => warn!(link = %link, "cannot flush connection tracking: {e}"),
            }
        });
    }

    /// Tell the links that must confirm themselves, and those that no longer need to.
    fn ask_confirmations(&mut self, confirm: &[(String, Millis)]) {
        let want: HashMap<String, Millis> = confirm.iter().cloned().collect();
        for (name, at) in &want {
            if self.confirm.get(name) != Some(at) {
                self.send(name, LinkMsg::Confirm(Some(*at)));
            }
        }
        for name in self.confirm.keys().filter(|n| !want.contains_key(*n)) {
            self.send(name, LinkMsg::Confirm(None));
        }
        self.confirm = want;
    }

    /// Re-evaluate the device's `online` (status, gauge, log) and when to
    /// look again; also whether the only online links are metered (for the
    /// uploader).
    pub(super) fn refresh_online(&mut self) {
        let now = self.clock.now();
        let o = self.book.online(now);
        self.shared.set_online(o.online);
        self.only_metered
            .store(self.book.only_metered_online(), Ordering::Relaxed);
        if o.online != self.online {
            if o.online {
                info!(
                    online = true,
                    "device online: a link has a clean round within its confirmation window"
                );
            } else {
                warn!(
                    online = false,
                    "device offline: no link has a clean round within its confirmation window"
                );
            }
            self.online = o.online;
        }
        self.online_check = o.until.map(|u| {
            tokio::time::Instant::now() + u.saturating_sub(now) + Duration::from_millis(1)
        });
    }
}
