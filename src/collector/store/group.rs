//! Group commit, shared by both adapters: request tasks flatten their batch
//! into [`Row`]s and queue it as a [`Job`]; a writer task takes what has
//! queued ([`next_group`]) and writes it in one transaction. The batches of
//! devices that appear once in a group are written together, with a handful
//! of statements for the whole group; this module holds the pure part of
//! that: which batches qualify ([`distinct`]) and each batch's answer and roll-up mark
//! ([`Writes`]). The parts both dialects share run here too, generic over
//! the sqlx database: a group's savepoints ([`write_in`]) and the scan that
//! advances `acked` ([`advance`], in the adapter's dialect).

use super::dialect::Dialect;
use super::packs;
use super::{Ack, Record, StoreError, UploadMeta, advance_contiguous};
use crate::collector::rollup::{self, MarkMove};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// Most batches written in one group commit.
pub(super) const GROUP_MAX_BATCHES: usize = 256;
/// Most records written in one group commit (a batch is never split).
pub(super) const GROUP_MAX_RECORDS: usize = 20_000;
/// Batches waiting for the writer before callers wait to queue.
pub(super) const QUEUE: usize = 4_096;

/// One record, flattened for an `INSERT`.
pub(super) struct Row {
    pub seq: i64,
    pub seq_end: i64,
    pub at_ms: i64,
    pub mono_ms: i64,
    pub boot_id: String,
    pub kind: &'static str,
    pub body: String,
    /// How far back the record can change the device's timeline.
    pub reach_ms: i64,
    /// What packs keep of it, when they can hold it (see [`packs::packable`]).
    pub pack: Option<(&'static str, String, String, packs::Data)>,
}

fn int(v: u64, what: &str) -> Result<i64, sqlx::Error> {
    i64::try_from(v).map_err(|_| sqlx::Error::Encode(format!("{what} {v} out of range").into()))
}

/// Flatten a batch (bodies serialised to JSON).
pub(super) fn rows(records: &[Record]) -> Result<Vec<Row>, sqlx::Error> {
    records
        .iter()
        .map(|r| {
            let seq = int(r.seq, "seq")?;
            let folded = r.seq_end.is_some_and(|e| e != r.seq);
            Ok(Row {
                seq,
                seq_end: match r.seq_end {
                    Some(e) => int(e, "seq_end")?,
                    None => seq,
                },
                at_ms: r.at,
                mono_ms: int(r.mono_ms, "mono_ms")?,
                boot_id: r.boot_id.clone(),
                kind: r.body.kind(),
                body: serde_json::to_string(&r.body)
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
                reach_ms: rollup::record_reach(r),
                pack: packs::packable(&r.body, folded),
            })
        })
        .collect()
}

/// One batch waiting for a writer.
pub(super) struct Job {
    pub device_id: i64,
    pub rows: Vec<Row>,
    /// What the upload said about itself (next deadline, backlog).
    pub meta: UploadMeta,
    pub now_ms: i64,
    /// The token hash the upload was authenticated with, when it was: the
    /// writer stores the batch only if the device still has that token and
    /// is not revoked, in the same transaction ([`still_valid`]).
    pub token_hash: Option<String>,
    pub reply: oneshot::Sender<Result<Ack, StoreError>>,
}

impl Job {
    /// The records `acked` does not already cover (stored, or stored and
    /// removed by retention: never inserted again).
    pub fn fresh(&self, acked: i64) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.seq_end > acked)
    }

    /// The batch's newest record: its last sequence number and placed time
    /// (records come in sequence order).
    pub fn newest(&self) -> (Option<i64>, Option<i64>) {
        match self.rows.last() {
            Some(r) => (Some(r.seq_end), Some(r.at_ms)),
            None => (None, None),
        }
    }
}

/// Queue a batch and wait for the writer's answer (after its commit).
pub(super) async fn submit(
    jobs: &mpsc::Sender<Job>,
    device_id: i64,
    token_hash: Option<&str>,
    records: &[Record],
    meta: UploadMeta,
    now_ms: i64,
) -> Result<Ack, StoreError> {
    let err = |source| StoreError::Query {
        op: "ingest",
        source,
    };
    // Flattened here, in the caller's task, so the writer only writes.
    let rows = rows(records).map_err(err)?;
    let (reply, answer) = oneshot::channel();
    jobs.send(Job {
        device_id,
        rows,
        meta,
        now_ms,
        token_hash: token_hash.map(str::to_string),
        reply,
    })
    .await
    .map_err(|_| err(sqlx::Error::PoolClosed))?;
    answer.await.map_err(|_| err(sqlx::Error::PoolClosed))?
}

