//! Which devices a report covers and their figures: the devices a reader
//! sees ([`select_devices`]), each device's records around a window
//! ([`records_around`]), and its figures put together from roll-up rows and
//! pieces computed from the records ([`figures_in_scope`], cut by
//! [`crate::collector::rollup::plan`]).

use super::{DAY_MS, PAGE, ParamError, ReportError, ReportQuery, param};
use crate::collector::access::{Access, Branch, Level, resolve_branch};
use crate::collector::rollup;
use crate::collector::store::{Device, Office, Store};
use crate::collector::uptime::{self, Figures, Params, Rec};
use crate::shared::schedule::Schedule;
use crate::wire::v1::Body;
use std::collections::{BTreeMap, HashMap};

/// A stored record as the engine takes it.
pub(crate) fn to_rec(
    device: &str,
    r: crate::collector::store::StoredRecord,
) -> Result<Rec, ReportError> {
    let bad = |error: String| ReportError::BadRecord {
        device: device.to_string(),
        seq: r.seq,
        error,
    };
    let body: Body = serde_json::from_str(&r.body).map_err(|e| bad(e.to_string()))?;
    let seq = u64::try_from(r.seq).map_err(|_| bad("negative seq".into()))?;
    Ok(Rec {
        seq,
        seq_end: u64::try_from(r.seq_end).unwrap_or(seq).max(seq),
        at_ms: r.at_ms,
        mono_ms: u64::try_from(r.mono_ms).unwrap_or(0),
        boot_id: r.boot_id,
        body,
    })
}

/// All records of a device, paging through the store.
pub async fn all_records(store: &dyn Store, device: &Device) -> Result<Vec<Rec>, ReportError> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = store.records(device.id, from, PAGE).await?;
        let n = page.len();
        for r in page {
            from = from.max(r.seq + 1);
            out.push(to_rec(&device.name, r)?);
        }
        if (n as i64) < PAGE {
            return Ok(out);
        }
    }
}

/// The figures of one device over the query's window, within `schedule`
/// (the query's, resolved for the device's office: [`Schedule::for_office`]).
pub fn device_figures(recs: &[Rec], q: &ReportQuery, schedule: &Schedule, now_ms: i64) -> Figures {
    let tl = uptime::timeline(recs, q.from_ms, q.to_ms, now_ms, &Params::default());
    uptime::figures(&tl, recs, &schedule.mask(q.from_ms, q.to_ms))
}

/// The devices a reader sees (every registered device, revoked ones too:
/// their past counts; only those in the token's branch when `access` is
/// limited), restricted to `branch` when given, and all offices. The branch
/// is resolved among the offices the reader sees, so a branch outside the
/// token's is "unknown", as one that does not exist.
pub fn select_devices(
    devices: Vec<Device>,
    offices: &[Office],
    access: Option<&Access>,
    branch: Option<&(Level, String)>,
) -> Result<(Vec<Device>, Option<Branch>), ParamError> {
    let map: BTreeMap<String, Office> = offices
        .iter()
        .map(|o| (o.code.clone(), o.clone()))
        .collect();
    let visible = match access {
        Some(a) => a.visible_offices(offices),
        None => offices.to_vec(),
    };
    let branch = branch
        .map(|(level, text)| {
            resolve_branch(*level, text, &visible).map_err(|e| param(e.level.as_str(), e.message))
        })
        .transpose()?;
    let devices = devices
        .into_iter()
        .filter(|d| access.is_none_or(|a| a.sees(d, &map)))
        .filter(|d| branch.as_ref().is_none_or(|b| b.contains_device(d, &map)))
        .collect();
    Ok((devices, branch))
}

