//! What the alert round reads from the store beyond the fleet itself, and
//! what the engine remembers of it between rounds: the fleet's copy brought
//! up to date ([`refresh`]), whether silent devices' last records are clean
//! stops (read in bulk, once per upload) and watched gateways' links (once
//! per upload).

use super::Engine;
use crate::collector::alerts::model::{GatewayLinks, StopKind};
use crate::collector::fleet_copy::{self as fleet, Fleet, Read};
use crate::collector::store::{Device, Store, StoreError};
use crate::wire::v1::{Body, LifecycleEvent};
use std::collections::HashMap;

/// Per device id: its last upload when read, and its stop.
pub(super) type StopCache = HashMap<i64, (Option<i64>, Option<StopKind>)>;

/// Per device id: its last upload when read, and its links.
pub(super) type LinksCache = HashMap<i64, (Option<i64>, Option<GatewayLinks>)>;

impl Engine {
    /// Is the device's last record a clean stop? Only for devices past
    /// their deadline (the grace not counted: known before it ends), from
    /// what [`Engine::read_stops`] read this round.
    pub(super) fn stopped(&self, d: &Device, now_ms: i64) -> Option<StopKind> {
        let r = &self.cfg.rules;
        if !d.seen.silent(now_ms, r.upload_interval_ms, 0) {
            return None;
        }
        self.lock_stops()
            .get(&d.id)
            .filter(|(at, _)| *at == d.seen.last_upload_ms)
            .and_then(|(_, kind)| *kind)
    }

    /// [`Engine::stopped`]'s reads of the devices past their deadline not
    /// read since their last upload, done in bulk (a few statements, not one
    /// per device: a round after a start may find thousands silent).
    pub(super) async fn read_stops(
        &self,
        store: &dyn Store,
        devices: &[&Device],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let r = &self.cfg.rules;
        let want: Vec<(i64, Option<i64>)> = {
            let stops = self.lock_stops();
            devices
                .iter()
                .filter(|d| d.seen.silent(now_ms, r.upload_interval_ms, 0))
                .filter(|d| {
                    stops
                        .get(&d.id)
                        .is_none_or(|(at, _)| *at != d.seen.last_upload_ms)
                })
                .map(|d| (d.id, d.seen.last_upload_ms))
                .collect()
        };
        if want.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = want.iter().map(|(id, _)| *id).collect();
        let last: HashMap<i64, Option<StopKind>> = store
            .last_transitions(&ids, 1)
            .await?
            .into_iter()
            .map(|(id, recs)| (id, recs.last().and_then(stop_kind)))
            .collect();
        let mut stops = self.lock_stops();
        for (id, upload) in want {
            stops.insert(id, (upload, last.get(&id).copied().flatten()));
        }
        Ok(())
    }

    /// A watched gateway's links from its last state-setting records (read
    /// once per upload).
    pub(super) async fn links(
        &self,
        store: &dyn Store,
        d: &Device,
    ) -> Result<Option<GatewayLinks>, StoreError> {
        if let Some((at, links)) = self.lock_links().get(&d.id)
            && *at == d.seen.last_upload_ms
        {
            return Ok(links.clone());
        }
        let recs = store
            .transitions_before(
                d.id,
                i64::MAX,
                crate::collector::alerts::links::RECORDS_READ,
            )
            .await?;
        let links = crate::collector::alerts::links::from_stored(&recs);
        self.lock_links()
            .insert(d.id, (d.seen.last_upload_ms, links.clone()));
        Ok(links)
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, LinksCache> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_stops(&self) -> std::sync::MutexGuard<'_, StopCache> {
        self.stops.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The stop a stored record announces, if it is one.
pub fn stop_kind(r: &crate::collector::store::StoredRecord) -> Option<StopKind> {
    if r.kind != "lifecycle" {
        return None;
    }
    match serde_json::from_str::<Body>(&r.body).ok()? {
        Body::Lifecycle {
            event: LifecycleEvent::Stop,
            detail,
            ..
        } => {
            let d = detail.unwrap_or_default().to_ascii_lowercase();
            Some(if d.contains("shutdown") || d.contains("power") {
                StopKind::Shutdown
            } else if d.contains("sleep") || d.contains("suspend") {
                StopKind::Sleep
            } else {
                StopKind::Stopped
            })
        }
        _ => None,
    }
}

/// The engine's copy of the fleet brought up to date: everything read, or
/// only the devices heard from since the copy's newest upload
/// ([`crate::collector::fleet_copy`]).
pub(super) async fn refresh<'f>(
    store: &dyn Store,
    fleet: &'f mut Option<Fleet>,
    now_ms: i64,
) -> Result<&'f Fleet, StoreError> {
    let version = store.catalog_version().await?;
    match fleet::plan(fleet.as_ref(), version, now_ms) {
        Read::Full => {
            let devices = store.list_devices().await?;
            let offices = store.list_offices().await?;
            Ok(fleet.insert(Fleet::full(version, now_ms, devices, offices)))
        }
        Read::HeardSince(from_ms) => {
            let changed = store.devices_heard_since(from_ms).await?;
            let f = fleet.get_or_insert_with(Fleet::default);
            f.update(changed);
            Ok(f)
        }
    }
}