/// Wait for a batch, then take whatever else has queued, up to the group
/// limits. `false` when the queue is closed (the store was dropped).
pub(super) async fn next_group(queue: &mut mpsc::Receiver<Job>, group: &mut Vec<Job>) -> bool {
    let Some(first) = queue.recv().await else {
        return false;
    };
    let mut records = first.rows.len();
    group.push(first);
    while group.len() < GROUP_MAX_BATCHES && records < GROUP_MAX_RECORDS {
        match queue.try_recv() {
            Ok(job) => {
                records += job.rows.len();
                group.push(job);
            }
            Err(_) => break,
        }
    }
    true
}

/// Answer every caller of a written group: each batch's own result, or the
/// transaction's failure (operation, message) for all.
pub(super) fn answer(
    group: &mut Vec<Job>,
    results: Result<Vec<Result<Ack, StoreError>>, (&'static str, String)>,
) {
    // A caller that went away (request cancelled) is fine: its records are
    // stored and the agent learns so next time.
    match results {
        Ok(results) => {
            for (job, result) in group.drain(..).zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err((op, message)) => {
            for job in group.drain(..) {
                let source = sqlx::Error::Protocol(message.clone());
                let _ = job.reply.send(Err(StoreError::Query { op, source }));
            }
        }
    }
}

/// Which of a group's batches may be written: those sent without a token
/// (the store's own callers) and those whose device, read inside the write
/// transaction as `rows` (id, token hash, revoked), still has the token
/// the upload was authenticated with and is not revoked.
pub(super) fn still_valid(group: &[Job], rows: Vec<(i64, String, bool)>) -> Vec<bool> {
    let devices: HashMap<i64, (String, bool)> = rows
        .into_iter()
        .map(|(id, hash, revoked)| (id, (hash, revoked)))
        .collect();
    group
        .iter()
        .map(|j| match &j.token_hash {
            None => true,
            Some(t) => devices
                .get(&j.device_id)
                .is_some_and(|(hash, revoked)| hash == t && !revoked),
        })
        .collect()
}

/// The devices of a group's authenticated batches, to read for
/// [`still_valid`] (sorted, once each; empty when no batch carries a token).
pub(super) fn token_devices(group: &[Job]) -> Vec<i64> {
    let mut ids: Vec<i64> = group
        .iter()
        .filter(|j| j.token_hash.is_some())
        .map(|j| j.device_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Write a group inside the open transaction on `conn` (the caller begins
/// and commits it). The batches of devices that appear once in the group go
/// first, together, with `write` (the adapter's multi-batch writer) inside
/// one savepoint; when that fails, and for a device's further batches, each
/// batch is written alone inside a savepoint of its own, so that a failing
/// batch is rolled back alone. Both in device order. `Err` (operation,
/// message) when a savepoint statement failed: then the transaction as a
/// whole is lost.
pub(super) async fn write_in<DB, W>(
    conn: &mut DB::Connection,
    group: &[Job],
    valid: &[bool],
    write: W,
) -> Result<Vec<Result<Ack, StoreError>>, (&'static str, String)>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    W: AsyncFn(&mut DB::Connection, &[&Job]) -> Result<Vec<Ack>, sqlx::Error>,
{
    // Batches whose token was revoked or replaced since the upload was
    // authenticated are answered so, and nothing of them is written.
    let mut results: Vec<Option<Result<Ack, StoreError>>> = valid
        .iter()
        .map(|&ok| (!ok).then_some(Err(StoreError::TokenWithdrawn)))
        .collect();
    let mut together: Vec<usize> = distinct(group).into_iter().filter(|&i| valid[i]).collect();
    together.sort_by_key(|&i| group[i].device_id);
    let jobs: Vec<&Job> = together.iter().map(|&i| &group[i]).collect();
    if let Ok(acks) = in_savepoint::<DB, W>(conn, &jobs, &write).await? {
        for (&i, ack) in together.iter().zip(acks) {
            results[i] = Some(Ok(ack));
        }
    } else if jobs.len() > 1 {
        tracing::warn!(
            batches = jobs.len(),
            "ingest: writing a group together failed; writing its batches one by one"
        );
    }
    let mut alone: Vec<usize> = (0..group.len()).filter(|&i| results[i].is_none()).collect();
    alone.sort_by_key(|&i| group[i].device_id);
    for i in alone {
        let outcome = in_savepoint::<DB, W>(conn, &[&group[i]], &write).await?;
        results[i] =
            Some(
                outcome
                    .map(|mut acks| acks.remove(0))
                    .map_err(|source| StoreError::Query {
                        op: "ingest",
                        source,
                    }),
            );
    }
    Ok(results.into_iter().flatten().collect())
}

/// `write` inside a savepoint, rolled back when it fails. The outer `Err`
/// (operation, message) is a failure of the savepoint statements themselves.
async fn in_savepoint<DB, W>(
    conn: &mut DB::Connection,
    jobs: &[&Job],
    write: &W,
) -> Result<Result<Vec<Ack>, sqlx::Error>, (&'static str, String)>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    W: AsyncFn(&mut DB::Connection, &[&Job]) -> Result<Vec<Ack>, sqlx::Error>,
{
    // The same statements in SQLite and PostgreSQL.
    exec::<DB>(conn, "ingest: savepoint", "SAVEPOINT batch").await?;
    let outcome = write(conn, jobs).await;
    if outcome.is_err() {
        exec::<DB>(
            conn,
            "ingest: rollback to savepoint",
            "ROLLBACK TO SAVEPOINT batch",
        )
        .await?;
    }
    exec::<DB>(conn, "ingest: release savepoint", "RELEASE SAVEPOINT batch").await?;
    Ok(outcome)
}

async fn exec<DB>(
    conn: &mut DB::Connection,
    op: &'static str,
    sql: &'static str,
) -> Result<(), (&'static str, String)>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    sqlx::query::<DB>(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| (op, e.to_string()))
}

/// Stored ranges read per step while advancing `acked`.
const SCAN_CHUNK: i64 = 4_096;

/// The highest contiguous sequence number stored for `device_id`, starting
/// from `acked`. Every ingest leaves no stored range with
/// `seq <= acked < seq_end`, so only records of `batch` can start at or
/// below `acked` and still reach beyond it; the rest is a scan of
/// `seq > acked` along the primary key.
pub(super) async fn advance<DB>(
    conn: &mut DB::Connection,
    dialect: &Dialect,
    device_id: i64,
    acked: i64,
    batch: &[Row],
) -> Result<i64, sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (i64, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let mut h = acked;
    for r in batch.iter().filter(|r| r.seq <= acked && r.seq_end > acked) {
        let sql = "SELECT seq_end FROM records WHERE device_id = ? AND seq = ?";
        let end: Option<i64> = sqlx::query_scalar::<DB, i64>(dialect.sql(sql))
            .bind(device_id)
            .bind(r.seq)
            .fetch_optional(&mut *conn)
            .await?;
        h = h.max(end.unwrap_or(h));
    }
    let mut cursor = acked;
    loop {
        let sql = "SELECT seq, seq_end FROM records WHERE device_id = ? AND seq > ? \
                   ORDER BY seq LIMIT ?";
        let mut ranges: Vec<(i64, i64)> = sqlx::query_as::<DB, (i64, i64)>(dialect.sql(sql))
            .bind(device_id)
            .bind(cursor)
            .bind(SCAN_CHUNK)
            .fetch_all(&mut *conn)
            .await?;
        let Some(&(last, _)) = ranges.last() else {
            break;
        };
        let full = ranges.len() as i64 == SCAN_CHUNK;
        h = advance_contiguous(h, &mut ranges);
        if !full || !super::follows(h, last) {
            break;
        }
        cursor = last;
    }
    Ok(h)
}

/// Indices of the batches whose device appears only once in `group`: those
/// can be written together. (A device's second batch depends on the first's
/// outcome, so it is written on its own after them.)
pub(super) fn distinct(group: &[Job]) -> Vec<usize> {
    let mut seen: HashMap<i64, usize> = HashMap::with_capacity(group.len());
    for job in group {
        *seen.entry(job.device_id).or_default() += 1;
    }
    (0..group.len())
        .filter(|&i| seen[&group[i].device_id] == 1)
        .collect()
}

/// The answers to batches written together and what they leave to write
/// besides their records.
#[derive(Default)]
pub(super) struct Writes {
    /// Each batch's answer, in the order added.
    pub acks: Vec<Ack>,
    /// Devices whose `acked` moved: (device, new `acked`).
    pub moved: Vec<(i64, i64)>,
    /// Roll-up marks to make sure of: (device, from_ms).
    pub keep: Vec<(i64, i64)>,
    /// Roll-up marks to lower to from_ms (see [`rollup::batch_mark`]).
    pub lower: Vec<(i64, i64)>,
}

impl Writes {
    /// Add a batch, given the device's `acked` before and after it and the
    /// number of its records stored.
    pub fn add(&mut self, job: &Job, before: i64, after: i64, stored: u64) {
        let total = job.rows.len() as u64;
        self.acks.push(Ack {
            acked: after as u64,
            stored: u32::try_from(stored).unwrap_or(u32::MAX),
            duplicates: u32::try_from(total.saturating_sub(stored)).unwrap_or(u32::MAX),
        });
        if after != before {
            self.moved.push((job.device_id, after));
        }
        match rollup::batch_mark(job.fresh(before).map(|r| r.reach_ms), job.now_ms) {
            Some(MarkMove::Lower { from_ms }) => self.lower.push((job.device_id, from_ms)),
            Some(MarkMove::Ensure { from_ms }) => self.keep.push((job.device_id, from_ms)),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(device_id: i64, seqs: &[(i64, i64)]) -> Job {
        Job {
            device_id,
            rows: seqs
                .iter()
                .map(|&(seq, seq_end)| Row {
                    seq,
                    seq_end,
                    at_ms: 0,
                    mono_ms: 0,
                    boot_id: String::new(),
                    kind: "heartbeat",
                    body: String::new(),
                    reach_ms: seq * 1_000,
                    pack: None,
                })
                .collect(),
            meta: UploadMeta::default(),
            now_ms: 10_000_000_000,
            token_hash: None,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn only_batches_whose_token_still_holds_are_written() {
        let with = |id, t: &str| Job {
            token_hash: Some(t.to_string()),
            ..job(id, &[])
        };
        // 1: token unchanged; 2: replaced (rotated); 3: revoked; 4: removed;
        // 5: sent by the store's own callers, without a token.
        let g = [
            with(1, "a"),
            with(2, "b"),
            with(3, "c"),
            with(4, "d"),
            job(5, &[]),
        ];
        let devices = vec![
            (1, "a".to_string(), false),
            (2, "b2".to_string(), false),
            (3, "c".to_string(), true),
            (5, "e".to_string(), true),
        ];
        assert_eq!(still_valid(&g, devices), [true, false, false, false, true]);
        assert_eq!(token_devices(&g), [1, 2, 3, 4]);
        assert!(token_devices(&[job(5, &[])]).is_empty());
    }

    #[test]
    fn only_devices_appearing_once_go_together() {
        let g = [job(1, &[]), job(2, &[]), job(1, &[]), job(3, &[])];
        assert_eq!(distinct(&g), [1, 3]);
        assert_eq!(distinct(&[]), Vec::<usize>::new());
    }

    #[test]
    fn writes_answer_and_mark_from_fresh_records() {
        let j = job(1, &[(3, 3), (5, 5), (6, 6)]);
        let mut w = Writes::default();
        w.add(&j, 4, 6, 2);
        assert_eq!(
            w.acks,
            [Ack {
                acked: 6,
                stored: 2,
                duplicates: 1
            }]
        );
        assert_eq!(w.moved, [(1, 6)]);
        // The mark starts at the earliest fresh record (seq 5), not seq 3;
        // long before `now_ms`, so it lowers an existing mark.
        assert_eq!((w.lower.as_slice(), w.keep.len()), (&[(1, 5_000)][..], 0));
        let mut unchanged = Writes::default();
        unchanged.add(&j, 6, 6, 0);
        assert!(unchanged.moved.is_empty());
        assert!(
            unchanged.lower.is_empty() && unchanged.keep.is_empty(),
            "nothing fresh, nothing to mark"
        );
    }
}
