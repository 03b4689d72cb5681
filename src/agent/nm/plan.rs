//! Which route metrics NetworkManager's active connections should carry for the policy's
//! link order, as pure code: observations in, the Reapply calls to make (and what to remember
//! for undoing them) out.
//!
//! Per address family, the effective metrics must rise along the policy's order (the chosen
//! link first) so that the kernel's default route is the chosen link's. A link keeps its own
//! metric whenever that already sorts it after the link before it; otherwise it is moved just
//! behind that link (the previous link's metric + 1). On a laptop with Ethernet at 100 and
//! Wi-Fi at 600, a dead Ethernet upstream therefore changes only Ethernet's metric (to 601);
//! once the policy fails back, Ethernet's own metric is put back. When no link is online
//! (`chosen` is None) every change is undone: NetworkManager decides alone.
//!
//! A link's own metric ("base") is its connection's `route-metric` when set, and otherwise
//! (`-1`, NetworkManager's default for the device type) the metric of the default route
//! NetworkManager installed for it, without the penalty NetworkManager adds to devices whose
//! connectivity check failed ([`CONNECTIVITY_PENALTY`]).

use super::{Family, Observed};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What NetworkManager adds to the default-route metric of a device whose connectivity
/// check failed (NetworkManager 1.20 and later).
pub const CONNECTIVITY_PENALTY: u32 = 20_000;

/// The `route-metric` setting that means "NetworkManager's default for the device type".
pub const DEFAULT_SETTING: i64 = -1;

/// One family of one connection the agent changed: enough to undo it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyChange {
    /// The `route-metric` setting before the agent changed it (`-1`: the default).
    pub original: i64,
    /// The metric that setting stood for when the agent changed it.
    pub base: u32,
    /// The `route-metric` the agent applied.
    pub ours: u32,
    /// While a move from one metric of the agent's to another is under way: the one before
    /// (so that a crash between writing this down and NetworkManager applying it still
    /// undoes either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<u32>,
}

impl FamilyChange {
    /// Does `setting` show this change in place?
    pub fn holds(&self, setting: i64) -> bool {
        setting == i64::from(self.ours) || self.was.is_some_and(|w| setting == i64::from(w))
    }
}

/// What the agent changed on one link's applied connection (never on the saved profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The connection (profile) uuid the change was applied to.
    pub uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v4: Option<FamilyChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6: Option<FamilyChange>,
}

impl Change {
    pub fn family(&self, f: Family) -> Option<FamilyChange> {
        match f {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }
    fn family_mut(&mut self, f: Family) -> &mut Option<FamilyChange> {
        match f {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }
    fn is_empty(&self) -> bool {
        self.v4.is_none() && self.v6.is_none()
    }
}

/// Every change in effect, by link name.
pub type Changes = BTreeMap<String, Change>;

/// One Reapply to make: new `route-metric` settings for one link's applied connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub link: String,
    /// The applied connection must still be this one.
    pub uuid: String,
    /// New IPv4 `route-metric` setting (None: leave it).
    pub v4: Option<i64>,
    /// New IPv6 `route-metric` setting (None: leave it).
    pub v6: Option<i64>,
    /// The link's entry in [`Changes`] once this step has succeeded.
    pub after: Option<Change>,
}

/// The outcome of [`reconcile`] and [`restore`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The changes in effect once every step has succeeded (a failed step leaves its link's
    /// entry as it was before).
    pub changes: Changes,
}

/// The metric a `route-metric` setting stands for: the setting itself, or for `-1` the
/// metric of NetworkManager's default route without the connectivity penalty. None when the
/// device has no default route in the family (nothing to order).
pub fn base_metric(setting: i64, route: Option<u32>) -> Option<u32> {
    // No default route in this family: nothing to order.
    route?;
    if setting >= 0 {
        return Some(u32::try_from(setting).unwrap_or(u32::MAX));
    }
    route.map(|m| {
        if m >= CONNECTIVITY_PENALTY {
            m - CONNECTIVITY_PENALTY
        } else {
            m
        }
    })
}

/// Metrics for one family: for each link of `order` that has a base metric, `Some(m)` when it
/// must be moved to `m`, `None` when its own metric is right. Links without a base are not
/// planned (they have no default route in that family).
pub fn plan_family(
    order: &[String],
    bases: &HashMap<String, u32>,
) -> BTreeMap<String, Option<u32>> {
    let mut out = BTreeMap::new();
    let mut prev: Option<u32> = None;
    for link in order {
        let Some(&base) = bases.get(link) else {
            continue;
        };
        if out.contains_key(link) {
            continue;
        }
        let (effective, moved) = match prev {
            Some(p) if base <= p => (p.saturating_add(1), Some(p.saturating_add(1))),
            _ => (base, None),
        };
        out.insert(link.clone(), moved);
        prev = Some(effective);
    }
    out
}

