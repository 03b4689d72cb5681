//! Keeps the roll-ups current: the thin I/O side of
//! [`crate::collector::rollup`]. Ingest marks a device dirty from the
//! earliest time a batch can change ([`crate::collector::rollup::reach_back_ms`]);
//! every `rollup_interval` the maintainer computes, for every rolled-up
//! schedule and from each dirty mark on, the settled days (local days that
//! ended at least [`SETTLE_MS`] ago) with their hours and day timelines, and
//! the settled hours of the day under way (hours that ended at least
//! [`SETTLE_MS`] ago); it stores them and moves the mark past them unless
//! more data arrived meanwhile (then the device is simply computed again on
//! the next round). A device that keeps uploading is so computed once an
//! hour, from its mark's hour on. It also deletes hour rows older than the
//! retention, and (a job of its own) seals minute packs whose span is over
//! and deletes raw minute summaries older than the retention.
//!
//! Both are periodic jobs of [`crate::collector::lead`]: with several
//! collectors on one PostgreSQL, each runs on one replica at a time.
//!
//! The `office` schedule is rolled up with each device's office hours (as
//! they are when the day is computed; a changed `hours` makes the office's
//! devices due again, see `Store::upsert_offices`).
//!
//! A device's days are computed from its records around them
//! ([`crate::collector::report::records_around`]): everything from a day
//! before, and the state-setting records before that.

use crate::collector::lead::{Job, JobMetrics, Leadership, Round, run_job};
use crate::collector::report::{self, ReportError};
use crate::collector::rollup::{self, DayRow, Period};
use crate::collector::store::{Device, Store};
use crate::collector::uptime::{self, Params};
pub use crate::config::collector::RollupSettings;
use crate::shared::schedule::{OfficeHours, Schedule};
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::collector::rollup::SETTLE_MS;
/// Devices computed per round (the rest wait for the next).
const DEVICES_PER_ROUND: i64 = 2_000;
/// Days computed per device and step (bounds the records held at once).
const DAYS_PER_STEP: usize = 7;
/// Raw summaries deleted per statement.
const DELETE_CHUNK: i64 = 20_000;
/// Minute packs sealed per transaction.
const SEAL_CHUNK: i64 = 500;

/// Work just done, as [`rollups_counted`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    /// Days of one device, each with its hours and day timeline.
    Days(u64),
    /// Hours of the day under way of one device.
    Hours(u64),
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundStats {
    pub devices: u64,
    pub days: u64,
    /// Hours of days under way computed (a whole day's hours count in `days`).
    pub hours: u64,
    /// Devices whose mark moved on meanwhile (computed again next round).
    pub raced: u64,
    pub minutes_deleted: u64,
}

const DAY_MS: i64 = 86_400_000;

/// The start of the oldest day ever (re)computed: the raw retention (or
/// [`report::MAX_RANGE_DAYS`] when raw data is kept for ever) before `now_ms`.
fn oldest_day(s: &RollupSettings, tz: &jiff::tz::TimeZone, now_ms: i64) -> i64 {
    let back_days = s
        .raw_retention_days
        .unwrap_or(report::MAX_RANGE_DAYS)
        .max(1);
    rollup::day_start(tz, now_ms - back_days * DAY_MS)
}

/// When the collector starts: a schedule with no day rows yet (newly
/// configured, or its holiday list changed) while others have some makes
/// every device's days from the oldest kept day on due again. Returns how
/// many devices were marked.
pub async fn start(
    store: &Arc<dyn Store>,
    s: &RollupSettings,
    now_ms: i64,
) -> Result<u64, ReportError> {
    let tz = rollup::day_tz();
    let mut missing = false;
    for sched in &s.schedules {
        let key = rollup::schedule_key(sched);
        for period in [Period::Day, Period::Hour] {
            missing |= !store.has_rollups(&period.key(&key)).await?;
        }
    }
    if !missing {
        return Ok(0);
    }
    let n = store.mark_all_dirty(oldest_day(s, &tz, now_ms)).await?;
    if n > 0 {
        tracing::info!(
            devices = n,
            "a rolled-up schedule has no day or hour rows yet: computing every device's days again"
        );
    }
    Ok(n)
}