/// The figures of every device a reader sees (see [`select_devices`]), and
/// the offices and the resolved branch filter.
///
/// Each device's figures are within the query's schedule as it applies to
/// the device's office ([`Schedule::for_office`]: `office` is each office's
/// own hours).
///
/// The window is cut into whole settled days, whole hours around them and
/// the minutes left at its ends ([`rollup::plan::plan`]). Days and hours
/// are summed from the roll-ups of the query's schedule where every row is
/// there and current for the device; everything else is computed from the
/// records, one stretch at a time, and the pieces joined ([`rollup::Seg`]).
/// Devices without such roll-ups are computed from their records.
///
/// `Uses::Outages`: every outage is listed (roll-ups hold only sums), so
/// every device is computed from its records.
pub async fn figures_in_scope(
    store: &dyn Store,
    q: &ReportQuery,
    access: Option<&Access>,
    now_ms: i64,
    uses: Uses,
) -> Result<(Vec<(Device, Figures)>, Vec<Office>, Option<Branch>), ReportError> {
    use rollup::Period;
    use rollup::plan::{self, Part};
    let parts = match uses {
        Uses::Report => plan::plan(q.from_ms, q.to_ms, now_ms),
        Uses::Outages => vec![Part::Raw(q.from_ms, q.to_ms)],
    };
    let key = rollup::schedule_key(&q.schedule);
    let row_parts: Vec<(Period, i64, i64)> = parts.iter().filter_map(|p| p.rows()).collect();
    let rolled = async {
        if row_parts.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        // Independent reads, side by side (SQLite readers run in parallel
        // under WAL, each on its own connection).
        let read = |&(period, a, b): &(Period, i64, i64)| {
            let key = period.key(&key);
            async move {
                let sums = store.rollup_sums(&key, a, b);
                tokio::try_join!(sums, store.rollup_ends(&key, a, b))
            }
        };
        let reads = futures::future::try_join_all(row_parts.iter().map(read));
        tokio::try_join!(reads, store.dirty_marks())
    };
    let (offices, all_devices, (rows, marks)) =
        tokio::try_join!(store.list_offices(), store.list_devices(), rolled)?;
    let (devices, branch) = select_devices(all_devices, &offices, access, q.branch.as_ref())?;
    let hours = q.schedule.office_hours(
        offices
            .iter()
            .filter_map(|o| Some((o.code.as_str(), o.hours.as_deref()?))),
    );
    // Per row part: each device's sums (when every row is there) and ends.
    type Rolled = (
        HashMap<i64, rollup::DeviceSums>,
        HashMap<i64, Vec<rollup::DayEnds>>,
    );
    let rolled: Vec<((Period, i64, i64), Rolled)> = row_parts
        .iter()
        .zip(rows)
        .map(|(&(period, a, b), (sums, all_ends))| {
            let n = period.count(a, b);
            let sums = sums
                .into_iter()
                .filter(|s| s.days == n)
                .map(|s| (s.device_id, s))
                .collect();
            let mut ends: HashMap<i64, Vec<rollup::DayEnds>> = HashMap::new();
            for e in all_ends {
                ends.entry(e.device_id).or_default().push(e);
            }
            ((period, a, b), (sums, ends))
        })
        .collect();
    let of = |p: Part| {
        let p = p.rows()?;
        rolled.iter().find(|(x, _)| *x == p).map(|(_, r)| r)
    };
    let marks: HashMap<i64, i64> = marks
        .into_iter()
        .map(|m| (m.device_id, m.from_ms))
        .collect();
    let mut per_device = Vec::with_capacity(devices.len());
    for d in devices {
        let sched = q.schedule.for_office(&hours, d.office.as_deref());
        let mark = marks.get(&d.id).copied();
        let mine = plan::for_device(&parts, |p| {
            mark.is_some_and(|m| m >= p.end())
                && of(p).is_some_and(|(sums, _)| sums.contains_key(&d.id))
        });
        if let [Part::Raw(..)] = mine.as_slice() {
            let recs = records_around(store, &d, q.from_ms, q.to_ms).await?;
            per_device.push((d, device_figures(&recs, q, sched, now_ms)));
            continue;
        }
        let mut total = rollup::DeviceSums::default();
        let mut pieces = Vec::new();
        let mut joined: Option<rollup::Seg> = None;
        for p in mine {
            let seg = match p {
                Part::Raw(a, b) => {
                    let (f, seg) = piece(store, &d, sched, a, b, now_ms).await?;
                    pieces.push(f);
                    seg
                }
                Part::Rows(period, a, b) => {
                    let (sums, ends) = of(p).expect("a current row part was read");
                    let s = &sums[&d.id];
                    total.add(s);
                    let ends = ends.get(&d.id).map_or(&[][..], Vec::as_slice);
                    rollup::rows_seg(period, s, ends, a, b)
                }
            };
            joined = Some(joined.map_or(seg, |j| j.join(seg)));
        }
        let f = rollup::figures_from(
            &total,
            &pieces.iter().collect::<Vec<_>>(),
            joined.unwrap_or_default(),
        );
        per_device.push((d, f));
    }
    Ok((per_device, offices, branch))
}