/// The original setting and base of one family of one observed link, given what the agent
/// changed earlier. None for the change when the change no longer holds (NetworkManager
/// re-activated the connection, or someone else changed the setting since).
fn current_family(
    obs: &Observed,
    family: Family,
    earlier: Option<&Change>,
) -> (i64, Option<u32>, Option<FamilyChange>) {
    let setting = obs.setting(family);
    let route = obs.route(family);
    if let Some(c) = earlier.filter(|c| c.uuid == obs.uuid)
        && let Some(fc) = c.family(family)
    {
        if fc.holds(setting) {
            // Our change is in place.
            return (fc.original, Some(fc.base), Some(fc));
        }
        if setting == fc.original {
            // Reset to the original (re-activation): the same base as before.
            return (fc.original, Some(fc.base), None);
        }
    }
    (setting, base_metric(setting, route), None)
}

/// What to Reapply so that the links NetworkManager manages follow `order` (`chosen` false:
/// no link is online, undo everything). `observed` are the links with an active connection;
/// `earlier` what the agent changed before. Links in `earlier` that are not observed now keep
/// their entry (they may come back); links observed but not in `order` are put back.
pub fn reconcile(order: &[String], chosen: bool, observed: &[Observed], earlier: &Changes) -> Plan {
    let mut plan = Plan {
        steps: vec![],
        changes: earlier.clone(),
    };
    let ordered: Vec<String> = if chosen {
        order
            .iter()
            .filter(|l| observed.iter().any(|o| &o.link == *l))
            .cloned()
            .collect()
    } else {
        vec![]
    };
    let mut wanted: HashMap<Family, BTreeMap<String, Option<u32>>> = HashMap::new();
    let mut current: HashMap<(String, Family), (i64, Option<u32>)> = HashMap::new();
    for family in Family::BOTH {
        let mut bases = HashMap::new();
        for obs in observed {
            let (original, base, _) = current_family(obs, family, earlier.get(&obs.link));
            current.insert((obs.link.clone(), family), (original, base));
            if let Some(b) = base {
                bases.insert(obs.link.clone(), b);
            }
        }
        wanted.insert(family, plan_family(&ordered, &bases));
    }
    for obs in observed {
        let mut after = Change {
            uuid: obs.uuid.clone(),
            v4: None,
            v6: None,
        };
        let mut step = Step {
            link: obs.link.clone(),
            uuid: obs.uuid.clone(),
            v4: None,
            v6: None,
            after: None,
        };
        for family in Family::BOTH {
            let (original, base) = current[&(obs.link.clone(), family)];
            let moved = wanted[&family].get(&obs.link).copied().flatten();
            let desired = moved.map(i64::from).unwrap_or(original);
            if let (Some(ours), Some(base)) = (moved, base) {
                *after.family_mut(family) = Some(FamilyChange {
                    original,
                    base,
                    ours,
                    was: None,
                });
            }
            if desired != obs.setting(family) {
                match family {
                    Family::V4 => step.v4 = Some(desired),
                    Family::V6 => step.v6 = Some(desired),
                }
            }
        }
        let after = (!after.is_empty()).then_some(after);
        match &after {
            Some(c) => plan.changes.insert(obs.link.clone(), c.clone()),
            None => plan.changes.remove(&obs.link),
        };
        if step.v4.is_some() || step.v6.is_some() {
            step.after = after;
            plan.steps.push(step);
        }
    }
    plan
}

/// Undo every change that still holds (clean stop, and leftovers of a crash at start). A
/// change that no longer holds (the connection was re-activated or changed by someone else)
/// is forgotten without touching anything. Entries of links not observed are forgotten too:
/// without an active connection there is nothing left to undo.
pub fn restore(observed: &[Observed], earlier: &Changes) -> Plan {
    let mut steps = vec![];
    for obs in observed {
        let Some(c) = earlier.get(&obs.link).filter(|c| c.uuid == obs.uuid) else {
            continue;
        };
        let undo = |family: Family| {
            c.family(family)
                .filter(|fc| fc.holds(obs.setting(family)))
                .map(|fc| fc.original)
        };
        let (v4, v6) = (undo(Family::V4), undo(Family::V6));
        if v4.is_some() || v6.is_some() {
            steps.push(Step {
                link: obs.link.clone(),
                uuid: obs.uuid.clone(),
                v4,
                v6,
                after: None,
            });
        }
    }
    Plan {
        steps,
        changes: Changes::new(),
    }
}

/// What to write down before applying `steps` on top of `before`: every change a step is
/// about to make is already remembered (a crash in between must still undo it), and every
/// change a step is about to undo is still remembered (until it is undone). A move from one
/// metric of the agent's to another keeps the old one in [`FamilyChange::was`].
pub fn pending(before: &Changes, steps: &[Step]) -> Changes {
    let mut out = before.clone();
    for step in steps {
        let Some(after) = &step.after else {
            continue;
        };
        let old = before.get(&step.link).filter(|c| c.uuid == after.uuid);
        let mut merged = after.clone();
        for family in Family::BOTH {
            let old_fc = old.and_then(|c| c.family(family));
            match (merged.family_mut(family), old_fc) {
                (Some(new), Some(o)) if new.ours != o.ours => new.was = Some(o.ours),
                (slot @ None, Some(o)) => *slot = Some(o),
                _ => {}
            }
        }
        out.insert(step.link.clone(), merged);
    }
    out
}

#[cfg(test)]
mod tests;
