//! A copy of the fleet (every device, revoked ones included, and the
//! offices) kept between reads, and what to read to bring it up to date:
//! the alert round keeps one of the devices, the dashboard one of the
//! devices with their marks. Pure: the caller reads what [`plan`] says and
//! hands the rows back.
//!
//! Reading 100,000 device rows every few seconds costs more than the rest
//! of an alert round or a fleet page together, and between two reads only
//! the devices that uploaded have changed (an upload writes its records,
//! and so moves a device's mark, in the transaction that sets its last
//! upload). So a reader reads
//! - **everything** when it has no copy yet, when the store's catalog
//!   version (bumped by the database on any device or office added,
//!   removed, renamed, moved, revoked or given a new token) is not the
//!   copy's, when the store cannot tell a version, and at the latest
//!   [`FULL_EVERY_MS`] after the last full read (a safety net: see below);
//! - otherwise only the devices whose last upload is at or after the
//!   newest upload the copy knows minus [`SLACK_MS`].
//!
//! The slack covers uploads stamped (by the collector's clock, when the
//! upload arrived) before the newest one the copy holds but committed after
//! it was read: several writers commit in any order. An upload whose commit
//! took longer than the slack, or a collector clock stepped back by more,
//! is picked up by the next full read.

use crate::collector::store::{Device, Office};
use std::collections::HashMap;

/// Uploads committed this long after they were stamped are still read by
/// the next incremental read.
pub const SLACK_MS: i64 = 30_000;
/// A full read at least this often.
pub const FULL_EVERY_MS: i64 = 10 * 60_000;

/// What the reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Every device and office.
    Full,
    /// The devices whose last upload is at or after this time.
    HeardSince(i64),
}

/// A row of the copy: a device, and what the reader keeps with it.
pub trait Row {
    fn device(&self) -> &Device;
}

impl Row for Device {
    fn device(&self) -> &Device {
        self
    }
}

/// A device and the mark of its state-setting records (the dashboard).
impl Row for (Device, Option<i64>) {
    fn device(&self) -> &Device {
        &self.0
    }
}

/// The copy.
#[derive(Debug, Clone)]
pub struct Fleet<T = Device> {
    /// The catalog version of the last full read.
    version: Option<i64>,
    /// When (the reader's clock) the last full read was.
    full_at_ms: i64,
    /// In name order.
    devices: Vec<T>,
    /// Device id → index in `devices`.
    at: HashMap<i64, usize>,
    offices: Vec<Office>,
}

impl<T> Default for Fleet<T> {
    fn default() -> Self {
        Fleet {
            version: None,
            full_at_ms: 0,
            devices: Vec::new(),
            at: HashMap::new(),
            offices: Vec::new(),
        }
    }
}

/// What to read, for the copy `fleet` (none yet: `None`), the store's
/// catalog `version` now, at `now_ms`.
pub fn plan<T: Row>(fleet: Option<&Fleet<T>>, version: Option<i64>, now_ms: i64) -> Read {
    let Some(f) = fleet else {
        return Read::Full;
    };
    if version.is_none()
        || f.version != version
        || now_ms.saturating_sub(f.full_at_ms) >= FULL_EVERY_MS
        || now_ms < f.full_at_ms
    {
        return Read::Full;
    }
    match f.newest_upload_ms() {
        Some(t) => Read::HeardSince(t.saturating_sub(SLACK_MS)),
        // Nobody has uploaded yet: anyone who has since is new.
        None => Read::HeardSince(i64::MIN),
    }
}

impl<T: Row> Fleet<T> {
    /// The copy from a full read made with the catalog at `version`.
    pub fn full(
        version: Option<i64>,
        now_ms: i64,
        mut devices: Vec<T>,
        offices: Vec<Office>,
    ) -> Self {
        devices.sort_by(|a, b| a.device().name.cmp(&b.device().name));
        let at = index(&devices);
        Fleet {
            version,
            full_at_ms: now_ms,
            devices,
            at,
            offices,
        }
    }

    /// Take in the rows of an incremental read: a device known by id is
    /// replaced; one not known (added after the version was read: the next
    /// read is a full one, the version having changed) is added.
    pub fn update(&mut self, changed: Vec<T>) {
        let mut added = false;
        for d in changed {
            match self.at.get(&d.device().id) {
                Some(&k) => self.devices[k] = d,
                None => {
                    self.devices.push(d);
                    added = true;
                }
            }
        }
        if added {
            self.devices
                .sort_by(|a, b| a.device().name.cmp(&b.device().name));
            self.at = index(&self.devices);
        }
    }

