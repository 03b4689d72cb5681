//! A gateway's links as its records tell, for the link warnings
//! (`failover`, `link_down`, `metered_traffic` in [`super::gateway`]).
//! Pure: the device's state-setting records in sequence order in, its
//! [`GatewayLinks`] out.
//!
//! - the links, their kind, metered flag and priority: the last `facts`
//!   record (none: `None`, the rules see no links);
//! - each link's state: the `to` of its last `link_state` record, and since
//!   when it has been on that side of online (a link going from `down` to
//!   `absent` has been off since it went down; `up` to `degraded` stays on
//!   since it came up). A link the facts name but no record mentions is
//!   `absent` since the facts (or since the agent's start);
//! - the link carrying the traffic: the `to` of the last `failover`
//!   record, since then;
//! - a `start` (lifecycle) begins afresh: every link absent and none chosen
//!   from then on, as the agent itself starts.

use super::model::{GatewayLinks, LinkStatus};
use crate::collector::model::StoredRecord;
use crate::wire::LinkState;
use crate::wire::v1::{Body, LifecycleEvent, LinkFact};
use std::collections::BTreeMap;

/// How many of a device's last state-setting records are read for its
/// links: enough to reach its last `facts` record behind days of flapping.
pub const RECORDS_READ: i64 = 500;

/// Fold `records` (placed time, body; in sequence order).
pub fn gateway_links<'a>(
    records: impl IntoIterator<Item = (i64, &'a Body)>,
) -> Option<GatewayLinks> {
    let mut facts: Option<(i64, &'a [LinkFact])> = None;
    let mut start_ms: Option<i64> = None;
    let mut states: BTreeMap<&'a str, (LinkState, i64)> = BTreeMap::new();
    let mut chosen: Option<(&'a str, i64)> = None;
    for (at, body) in records {
        match body {
            Body::Facts { links, .. } => facts = Some((at, links)),
            Body::Lifecycle {
                event: LifecycleEvent::Start,
                ..
            } => {
                start_ms = Some(at);
                states.clear();
                chosen = None;
            }
            Body::LinkState { link, to, .. } => {
                let since = match states.get(link.as_str()) {
                    Some((was, since)) if was.is_online() == to.is_online() => *since,
                    _ => at,
                };
                states.insert(link, (*to, since));
            }
            Body::Failover { to, .. } => {
                chosen = to.as_deref().map(|l| (l, at));
            }
            _ => {}
        }
    }
    let (facts_ms, links) = facts?;
    if links.is_empty() {
        return None;
    }
    let fresh_from = facts_ms.max(start_ms.unwrap_or(i64::MIN));
    Some(GatewayLinks {
        links: links
            .iter()
            .map(|f| {
                let (state, since_ms) = states
                    .get(f.name.as_str())
                    .copied()
                    .unwrap_or((LinkState::Absent, fresh_from));
                LinkStatus {
                    name: f.name.clone(),
                    kind: f.kind,
                    metered: f.metered,
                    priority: f.priority,
                    state,
                    since_ms,
                }
            })
            .collect(),
        chosen: chosen.map(|(l, _)| l.to_string()),
        chosen_since_ms: chosen.map_or(fresh_from, |(_, at)| at),
    })
}

/// [`gateway_links`] of stored records (bodies that do not parse are
/// skipped: the store accepted them from an older or newer agent).
pub fn from_stored(records: &[StoredRecord]) -> Option<GatewayLinks> {
    let bodies: Vec<(i64, Body)> = records
        .iter()
        .filter_map(|r| Some((r.at_ms, serde_json::from_str::<Body>(&r.body).ok()?)))
        .collect();
    gateway_links(bodies.iter().map(|(at, b)| (*at, b)))
}

#[cfg(test)]
mod tests;