/// One round of both jobs at `now_ms`: [`rollups_once`], then
/// [`retention_once`].
pub async fn run_once(
    store: &Arc<dyn Store>,
    s: &RollupSettings,
    now_ms: i64,
) -> Result<RoundStats, ReportError> {
    let mut stats = rollups_once(store, s, now_ms).await?;
    stats.minutes_deleted = retention_once(store, s, now_ms).await?;
    Ok(stats)
}

/// One round of the roll-ups job at `now_ms`: the due devices' days and
/// settled hours (and their hour rows past the retention).
pub async fn rollups_once(
    store: &Arc<dyn Store>,
    s: &RollupSettings,
    now_ms: i64,
) -> Result<RoundStats, ReportError> {
    rollups_counted(store, s, now_ms, &|_| {}).await
}

/// [`rollups_once`], telling `computed` how many days (with their hours) or
/// hours of the day under way were just computed, as they are.
pub async fn rollups_counted(
    store: &Arc<dyn Store>,
    s: &RollupSettings,
    now_ms: i64,
    computed: &(dyn Fn(Computed) + Sync),
) -> Result<RoundStats, ReportError> {
    let tz = rollup::day_tz();
    let mut stats = RoundStats::default();
    let settled_h = rollup::hours_settled_before(now_ms);
    let settled = rollup::settled_before(now_ms);
    let oldest = oldest_day(s, &tz, now_ms);
    // Hour rows starting before this are deleted (`hour_retention_days`).
    let hour_cut = s
        .hour_retention_days
        .map(|d| rollup::day_start(&tz, now_ms - d * DAY_MS));
    let due = store.dirty_due(settled_h, DEVICES_PER_ROUND).await?;
    if !due.is_empty() {
        let devices: HashMap<i64, Device> = store
            .list_devices()
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let offices = store.list_offices().await?;
        let office_hours = offices
            .iter()
            .filter_map(|o| Some((o.code.as_str(), o.hours.as_deref()?)));
        // Per schedule: its key, and its office hours (`office`: each office's own).
        let keys: Vec<(String, Schedule, OfficeHours)> = s
            .schedules
            .iter()
            .map(|x| {
                let hours = x.office_hours(office_hours.clone());
                (rollup::schedule_key(x), x.clone(), hours)
            })
            .collect();
        for mark in due {
            let Some(dev) = devices.get(&mark.device_id) else {
                continue;
            };
            // The device's schedules, as its office has them.
            let own: Arc<Vec<(String, Schedule)>> = Arc::new(
                keys.iter()
                    .map(|(key, x, hours)| {
                        (
                            key.clone(),
                            x.for_office(hours, dev.office.as_deref()).clone(),
                        )
                    })
                    .collect(),
            );
            let first = rollup::day_start(&tz, mark.from_ms)
                .max(oldest)
                .max(rollup::day_start(&tz, dev.created_at_ms) - DAY_MS);
            let days = rollup::days_between(&tz, first, settled);
            stats.devices += 1;
            let mut raced = false;
            for step in days.chunks(DAYS_PER_STEP) {
                let a = step[0];
                let b = rollup::next_day(&tz, step[step.len() - 1]);
                let recs = report::records_around(store.as_ref(), dev, a, b).await?;
                let (rows, tls) = {
                    let (own, tz, step, id) = (own.clone(), tz.clone(), step.to_vec(), dev.id);
                    blocking(move || compute(&own, &tz, id, &recs, &step, b, now_ms)).await?
                };
                stats.days += step.len() as u64;
                computed(Computed::Days(step.len() as u64));
                if !store
                    .put_rollups(dev.id, &rows, &tls, mark.version, b)
                    .await?
                {
                    raced = true;
                    break;
                }
            }
            if raced {
                stats.raced += 1;
                continue;
            }
            // Hour rows past their own retention (longer than the raw data's).
            if let Some(cut) = hour_cut.filter(|_| !days.is_empty()) {
                for (key, _) in own.iter() {
                    store
                        .delete_rollups_before(dev.id, &Period::Hour.key(key), cut)
                        .await?;
                }
            }
            // The settled hours of the day under way.
            let a = rollup::hour_start(mark.from_ms).max(first).max(settled);
            let rows = if a < settled_h {
                let recs = report::records_around(store.as_ref(), dev, a, settled_h).await?;
                let hours = Period::Hour.count(a, settled_h) as u64;
                stats.hours += hours;
                let (own, id) = (own.clone(), dev.id);
                let rows =
                    blocking(move || compute_hours(&own, id, &recs, a, settled_h, now_ms)).await?;
                computed(Computed::Hours(hours));
                rows
            } else {
                Vec::new()
            };
            if !store
                .put_rollups(dev.id, &rows, &[], mark.version, settled_h)
                .await?
            {
                stats.raced += 1;
            }
        }
    }
    Ok(stats)
}

