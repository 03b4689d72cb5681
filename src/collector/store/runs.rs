//! Heartbeats stored as runs (issue 18): the agent sends one `heartbeat` a
//! minute, a quarter of all records; once `acked` covers them they move from
//! `records` into `heartbeat_runs`, one row per run of heartbeats of one
//! boot with the same `online` whose sequence numbers, placed times and
//! monotonic times each advance by a constant step. Reads expand the runs
//! back into the records they stand for, merged with `records` in sequence
//! order, so every reader sees the same records as before.
//!
//! Only heartbeats that `acked` covers move, so idempotence, the
//! acknowledgement and late data stay as they are: a record at or below
//! `acked` is never inserted again (see the store's module documentation),
//! and records beyond it stay in `records` until the gap before them is
//! filled. Only plain heartbeats move (`count` 1, not folded: their body is
//! one of two strings); folded ones stay rows. What is lost: a heartbeat in
//! a run reads back with the receipt time of the upload that last extended
//! its run (at or after its own), not its own.

use super::dialect::Dialect;
use crate::collector::model::StoredRecord;
use sqlx::{Database, Pool};

/// The stored body of a plain heartbeat (`count` 1), by `online`.
pub(crate) fn body(online: bool) -> &'static str {
    if online {
        r#"{"type":"heartbeat","online":true,"count":1}"#
    } else {
        r#"{"type":"heartbeat","online":false,"count":1}"#
    }
}

/// A plain heartbeat, as it moves out of `records`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Beat {
    pub seq: i64,
    pub at_ms: i64,
    pub mono_ms: i64,
    pub boot_id: String,
    pub online: bool,
    pub received_ms: i64,
}

/// A run: member `k` (0..n) has sequence number `first_seq + k * seq_step`,
/// placed time `first_at_ms + k * at_step_ms`, monotonic time
/// `first_mono_ms + k * mono_step_ms`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub first_seq: i64,
    pub n: i64,
    pub seq_step: i64,
    pub first_at_ms: i64,
    pub at_step_ms: i64,
    pub first_mono_ms: i64,
    pub mono_step_ms: i64,
    pub boot_id: String,
    pub online: bool,
    pub received_ms: i64,
}

impl Run {
    pub fn start(b: &Beat) -> Run {
        Run {
            first_seq: b.seq,
            n: 1,
            seq_step: 0,
            first_at_ms: b.at_ms,
            at_step_ms: 0,
            first_mono_ms: b.mono_ms,
            mono_step_ms: 0,
            boot_id: b.boot_id.clone(),
            online: b.online,
            received_ms: b.received_ms,
        }
    }

    fn member(&self, k: i64) -> (i64, i64, i64) {
        (
            self.first_seq + k * self.seq_step,
            self.first_at_ms + k * self.at_step_ms,
            self.first_mono_ms + k * self.mono_step_ms,
        )
    }

    pub fn last_seq(&self) -> i64 {
        self.member(self.n - 1).0
    }

    pub fn last_at_ms(&self) -> i64 {
        self.member(self.n - 1).1
    }

    /// Take `b` as the next member if it follows the run's steps (the
    /// second member sets them); false otherwise.
    pub fn extend(&mut self, b: &Beat) -> bool {
        if b.boot_id != self.boot_id || b.online != self.online {
            return false;
        }
        let (seq, at, mono) = self.member(self.n - 1);
        let steps = (b.seq - seq, b.at_ms - at, b.mono_ms - mono);
        if steps.0 <= 0 || steps.1 < 0 || steps.2 < 0 {
            return false;
        }
        if self.n == 1 {
            (self.seq_step, self.at_step_ms, self.mono_step_ms) = steps;
        } else if steps != (self.seq_step, self.at_step_ms, self.mono_step_ms) {
            return false;
        }
        self.n += 1;
        self.received_ms = self.received_ms.max(b.received_ms);
        true
    }

    /// The member records with sequence numbers in `from_seq..=to_seq`, in order.
    pub fn records(&self, from_seq: i64, to_seq: i64) -> impl Iterator<Item = StoredRecord> + '_ {
        (0..self.n)
            .map(|k| self.member(k))
            .filter(move |&(seq, _, _)| seq >= from_seq && seq <= to_seq)
            .map(|(seq, at_ms, mono_ms)| StoredRecord {
                seq,
                seq_end: seq,
                at_ms,
                mono_ms,
                boot_id: self.boot_id.clone(),
                kind: "heartbeat".into(),
                body: body(self.online).into(),
                received_ms: self.received_ms,
            })
    }
}