    /// Every device, revoked ones included, in name order.
    pub fn devices(&self) -> &[T] {
        &self.devices
    }

    pub fn offices(&self) -> &[Office] {
        &self.offices
    }

    /// The newest last upload of any device in the copy.
    fn newest_upload_ms(&self) -> Option<i64> {
        self.devices
            .iter()
            .filter_map(|d| d.device().seen.last_upload_ms)
            .max()
    }
}

fn index<T: Row>(devices: &[T]) -> HashMap<i64, usize> {
    devices
        .iter()
        .enumerate()
        .map(|(k, d)| (d.device().id, k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::model::LastSeen;

    fn dev(id: i64, name: &str, upload: Option<i64>) -> Device {
        Device {
            id,
            name: name.into(),
            office: None,
            revoked: false,
            acked: 0,
            created_at_ms: 0,
            seen: LastSeen {
                last_upload_ms: upload,
                ..LastSeen::default()
            },
        }
    }

    const T: i64 = 1_800_000_000_000;

    #[test]
    fn first_round_reads_everything() {
        assert_eq!(plan::<Device>(None, Some(3), T), Read::Full);
        assert_eq!(plan::<Device>(None, None, T), Read::Full);
    }

    #[test]
    fn same_version_reads_what_uploaded_since_the_newest_upload_minus_the_slack() {
        let f = Fleet::full(
            Some(3),
            T,
            vec![
                dev(1, "b", Some(T - 9_000)),
                dev(2, "a", Some(T - 2_000)),
                dev(3, "c", None),
            ],
            vec![],
        );
        assert_eq!(
            plan(Some(&f), Some(3), T + 4_000),
            Read::HeardSince(T - 2_000 - SLACK_MS)
        );
    }

    #[test]
    fn a_changed_or_unknown_version_reads_everything() {
        let f = Fleet::full(Some(3), T, vec![dev(1, "a", Some(T))], vec![]);
        assert_eq!(plan(Some(&f), Some(4), T + 1), Read::Full);
        assert_eq!(plan(Some(&f), None, T + 1), Read::Full);
        let unknown = Fleet::full(None, T, vec![dev(1, "a", Some(T))], vec![]);
        assert_eq!(plan(Some(&unknown), None, T + 1), Read::Full);
    }

    #[test]
    fn a_full_read_at_least_every_ten_minutes_and_after_the_clock_steps_back() {
        let f = Fleet::full(Some(3), T, vec![dev(1, "a", Some(T))], vec![]);
        assert!(matches!(
            plan(Some(&f), Some(3), T + FULL_EVERY_MS - 1),
            Read::HeardSince(_)
        ));
        assert_eq!(plan(Some(&f), Some(3), T + FULL_EVERY_MS), Read::Full);
        assert_eq!(plan(Some(&f), Some(3), T - 1), Read::Full);
    }

    #[test]
    fn nobody_uploaded_yet_reads_anyone_who_has() {
        let f = Fleet::full(Some(0), T, vec![dev(1, "a", None)], vec![]);
        assert_eq!(plan(Some(&f), Some(0), T + 1), Read::HeardSince(i64::MIN));
    }

    #[test]
    fn update_replaces_by_id_and_keeps_name_order() {
        let mut f = Fleet::full(
            Some(1),
            T,
            vec![dev(1, "b", Some(T)), dev(2, "a", None)],
            vec![],
        );
        f.update(vec![dev(2, "a", Some(T + 5))]);
        let names: Vec<_> = f
            .devices()
            .iter()
            .map(|d| (d.name.as_str(), d.seen.last_upload_ms))
            .collect();
        assert_eq!(names, [("a", Some(T + 5)), ("b", Some(T))]);
        // One not known: added in its place.
        f.update(vec![dev(7, "ab", Some(T + 6)), dev(1, "b", Some(T + 7))]);
        let names: Vec<_> = f
            .devices()
            .iter()
            .map(|d| (d.name.as_str(), d.seen.last_upload_ms))
            .collect();
        assert_eq!(
            names,
            [("a", Some(T + 5)), ("ab", Some(T + 6)), ("b", Some(T + 7))]
        );
        f.update(vec![dev(2, "a", Some(T + 8))]);
        assert_eq!(f.devices()[0].seen.last_upload_ms, Some(T + 8));
    }
}