/// What the figures are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uses {
    /// A report: sums, counts, longest (roll-ups can serve it).
    Report,
    /// An outage list: every outage with its start and end.
    Outages,
}

/// Figures and outage runs of `[a, b)` of a device from its records.
async fn piece(
    store: &dyn Store,
    d: &Device,
    sched: &Schedule,
    a: i64,
    b: i64,
    now_ms: i64,
) -> Result<(Figures, rollup::Seg), ReportError> {
    let recs = records_around(store, d, a, b).await?;
    let tl = uptime::timeline(&recs, a - 60_000, b, now_ms, &Params::default());
    let f = uptime::figures(&tl, &recs, &sched.mask(a, b));
    let seg = rollup::Seg::of(&f, a, b, rollup::continues(&tl, sched, a));
    Ok((f, seg))
}

/// Records read before a window: everything from this long before it...
const LOOKBACK_MS: i64 = DAY_MS;
/// ...and before that, this many state-setting records.
const LOOKBACK_TRANSITIONS: i64 = 500;
/// Records read after a window (a folded heartbeat or summary after the
/// window can cover time inside it; a record after it says the agent ran).
const LOOKAHEAD_MS: i64 = DAY_MS;

/// The records of a device the engine needs for the window `[from, to)`:
/// every record placed from a day before the window to a day after it, and
/// the last state-setting records before that (`link_state`, `lifecycle`,
/// `failover`, `facts`: what the state at the window's start depends on).
/// The sequence numbers between those sparse early records are marked as
/// covered, so the engine does not take them for records still missing.
pub async fn records_around(
    store: &dyn Store,
    device: &Device,
    from: i64,
    to: i64,
) -> Result<Vec<Rec>, ReportError> {
    let start = from.saturating_sub(LOOKBACK_MS);
    let near = store
        .records_between(device.id, start, to.saturating_add(LOOKAHEAD_MS))
        .await?;
    let early = store
        .transitions_before(device.id, start, LOOKBACK_TRANSITIONS)
        .await?;
    let mut all: Vec<(bool, crate::collector::store::StoredRecord)> = early
        .into_iter()
        .map(|r| (true, r))
        .chain(near.into_iter().map(|r| (false, r)))
        .collect();
    all.sort_by_key(|(_, r)| r.seq);
    all.dedup_by_key(|(_, r)| r.seq);
    let mut out = Vec::with_capacity(all.len());
    for i in 0..all.len() {
        let next_seq = all.get(i + 1).map(|(_, r)| r.seq);
        let (sparse, r) = &all[i];
        let mut rec = to_rec(&device.name, r.clone())?;
        if *sparse && let Some(n) = next_seq {
            rec.seq_end = rec.seq_end.max(u64::try_from(n - 1).unwrap_or(0));
        }
        out.push(rec);
    }
    Ok(out)
}
