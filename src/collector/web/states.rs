//! Every visible device's state now, for the fleet pages, from a copy of
//! the fleet kept between views ([`crate::collector::fleet_copy`]: every
//! device with the mark of its state-setting records and the offices, read
//! in full only when the catalog changed or every 10 minutes, else only the
//! devices heard from since), and the last state-setting records of only
//! those devices whose mark moved since this process last read them
//! (`Store::last_transitions`, a few hundred devices a statement). What
//! those records say ([`Said`]) is kept per device with its mark; the
//! clock's part (silent or not) is applied on every view. What was judged
//! is also kept in the database with the mark (migration 0016), so a
//! process's first view reads again only devices whose mark has moved
//! since any collector on the database judged them. The states are
//! exactly those [`now::state_now`] gives from
//! `transitions_before(id, i64::MAX, TRANSITIONS)`.

use super::WebState;
use super::now::{self, NowState, Said};
use super::session::{PageError, store_err};
use crate::collector::access::Access;
use crate::collector::fleet_copy::{self, Fleet, Read};
use crate::collector::last_seen::now_ms;
use crate::collector::model::{Device, Office};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Devices whose records are read and judged per step: what a step has
/// judged is kept even when the page is cut off by its time limit later.
const STEP: usize = 2_000;

/// What each device's last state-setting records said, with the mark they
/// had (see `Store::devices_marked`), and the copy of the fleet they were
/// judged against.
#[derive(Debug, Default)]
pub struct SaidCache {
    by_device: HashMap<i64, (i64, Said)>,
    fleet: Option<Fleet<(Device, Option<i64>)>>,
}

/// The devices `access` sees (not revoked, in no particular order) with their
/// state now, and the offices by code.
pub async fn states(
    ws: &WebState,
    access: &Access,
) -> Result<(Vec<(Device, NowState)>, BTreeMap<String, Office>), PageError> {
    let store = ws.api.store();
    let mut guard = ws.said.lock().await;
    let SaidCache { by_device, fleet } = &mut *guard;
    // The copy of the fleet brought up to date: in full, or only the
    // devices heard from since (their marks move only with their uploads).
    let read_at = now_ms();
    let version = store.catalog_version().await.map_err(store_err)?;
    let copy = match fleet_copy::plan(fleet.as_ref(), version, read_at) {
        Read::Full => {
            let (devices, offices) = tokio::join!(store.devices_marked(), store.list_offices());
            fleet.insert(Fleet::full(
                version,
                read_at,
                devices.map_err(store_err)?,
                offices.map_err(store_err)?,
            ))
        }
        Read::HeardSince(from_ms) => {
            let changed = store
                .devices_marked_since(from_ms)
                .await
                .map_err(store_err)?;
            let f = fleet.get_or_insert_with(Fleet::default);
            f.update(changed);
            f
        }
    };
    // A process's first view: what the dashboard judged before (this
    // process or another sharing the database), kept with the marks then;
    // below only devices whose mark has moved since are read again.
    if by_device.is_empty() {
        match store.saids().await {
            Ok(saids) => by_device.extend(
                saids
                    .into_iter()
                    .filter_map(|(id, mark, code)| Some((id, (mark, Said::from_code(code)?)))),
            ),
            Err(e) => tracing::warn!("dashboard: the states judged before are not read: {e}"),
        }
    }
    let offices: BTreeMap<String, Office> = copy
        .offices()
        .iter()
        .map(|o| (o.code.clone(), o.clone()))
        .collect();
    let known = copy.devices().len();
    let visible: Vec<(Device, Option<i64>)> = copy
        .devices()
        .iter()
        .filter(|(d, _)| !d.revoked && access.sees(d, &offices))
        .cloned()
        .collect();
    // Read again: devices that upload, have state-setting records, and whose
    // mark moved (or whose store keeps no marks).
    let stale: Vec<(i64, String, Option<i64>)> = visible
        .iter()
        .filter(|(d, m)| {
            d.seen.last_upload_ms.is_some()
                && *m != Some(0)
                && (m.is_none() || by_device.get(&d.id).map(|c| c.0) != *m)
        })
        .map(|(d, m)| (d.id, d.name.clone(), *m))
        .collect();
    let mut fresh: HashMap<i64, Said> = HashMap::new();
    let mut judged_now: Vec<(i64, i64, i64)> = Vec::new();
    for step in stale.chunks(STEP) {
        let ids: Vec<i64> = step.iter().map(|s| s.0).collect();
        let read = store
            .last_transitions(&ids, now::TRANSITIONS)
            .await
            .map_err(store_err)?;
        // Parsing and the engine: off the request threads.
        let step = step.to_vec();
        let judged = tokio::task::spawn_blocking(move || {
            let mut read: HashMap<i64, Vec<_>> = read.into_iter().collect();
            step.into_iter()
                .map(|(id, name, mark)| {
                    let said = now::said(&name, &read.remove(&id).unwrap_or_default());
                    (id, mark, said)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(store_err)?;
        for (id, mark, said) in judged {
            match mark {
                Some(m) => {
                    by_device.insert(id, (m, said));
                    judged_now.push((id, m, said.code()));
                }
                None => {
                    fresh.insert(id, said);
                }
            }
        }
    }
    // Kept in the database for the next start, off the page's time (a pair
    // of mark and judgement is consistent whichever write lands last).
    if !judged_now.is_empty() {
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.put_saids(&judged_now).await {
                tracing::warn!("dashboard: the states judged are not kept: {e}");
            }
        });
    }
    // Devices removed since: forget them (the cache never outgrows the fleet).
    if by_device.len() > known {
        let known: HashSet<i64> = copy.devices().iter().map(|(d, _)| d.id).collect();
        by_device.retain(|id, _| known.contains(id));
    }
    let now = now_ms();
    let silence = ws.opts.silence;
    let out: Vec<(Device, NowState)> = visible
        .into_iter()
        .map(|(d, m)| {
            let said = match m {
                Some(0) => Said::NOTHING,
                Some(_) => by_device.get(&d.id).map_or(Said::NOTHING, |c| c.1),
                None => fresh.get(&d.id).copied().unwrap_or(Said::NOTHING),
            };
            let s = now::state_from(&d, said, now, silence);
            (d, s)
        })
        .collect();
    drop(guard);
    Ok((out, offices))
}
