//! Ingest of the PostgreSQL adapter: the group-commit writers (see the
//! adapter's module documentation) and how a group's batches are written
//! together.

use super::super::dialect;
use super::super::group::{self, Job, Row};
use super::super::packs::io as packs;
use super::super::packs::tails;
use super::super::{Ack, StoreError, advance_contiguous};
use sqlx::PgConnection;
use sqlx::postgres::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Group-commit writers per collector process (each writes one group at a
/// time; two let one build its group while the other waits for a commit).
pub(super) const WRITERS: usize = 2;

/// A group-commit writer: takes what has queued (sharing the queue with the
/// other writers), writes it in one transaction, answers every caller after
/// the commit.
pub(super) async fn group_writer(
    pool: PgPool,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) {
    let mut group: Vec<Job> = Vec::with_capacity(group::GROUP_MAX_BATCHES);
    loop {
        let more = group::next_group(&mut *queue.lock().await, &mut group).await;
        if !more {
            break;
        }
        let results = write_group(&pool, &group).await;
        group::answer(&mut group, results);
    }
}

/// Write a group in one transaction ([`group::write_in`], with
/// [`write_together`]). Devices are locked in id order, all at once (so
/// writers and replicas never deadlock): by [`write_together`] when every
/// device appears once in the group, else up front. `Err` (operation,
/// message) when the transaction as a whole failed: then nothing of the
/// group is stored.
async fn write_group(
    pool: &PgPool,
    group: &[Job],
) -> Result<Vec<Result<Ack, StoreError>>, (&'static str, String)> {
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| ("ingest: begin", e.to_string()))?;
    let together = group::distinct(group);
    if together.len() < group.len() {
        // `write_together` locks its devices; lock the rest with them.
        let mut ids: Vec<i64> = group.iter().map(|j| j.device_id).collect();
        ids.sort_unstable();
        ids.dedup();
        sqlx::query("SELECT id FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(|e| ("ingest: lock devices", e.to_string()))?;
    }
    let valid = tokens_held(&mut tx, group)
        .await
        .map_err(|e| ("ingest: check tokens", e.to_string()))?;
    let results =
        group::write_in::<sqlx::Postgres, _>(&mut tx, group, &valid, write_together).await?;
    tx.commit()
        .await
        .map_err(|e| ("ingest: commit", e.to_string()))?;
    Ok(results)
}

/// [`group::still_valid`] from the devices' tokens as this transaction
/// reads them (a revocation or new token committed later counts as coming
/// after the upload).
async fn tokens_held(conn: &mut PgConnection, group: &[Job]) -> Result<Vec<bool>, sqlx::Error> {
    let ids = group::token_devices(group);
    if ids.is_empty() {
        return Ok(vec![true; group.len()]);
    }
    let rows = sqlx::query_as::<_, (i64, String, bool)>(
        "SELECT id, token_hash, revoked FROM devices WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(group::still_valid(group, rows))
}

/// Write the batches of distinct devices (one, or a group's) with a
/// handful of statements for all of them: one read (and lock, in id order)
/// of the devices' `acked`, one count of each device's records beyond it,
/// then (see [`packs::split`]) the packed records' packs read, extended and
/// written (one `SELECT`, `UPDATE` and `INSERT` across batches), the other
/// records inserted (one `INSERT ... SELECT FROM UNNEST(arrays)
/// RETURNING`), one `UPDATE` of the advanced `acked`s, last seen and one or
/// two roll-up mark inserts. Where nothing was stored beyond `acked`,
/// `acked` follows from what was just written; otherwise (records stored
/// out of order earlier, replays) [`group::advance`] scans that device's
/// records and [`packs::compact`] moves what `acked` came to cover into
/// packs.
async fn write_together(conn: &mut PgConnection, jobs: &[&Job]) -> Result<Vec<Ack>, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = jobs.iter().map(|j| j.device_id).collect();
    let acked: HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT id, acked FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    // An unknown device fails its batch (see the store's documentation).
    if jobs.iter().any(|j| !acked.contains_key(&j.device_id)) {
        return Err(sqlx::Error::RowNotFound);
    }
    let befores: Vec<i64> = ids.iter().map(|id| acked[id]).collect();
    // How many records each device has beyond its `acked` (read after the
    // lock above: a statement of its own sees what committed before it): none
    // (the usual case) lets the batch's run from `acked` go straight into
    // packs.
    let beyond: HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT q.d, (SELECT COUNT(*) FROM records r WHERE r.device_id = q.d AND r.seq > q.a) \
         FROM UNNEST($1::bigint[], $2::bigint[]) AS q(d, a)",
    )
    .bind(&ids)
    .bind(&befores)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut c = Columns::default();
    let mut splits = Vec::with_capacity(jobs.len());
    for job in jobs {
        let a = *acked.get(&job.device_id).ok_or(sqlx::Error::RowNotFound)?;
        let split = packs::split(job, a, beyond[&job.device_id]);
        for r in &split.rows {
            c.push(job, r);
        }
        splits.push(split);
    }
    let mut inserted: HashMap<i64, Vec<(i64, i64)>> = HashMap::with_capacity(jobs.len());
    if !c.seq.is_empty() {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "INSERT INTO records (device_id, seq, seq_end, at_ms, mono_ms, boot_id, kind, \
             body, received_ms) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], \
             $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[]) \
             ON CONFLICT (device_id, seq) DO NOTHING \
             RETURNING device_id, seq, seq_end",
        )
        .bind(&c.device_id)
        .bind(&c.seq)
        .bind(&c.seq_end)
        .bind(&c.at_ms)
        .bind(&c.mono_ms)
        .bind(&c.boot_id)
        .bind(&c.kind)
        .bind(&c.body)
        .bind(&c.received_ms)
        .fetch_all(&mut *conn)
        .await?;
        for (device_id, seq, seq_end) in rows {
            inserted.entry(device_id).or_default().push((seq, seq_end));
        }
    }
    let mut w = group::Writes::default();
    let mut open = HashMap::new();
    let wants: Vec<(i64, i64)> = jobs
        .iter()
        .zip(&splits)
        .filter_map(|(job, s)| Some((job.device_id, tails::from_span(&s.packed)?)))
        .collect();
    tails::load_open::<sqlx::Postgres>(conn, &wants, &mut open).await?;
    for (job, split) in jobs.iter().zip(splits) {
        let a = acked[&job.device_id];
        let mut ranges = inserted.remove(&job.device_id).unwrap_or_default();
        ranges.extend(split.packed.iter().map(|(_, e)| (e.seq, e.seq)));
        let stored = ranges.len() as u64;
        // Nothing stored beyond `acked` before: what was just written is all
        // there is beyond it.
        let after = if beyond[&job.device_id] == 0 {
            advance_contiguous(a, &mut ranges)
        } else {
            group::advance::<sqlx::Postgres>(conn, &dialect::POSTGRES, job.device_id, a, &job.rows)
                .await?
        };
        let simple = split.simple;
        tails::add(&mut open, job.device_id, split.packed);
        // Records `acked` now covers that were stored as rows move into packs.
        if !simple {
            packs::compact::<sqlx::Postgres>(
                conn,
                &dialect::POSTGRES,
                job.device_id,
                a,
                after,
                &mut open,
            )
            .await?;
        }
        w.add(job, a, after, stored);
    }
    tails::save::<sqlx::Postgres>(conn, &dialect::POSTGRES, open.values().flatten()).await?;
    let columns = |pairs: &[(i64, i64)]| -> (Vec<i64>, Vec<i64>) { pairs.iter().copied().unzip() };
    if !w.moved.is_empty() {
        let (moved_id, moved_acked) = columns(&w.moved);
        sqlx::query(
            "UPDATE devices SET acked = v.a FROM UNNEST($1::bigint[], $2::bigint[]) AS v(id, a) \
             WHERE devices.id = v.id",
        )
        .bind(&moved_id)
        .bind(&moved_acked)
        .execute(&mut *conn)
        .await?;
    }
    // Last seen: every upload, replays too; the newest record only when
    // it is beyond the one seen before.
    let (mut s_id, mut s_now, mut s_due, mut s_seq, mut s_at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut s_backlog, mut s_oldest) = (Vec::new(), Vec::new());
    for job in jobs {
        let (seq, at) = job.newest();
        s_id.push(job.device_id);
        s_now.push(job.now_ms);
        s_due.push(job.meta.next_upload_due_ms);
        s_seq.push(seq);
        s_at.push(at);
        // At most 2^63 - 1: the batch was validated.
        s_backlog.push(job.meta.backlog.map(|b| b.records as i64));
        s_oldest.push(job.meta.backlog.and_then(|b| b.oldest_at));
    }
    sqlx::query(
        "UPDATE devices SET last_upload_ms = v.now, next_upload_due_ms = v.due, \
         backlog_records = v.backlog, backlog_oldest_ms = v.oldest, \
         last_record_ms = CASE WHEN v.seq IS NOT NULL AND (devices.last_record_seq IS NULL \
         OR v.seq > devices.last_record_seq) THEN v.at ELSE devices.last_record_ms END, \
         last_record_seq = CASE WHEN v.seq IS NOT NULL AND (devices.last_record_seq IS NULL \
         OR v.seq > devices.last_record_seq) THEN v.seq ELSE devices.last_record_seq END \
         FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
         $6::bigint[], $7::bigint[]) \
         AS v(id, now, due, seq, at, backlog, oldest) WHERE devices.id = v.id",
    )
    .bind(&s_id)
    .bind(&s_now)
    .bind(&s_due)
    .bind(&s_seq)
    .bind(&s_at)
    .bind(&s_backlog)
    .bind(&s_oldest)
    .execute(&mut *conn)
    .await?;
    for (marks, lower) in [(&w.keep, false), (&w.lower, true)] {
        if marks.is_empty() {
            continue;
        }
        let sql = if lower {
            "INSERT INTO rollup_dirty (device_id, from_ms, version) \
             SELECT d, f, 1 FROM UNNEST($1::bigint[], $2::bigint[]) AS m(d, f) \
             ON CONFLICT (device_id) DO UPDATE SET \
             from_ms = LEAST(rollup_dirty.from_ms, excluded.from_ms), \
             version = rollup_dirty.version + 1"
        } else {
            "INSERT INTO rollup_dirty (device_id, from_ms, version) \
             SELECT d, f, 1 FROM UNNEST($1::bigint[], $2::bigint[]) AS m(d, f) \
             ON CONFLICT (device_id) DO NOTHING"
        };
        let (id, from) = columns(marks);
        sqlx::query(sql)
            .bind(id)
            .bind(from)
            .execute(&mut *conn)
            .await?;
    }
    Ok(w.acks)
}

/// Records of several batches as column arrays, for `UNNEST`.
#[derive(Default)]
struct Columns {
    device_id: Vec<i64>,
    seq: Vec<i64>,
    seq_end: Vec<i64>,
    at_ms: Vec<i64>,
    mono_ms: Vec<i64>,
    boot_id: Vec<String>,
    kind: Vec<&'static str>,
    body: Vec<String>,
    received_ms: Vec<i64>,
}

impl Columns {
    fn push(&mut self, job: &Job, r: &Row) {
        self.device_id.push(job.device_id);
        self.seq.push(r.seq);
        self.seq_end.push(r.seq_end);
        self.at_ms.push(r.at_ms);
        self.mono_ms.push(r.mono_ms);
        self.boot_id.push(r.boot_id.clone());
        self.kind.push(r.kind);
        self.body.push(r.body.clone());
        self.received_ms.push(job.now_ms);
    }
}