/// Fold `beats` (in sequence order, all after `last`'s members) onto the
/// device's last run: the last run as extended (if it was) and the new runs.
pub(crate) fn fold(last: Option<Run>, beats: &[Beat]) -> (Option<Run>, Vec<Run>) {
    let mut extended = None;
    let mut current = last;
    let mut new: Vec<Run> = Vec::new();
    for b in beats {
        let took = match (new.last_mut(), current.as_mut()) {
            (Some(r), _) => r.extend(b),
            (None, Some(r)) => {
                let took = r.extend(b);
                if took {
                    extended = Some(());
                }
                took
            }
            (None, None) => false,
        };
        if !took {
            new.push(Run::start(b));
        }
    }
    (extended.and(current), new)
}

/// Columns of a run row, in [`Run`] field order.
pub(crate) type RunRow = (i64, i64, i64, i64, i64, i64, i64, String, i64, i64);

const RUN_COLS: &str = "first_seq, n, seq_step, first_at_ms, at_step_ms, first_mono_ms, \
                        mono_step_ms, boot_id, online, received_ms";

fn run(r: RunRow) -> Run {
    Run {
        first_seq: r.0,
        n: r.1,
        seq_step: r.2,
        first_at_ms: r.3,
        at_step_ms: r.4,
        first_mono_ms: r.5,
        mono_step_ms: r.6,
        boot_id: r.7,
        online: r.8 != 0,
        received_ms: r.9,
    }
}

/// The plain heartbeats of a device in `records` with `from_seq < seq <= to_seq`.
const BEATS_WHERE: &str = "device_id = ? AND seq > ? AND seq <= ? AND kind = 'heartbeat' \
                           AND seq_end = seq AND body IN (?, ?)";