/// One round of the retention job at `now_ms`: packs sealed
/// ([`seal_once`]), then raw minute summaries older than the retention deleted, a chunk at a time with a rest as long as the
/// chunk between two (a day of 100,000 devices takes minutes, and ingest
/// meanwhile keeps its latency: `cargo bench --bench expiry`); how many.
pub async fn retention_once(
    store: &Arc<dyn Store>,
    s: &RollupSettings,
    now_ms: i64,
) -> Result<u64, ReportError> {
    let sealed = seal_once(store, now_ms).await?;
    if sealed > 0 {
        tracing::debug!(packs = sealed, "minute packs of spans that are over sealed");
    }
    let Some(days) = s.raw_retention_days else {
        return Ok(0);
    };
    let cutoff = now_ms - days * DAY_MS;
    in_chunks(DELETE_CHUNK, || {
        store.delete_minutes_before(cutoff, DELETE_CHUNK)
    })
    .await
}

/// Run `step` (one chunk of at most `chunk`, how many it did) until it does
/// less than a chunk, resting as long as each chunk took before the next:
/// however much is due, ingest has the write lock (and the disk) at least
/// half the time. How many in all.
async fn in_chunks<F, Fut>(chunk: i64, mut step: F) -> Result<u64, ReportError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, crate::collector::store::StoreError>>,
{
    let mut done = 0;
    loop {
        let began = std::time::Instant::now();
        let n = step().await?;
        done += n;
        if n < chunk as u64 {
            return Ok(done);
        }
        tokio::time::sleep(began.elapsed()).await;
    }
}

/// Seal the minute packs ingest extended segment by segment whose span is
/// over at `now_ms` (each rewritten as one segment, as compact as a pack
/// written at once), a chunk at a time with a rest as long as the chunk
/// between two; how many.
pub async fn seal_once(store: &Arc<dyn Store>, now_ms: i64) -> Result<u64, ReportError> {
    in_chunks(SEAL_CHUNK, || store.seal_packs(now_ms, SEAL_CHUNK)).await
}

/// Run pure roll-up work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ReportError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ReportError::Internal(format!("roll-up task: {e}")))
}

/// What one device's rows are computed from.
struct Source<'a> {
    keys: &'a [(String, Schedule)],
    device_id: i64,
    tl: &'a uptime::Timeline,
    recs: &'a [uptime::Rec],
    now_ms: i64,
}

impl Source<'_> {
    /// The rows of the periods in `[a, b)`: one per period and schedule.
    fn rows(&self, period: Period, a: i64, b: i64, out: &mut Vec<DayRow>) {
        let mut t = a;
        while t < b {
            let end = period.next(t);
            for (key, sched) in self.keys {
                out.push(rollup::day_row(
                    &period.key(key),
                    sched,
                    self.device_id,
                    self.tl,
                    self.recs,
                    t,
                    end,
                    self.now_ms,
                ));
            }
            t = end;
        }
    }
}

/// `f` on the source of one device's rows over `[a, b)`: its timeline
/// from a minute before `a` (whether the first outage continues one).
fn with_source<T>(
    keys: &[(String, Schedule)],
    device_id: i64,
    recs: &[uptime::Rec],
    (a, b): (i64, i64),
    now_ms: i64,
    f: impl FnOnce(&Source) -> T,
) -> T {
    let tl = uptime::timeline(recs, a - 60_000, b, now_ms, &Params::default());
    f(&Source {
        keys,
        device_id,
        tl: &tl,
        recs,
        now_ms,
    })
}

