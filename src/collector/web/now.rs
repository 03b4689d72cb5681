//! "Fleet now": each device's state at this moment and the counts by branch
//! of the hierarchy. Pure: the device rows, their last state-setting records
//! (as the store's `transitions_before` returns them) and the clock are
//! passed in.
//!
//! A device is
//! - **no data** before its first upload;
//! - **silent** when past its upload deadline plus the grace (as
//!   `linkwatch device list` and the metrics say), unless its last record
//!   is a clean stop, shutdown or sleep: then **not running** (as alerts
//!   tell them apart, `alerts::run::stop_kind`);
//! - otherwise in the state the uptime engine gives right after its last
//!   state-setting record (link states, lifecycle, failover): **online**,
//!   **offline** or **not running**.

use crate::collector::alerts::run::stop_kind;
use crate::collector::last_seen::Silence;
use crate::collector::model::{Branch, Device, Level, Office};
use crate::collector::report::to_rec;
use crate::collector::store::StoredRecord;
use crate::collector::uptime::{self, DeviceState, Params};
use std::collections::BTreeMap;

/// How many state-setting records are read per device.
pub const TRANSITIONS: i64 = 16;

/// A device's state now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NowState {
    Online,
    Offline,
    NotRunning,
    Silent,
    NoData,
}

impl NowState {
    pub const ALL: [NowState; 5] = [
        NowState::Online,
        NowState::Offline,
        NowState::NotRunning,
        NowState::Silent,
        NowState::NoData,
    ];
    /// The CSS class (and test hook) of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            NowState::Online => "online",
            NowState::Offline => "offline",
            NowState::NotRunning => "not_running",
            NowState::Silent => "silent",
            NowState::NoData => "no_data",
        }
    }
}

/// What a device's last state-setting records say, whatever the clock:
/// whether the last one is a clean stop (shutdown, sleep), and the state the
/// uptime engine gives right after the last one. Changes only when those
/// records do, so it can be kept per device between page views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Said {
    pub stopped: bool,
    pub state: NowState,
}

impl Said {
    /// Of a device that has no state-setting record yet.
    pub const NOTHING: Said = Said {
        stopped: false,
        state: NowState::NoData,
    };

    /// As the database keeps it (migration 0016): the state's place in
    /// [`NowState::ALL`] times two, plus one when stopped.
    pub fn code(self) -> i64 {
        let i = NowState::ALL
            .iter()
            .position(|s| *s == self.state)
            .unwrap_or(0);
        i as i64 * 2 + i64::from(self.stopped)
    }

    /// [`Said::code`] read back; `None` for a code no build writes.
    pub fn from_code(code: i64) -> Option<Said> {
        let state = *NowState::ALL.get(usize::try_from(code / 2).ok()?)?;
        (code >= 0).then_some(Said {
            stopped: code % 2 == 1,
            state,
        })
    }
}

/// What `last` (the last state-setting records of the device named `name`,
/// in sequence order) say.
pub fn said(name: &str, last: &[StoredRecord]) -> Said {
    let stopped = last.last().and_then(stop_kind).is_some();
    let recs: Vec<_> = last
        .iter()
        .filter_map(|r| to_rec(name, r.clone()).ok())
        .collect();
    let (Some(first), Some(lastrec)) = (recs.first(), recs.last()) else {
        return Said {
            stopped,
            state: NowState::NoData,
        };
    };
    // The window ends right after the last record, and the engine's "now"
    // is never before it: the clock does not change the state at its end.
    let end = lastrec.at_ms.saturating_add(1);
    let tl = uptime::timeline(&recs, first.at_ms, end, end, &Params::default());
    let state = match tl.device.last().map(|i| i.state) {
        Some(DeviceState::Online) => NowState::Online,
        Some(DeviceState::Offline) => NowState::Offline,
        Some(DeviceState::NotRunning) => NowState::NotRunning,
        Some(DeviceState::NoData) | None => NowState::NoData,
    };
    Said { stopped, state }
}

/// The state of `d` at `now_ms` from what its last state-setting records
/// say.
pub fn state_from(d: &Device, said: Said, now_ms: i64, silence: Silence) -> NowState {
    if d.seen.last_upload_ms.is_none() {
        return NowState::NoData;
    }
    if said.stopped {
        return NowState::NotRunning;
    }
    if d.seen.silent(now_ms, silence.interval_ms, silence.grace_ms) {
        return NowState::Silent;
    }
    said.state
}

/// The state of `d` at `now_ms`; `last` are its last state-setting records
/// in sequence order.
pub fn state_now(d: &Device, last: &[StoredRecord], now_ms: i64, silence: Silence) -> NowState {
    state_from(d, said(&d.name, last), now_ms, silence)
}

/// Devices by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [i64; 5]);

impl Counts {
    pub fn add(&mut self, s: NowState) {
        self.0[s as usize] += 1;
    }
    pub fn get(&self, s: NowState) -> i64 {
        self.0[s as usize]
    }
    pub fn total(&self) -> i64 {
        self.0.iter().sum()
    }
}

/// The level whose groups a page under `parent` shows (`None`: a list of
/// devices, under an office).
pub fn child_level(parent: Option<&Branch>) -> Option<Level> {
    match parent.map(|b| b.level) {
        None => Some(Level::Division),
        Some(Level::Division) => Some(Level::District),
        Some(Level::District) => Some(Level::Upazila),
        Some(Level::Upazila) => Some(Level::Office),
        Some(Level::Office) => None,
    }
}

/// One row of a fleet page: a branch (its canonical name, the short name
/// shown) and its devices by state. `key` is `None` for devices attached to
/// no known office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: Option<String>,
    pub label: String,
    pub counts: Counts,
}

/// The rows under `parent` (the whole hierarchy when `None`) at `level`, by
/// name; devices outside `parent` are left out, devices with no known
/// office make one last row at the top level.
pub fn group(
    devices: &[(&Device, NowState)],
    offices: &BTreeMap<String, Office>,
    parent: Option<&Branch>,
    level: Level,
) -> (Counts, Vec<Row>) {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut loose = Counts::default();
    let mut all = Counts::default();
    for (d, s) in devices {
        let office = d.office.as_ref().and_then(|c| offices.get(c));
        match (office, parent) {
            (Some(o), Some(p)) if !p.contains(o) => continue,
            (None, Some(_)) => continue,
            (None, None) => {
                loose.add(*s);
                all.add(*s);
                continue;
            }
            _ => {}
        }
        let Some(o) = office else { continue };
        all.add(*s);
        let key = level.name_of(o);
        let label = match level {
            Level::Office => format!("{} ({})", o.name, o.code),
            _ => level.short_of(o).to_string(),
        };
        rows.entry(key.clone())
            .or_insert(Row {
                key: Some(key),
                label,
                counts: Counts::default(),
            })
            .counts
            .add(*s);
    }
    let mut out: Vec<Row> = rows.into_values().collect();
    if loose.total() > 0 {
        out.push(Row {
            key: None,
            label: String::new(),
            counts: loose,
        });
    }
    (all, out)
}

#[cfg(test)]
mod tests;