/// Move the plain heartbeats of `device_id` with sequence numbers in
/// `(from_seq, to_seq]` (what `acked` just came to cover) from `records`
/// into runs, inside the ingest transaction on `conn`.
pub(super) async fn compact<DB>(
    conn: &mut DB::Connection,
    dialect: &Dialect,
    device_id: i64,
    from_seq: i64,
    to_seq: i64,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    for<'s> &'s str: sqlx::Encode<'s, DB> + sqlx::Type<DB>,
    (i64, i64, i64, String, String, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
    RunRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    if to_seq <= from_seq {
        return Ok(());
    }
    let sql = format!(
        "SELECT seq, at_ms, mono_ms, boot_id, body, received_ms FROM records \
         WHERE {BEATS_WHERE} ORDER BY seq"
    );
    let rows: Vec<(i64, i64, i64, String, String, i64)> = sqlx::query_as(dialect.sql(sql))
        .bind(device_id)
        .bind(from_seq)
        .bind(to_seq)
        .bind(body(true))
        .bind(body(false))
        .fetch_all(&mut *conn)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let beats: Vec<Beat> = rows
        .into_iter()
        .map(|(seq, at_ms, mono_ms, boot_id, b, received_ms)| Beat {
            seq,
            at_ms,
            mono_ms,
            boot_id,
            online: b == body(true),
            received_ms,
        })
        .collect();
    let sql = format!(
        "SELECT {RUN_COLS} FROM heartbeat_runs WHERE device_id = ? \
         ORDER BY first_seq DESC LIMIT 1"
    );
    let last: Option<Run> = sqlx::query_as::<DB, RunRow>(dialect.sql(sql))
        .bind(device_id)
        .fetch_optional(&mut *conn)
        .await?
        .map(run);
    let (extended, new) = fold(last, &beats);
    if let Some(r) = extended {
        let sql = "UPDATE heartbeat_runs SET n = ?, seq_step = ?, at_step_ms = ?, \
                   mono_step_ms = ?, last_seq = ?, last_at_ms = ?, received_ms = ? \
                   WHERE device_id = ? AND first_seq = ?";
        sqlx::query::<DB>(dialect.sql(sql))
            .bind(r.n)
            .bind(r.seq_step)
            .bind(r.at_step_ms)
            .bind(r.mono_step_ms)
            .bind(r.last_seq())
            .bind(r.last_at_ms())
            .bind(r.received_ms)
            .bind(device_id)
            .bind(r.first_seq)
            .execute(&mut *conn)
            .await?;
    }
    for r in &new {
        let sql = format!(
            "INSERT INTO heartbeat_runs (device_id, {RUN_COLS}, last_seq, last_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query::<DB>(dialect.sql(sql))
            .bind(device_id)
            .bind(r.first_seq)
            .bind(r.n)
            .bind(r.seq_step)
            .bind(r.first_at_ms)
            .bind(r.at_step_ms)
            .bind(r.first_mono_ms)
            .bind(r.mono_step_ms)
            .bind(r.boot_id.as_str())
            .bind(i64::from(r.online))
            .bind(r.received_ms)
            .bind(r.last_seq())
            .bind(r.last_at_ms())
            .execute(&mut *conn)
            .await?;
    }
    let sql = format!("DELETE FROM records WHERE {BEATS_WHERE}");
    sqlx::query::<DB>(dialect.sql(sql))
        .bind(device_id)
        .bind(from_seq)
        .bind(to_seq)
        .bind(body(true))
        .bind(body(false))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Merge `rows` (records in sequence order) with the members of `runs`
/// (in sequence order, disjoint) in `from_seq..=to_seq`, at most `limit`.
fn merge(
    rows: Vec<StoredRecord>,
    runs: &[Run],
    from_seq: i64,
    to_seq: i64,
    keep: impl Fn(&StoredRecord) -> bool,
    limit: usize,
) -> Vec<StoredRecord> {
    let mut beats: Vec<StoredRecord> = Vec::new();
    for r in runs {
        beats.extend(r.records(from_seq, to_seq).filter(&keep).take(limit));
        if beats.len() >= limit {
            break;
        }
    }
    if beats.is_empty() {
        return rows;
    }
    let mut out: Vec<StoredRecord> = rows.into_iter().chain(beats).collect();
    out.sort_by_key(|r| r.seq);
    out.truncate(limit);
    out
}

/// [`super::Store::records`]: `rows` are the first `limit` records with
/// `seq >= from_seq` in `records`; the runs' members merged in.
pub(super) async fn records_with_runs<DB>(
    pool: &Pool<DB>,
    dialect: &Dialect,
    device_id: i64,
    from_seq: i64,
    limit: i64,
    rows: Vec<StoredRecord>,
) -> Result<Vec<StoredRecord>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    RunRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    // Nothing of the runs beyond the last row read when the page is full.
    let to_seq = match rows.last() {
        Some(r) if rows.len() as i64 >= limit => r.seq,
        _ => i64::MAX,
    };
    let sql = format!(
        "SELECT {RUN_COLS} FROM heartbeat_runs WHERE device_id = ? AND last_seq >= ? \
         AND first_seq <= ? ORDER BY first_seq LIMIT ?"
    );
    let runs: Vec<Run> = sqlx::query_as::<DB, RunRow>(dialect.sql(sql))
        .bind(device_id)
        .bind(from_seq)
        .bind(to_seq)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(run)
        .collect();
    let limit = usize::try_from(limit).unwrap_or(0);
    Ok(merge(rows, &runs, from_seq, to_seq, |_| true, limit))
}

/// [`super::Store::records_between`]: `rows` are the records placed in
/// `[from_ms, to_ms)` in `records`; the runs' members merged in.
pub(super) async fn between_with_runs<DB>(
    pool: &Pool<DB>,
    dialect: &Dialect,
    device_id: i64,
    from_ms: i64,
    to_ms: i64,
    rows: Vec<StoredRecord>,
) -> Result<Vec<StoredRecord>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    RunRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let sql = format!(
        "SELECT {RUN_COLS} FROM heartbeat_runs WHERE device_id = ? AND last_at_ms >= ? \
         AND first_at_ms < ? ORDER BY first_seq"
    );
    let runs: Vec<Run> = sqlx::query_as::<DB, RunRow>(dialect.sql(sql))
        .bind(device_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(run)
        .collect();
    let placed = |r: &StoredRecord| r.at_ms >= from_ms && r.at_ms < to_ms;
    Ok(merge(rows, &runs, i64::MIN, i64::MAX, placed, usize::MAX))
}

#[cfg(test)]
mod tests;