/// The rows (days and their hours) and day timelines of `days` (ending at
/// `end`) of one device.
fn compute(
    keys: &[(String, Schedule)],
    tz: &jiff::tz::TimeZone,
    device_id: i64,
    recs: &[uptime::Rec],
    days: &[i64],
    end: i64,
    now_ms: i64,
) -> (Vec<DayRow>, Vec<(i64, String)>) {
    with_source(keys, device_id, recs, (days[0], end), now_ms, |src| {
        let mut rows = Vec::with_capacity(days.len() * keys.len() * 25);
        let mut tls = Vec::with_capacity(days.len());
        for &day in days {
            let day_end = rollup::next_day(tz, day);
            src.rows(Period::Day, day, day_end, &mut rows);
            src.rows(Period::Hour, day, day_end, &mut rows);
            let t = rollup::day_timeline(src.tl, day, day_end);
            tls.push((day, serde_json::to_string(&t).unwrap_or_default()));
        }
        (rows, tls)
    })
}

/// The hour rows of `[a, b)` (whole hours) of one device.
fn compute_hours(
    keys: &[(String, Schedule)],
    device_id: i64,
    recs: &[uptime::Rec],
    a: i64,
    b: i64,
    now_ms: i64,
) -> Vec<DayRow> {
    with_source(keys, device_id, recs, (a, b), now_ms, |src| {
        let mut rows = Vec::new();
        src.rows(Period::Hour, a, b, &mut rows);
        rows
    })
}

/// Run the roll-ups and the retention jobs every `interval` until dropped,
/// each only while `lead` says this replica holds it (see
/// [`crate::collector::lead`]); errors are logged and the next round tries
/// again. A replica that takes the roll-ups first checks the rolled-up
/// schedules ([`start`]).
pub async fn run(
    store: Arc<dyn Store>,
    s: RollupSettings,
    lead: Arc<dyn Leadership>,
    metrics: JobMetrics,
) {
    let rollups = {
        let (store, s, m) = (store.clone(), s.clone(), metrics.clone());
        run_job(
            lead.clone(),
            Job::Rollups,
            s.interval,
            metrics.clone(),
            move |round: Round| {
                let (store, s, m) = (store.clone(), s.clone(), m.clone());
                async move { rollup_round(&store, &s, &m, round).await }
            },
        )
    };
    let retention = {
        let (store, s, m) = (store.clone(), s.clone(), metrics.clone());
        run_job(lead, Job::Retention, s.interval, metrics, move |_| {
            let (store, s, m) = (store.clone(), s.clone(), m.clone());
            async move {
                let now = jiff::Timestamp::now().as_millisecond();
                match retention_once(&store, &s, now).await {
                    Ok(0) => {}
                    Ok(n) => {
                        m.minutes_deleted.inc_by(n);
                        tracing::info!(
                            minutes_deleted = n,
                            "retention: old minute summaries deleted"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "retention round failed; trying again next round")
                    }
                }
            }
        })
    };
    tokio::join!(rollups, retention);
}

async fn rollup_round(store: &Arc<dyn Store>, s: &RollupSettings, m: &JobMetrics, round: Round) {
    if round.first {
        let now = jiff::Timestamp::now().as_millisecond();
        if let Err(e) = start(store, s, now).await {
            tracing::warn!(error = %e, "cannot check the rolled-up schedules");
        }
    }
    let now = jiff::Timestamp::now().as_millisecond();
    let started = std::time::Instant::now();
    let count = |c: Computed| match c {
        Computed::Days(n) => {
            m.rollup_days.inc_by(n);
        }
        Computed::Hours(n) => {
            m.rollup_hours.inc_by(n);
        }
    };
    match rollups_counted(store, s, now, &count).await {
        Ok(st) => {
            if st.devices > 0 {
                tracing::info!(
                    devices = st.devices,
                    days = st.days,
                    hours = st.hours,
                    raced = st.raced,
                    took_ms = started.elapsed().as_millis() as u64,
                    "roll-ups updated"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "roll-up round failed; trying again next round"),
    }
}
