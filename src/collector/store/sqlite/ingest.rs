//! Ingest of the SQLite adapter: the group-commit writer (see the adapter's
//! module documentation) and how a group's batches are written together.

use super::super::dialect;
use super::super::group::{self, Job, Row};
use super::super::packs::io as packs;
use super::super::packs::tails;
use super::super::{Ack, StoreError, advance_contiguous};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Records per multi-row `INSERT` (9 bind parameters each; SQLite allows 32766).
const INSERT_CHUNK: usize = 1_000;

/// The group-commit writer: takes what has queued, writes it in one
/// transaction, answers every caller after the commit.
pub(super) async fn group_writer(
    pool: SqlitePool,
    write: Arc<tokio::sync::Mutex<()>>,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut group: Vec<Job> = Vec::with_capacity(group::GROUP_MAX_BATCHES);
    while group::next_group(&mut queue, &mut group).await {
        let results = {
            let _w = write.lock().await;
            write_group(&pool, &group).await
        };
        group::answer(&mut group, results);
    }
}

/// Write a group in one transaction ([`group::write_in`], with
/// [`write_together`]). `Err` (operation, message) when the transaction as a
/// whole failed: then nothing of the group is stored.
async fn write_group(
    pool: &SqlitePool,
    group: &[Job],
) -> Result<Vec<Result<Ack, StoreError>>, (&'static str, String)> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| ("ingest: begin", e.to_string()))?;
    let valid = tokens_held(&mut tx, group)
        .await
        .map_err(|e| ("ingest: check tokens", e.to_string()))?;
    let results = group::write_in::<Sqlite, _>(&mut tx, group, &valid, write_together).await?;
    tx.commit()
        .await
        .map_err(|e| ("ingest: commit", e.to_string()))?;
    Ok(results)
}

/// [`group::still_valid`] from the devices' tokens as this transaction
/// reads them.
async fn tokens_held(conn: &mut SqliteConnection, group: &[Job]) -> Result<Vec<bool>, sqlx::Error> {
    let ids = group::token_devices(group);
    if ids.is_empty() {
        return Ok(vec![true; group.len()]);
    }
    // One statement whatever the number of devices (a JSON array of ids),
    // so SQLite prepares it once per connection.
    let ids = serde_json::to_string(&ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let rows = sqlx::query_as::<_, (i64, String, bool)>(
        "SELECT id, token_hash, revoked FROM devices \
         WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(group::still_valid(group, rows))
}

/// Write the batches of distinct devices (one, or a group's) with a
/// handful of statements for all of them: one read of the devices' `acked`,
/// one count of each device's records beyond it, then (see
/// [`packs::split`]) the packed records' packs read, extended and written
/// (one `SELECT`, `UPDATE` and `INSERT` across batches), the other records
/// inserted (multi-row `INSERT ... RETURNING`), one `UPDATE` of the advanced
/// `acked`s, last seen and one or two roll-up mark inserts. Where nothing
/// was stored beyond `acked`, `acked` follows from what was just written;
/// otherwise (records stored out of order earlier, replays)
/// [`group::advance`] scans that device's records and [`packs::compact`]
/// moves what `acked` came to cover into packs.
async fn write_together(
    conn: &mut SqliteConnection,
    jobs: &[&Job],
) -> Result<Vec<Ack>, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut read = QueryBuilder::<Sqlite>::new("SELECT id, acked FROM devices WHERE id IN (");
    let mut ids = read.separated(", ");
    for job in jobs {
        ids.push_bind(job.device_id);
    }
    read.push(")");
    let acked: HashMap<i64, i64> = read
        .build_query_as::<(i64, i64)>()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    // An unknown device fails its batch (see the store's documentation).
    if jobs.iter().any(|j| !acked.contains_key(&j.device_id)) {
        return Err(sqlx::Error::RowNotFound);
    }
    // How many records each device has beyond its `acked`: none (the usual
    // case) lets the batch's run from `acked` go straight into packs.
    let mut count = QueryBuilder::<Sqlite>::new(
        "SELECT q.column1, (SELECT COUNT(*) FROM records r \
         WHERE r.device_id = q.column1 AND r.seq > q.column2) FROM (",
    );
    count.push_values(jobs, |mut b, job| {
        b.push_bind(job.device_id).push_bind(acked[&job.device_id]);
    });
    count.push(") AS q");
    let beyond: HashMap<i64, i64> = count
        .build_query_as::<(i64, i64)>()
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut splits = Vec::with_capacity(jobs.len());
    let mut fresh: Vec<(i64, i64, &Row)> = Vec::new();
    for job in jobs {
        let a = *acked.get(&job.device_id).ok_or(sqlx::Error::RowNotFound)?;
        let split = packs::split(job, a, beyond[&job.device_id]);
        fresh.extend(split.rows.iter().map(|&r| (job.device_id, job.now_ms, r)));
        splits.push(split);
    }
    // Inserted ranges per device.
    let mut inserted: HashMap<i64, Vec<(i64, i64)>> = HashMap::with_capacity(jobs.len());
    for chunk in fresh.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO records (device_id, seq, seq_end, at_ms, mono_ms, boot_id, kind, \
             body, received_ms) ",
        );
        insert.push_values(chunk, |mut b, &(device_id, now_ms, r)| {
            b.push_bind(device_id)
                .push_bind(r.seq)
                .push_bind(r.seq_end)
                .push_bind(r.at_ms)
                .push_bind(r.mono_ms)
                .push_bind(r.boot_id.as_str())
                .push_bind(r.kind)
                .push_bind(r.body.as_str())
                .push_bind(now_ms);
        });
        insert.push(" ON CONFLICT (device_id, seq) DO NOTHING RETURNING device_id, seq, seq_end");
        let rows: Vec<(i64, i64, i64)> = insert
            .build_query_as()
            .persistent(false)
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
    tails::load_open::<Sqlite>(conn, &wants, &mut open).await?;
    for (job, split) in jobs.iter().zip(splits) {
        let a = acked[&job.device_id];
        let mut ranges = inserted.remove(&job.device_id).unwrap_or_default();
        let simple = split.simple;
        ranges.extend(split.packed.iter().map(|(_, e)| (e.seq, e.seq)));
        let stored = ranges.len() as u64;
        // Nothing stored beyond `acked` before: what was just written is all
        // there is beyond it.
        let after = if beyond[&job.device_id] == 0 {
            advance_contiguous(a, &mut ranges)
        } else {
            group::advance::<Sqlite>(conn, &dialect::SQLITE, job.device_id, a, &job.rows).await?
        };
        tails::add(&mut open, job.device_id, split.packed);
        // Records `acked` now covers that were stored as rows move into packs.
        if !simple {
            packs::compact::<Sqlite>(conn, &dialect::SQLITE, job.device_id, a, after, &mut open)
                .await?;
        }
        w.add(job, a, after, stored);
    }
    tails::save::<Sqlite>(conn, &dialect::SQLITE, open.values().flatten()).await?;
    if !w.moved.is_empty() {
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE devices SET acked = v.column2 FROM (");
        update.push_values(&w.moved, |mut b, &(id, a)| {
            b.push_bind(id).push_bind(a);
        });
        update.push(") AS v WHERE devices.id = v.column1");
        update.build().persistent(false).execute(&mut *conn).await?;
    }
    // Last seen: every upload, replays too; the newest record only when
    // it is beyond the one seen before.
    let mut seen = QueryBuilder::<Sqlite>::new(
        "UPDATE devices SET last_upload_ms = v.column2, next_upload_due_ms = v.column3, \
         backlog_records = v.column6, backlog_oldest_ms = v.column7, \
         last_record_ms = CASE WHEN v.column4 IS NOT NULL AND (last_record_seq IS NULL \
         OR v.column4 > last_record_seq) THEN v.column5 ELSE last_record_ms END, \
         last_record_seq = CASE WHEN v.column4 IS NOT NULL AND (last_record_seq IS NULL \
         OR v.column4 > last_record_seq) THEN v.column4 ELSE last_record_seq END FROM (",
    );
    seen.push_values(jobs, |mut b, job| {
        let (seq, at) = job.newest();
        b.push_bind(job.device_id)
            .push_bind(job.now_ms)
            .push_bind(job.meta.next_upload_due_ms)
            .push_bind(seq)
            .push_bind(at)
            .push_bind(job.meta.backlog.map(|b| b.records as i64))
            .push_bind(job.meta.backlog.and_then(|b| b.oldest_at));
    });
    seen.push(") AS v WHERE devices.id = v.column1");
    seen.build().persistent(false).execute(&mut *conn).await?;
    for (marks, conflict) in [
        (
            &w.lower,
            " ON CONFLICT (device_id) DO UPDATE SET \
             from_ms = MIN(from_ms, excluded.from_ms), version = version + 1",
        ),
        (&w.keep, " ON CONFLICT (device_id) DO NOTHING"),
    ] {
        if marks.is_empty() {
            continue;
        }
        let mut mark =
            QueryBuilder::<Sqlite>::new("INSERT INTO rollup_dirty (device_id, from_ms, version) ");
        mark.push_values(marks.iter(), |mut b, &(id, reach)| {
            b.push_bind(id).push_bind(reach).push_bind(1_i64);
        });
        mark.push(conflict);
        mark.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(w.acks)
}
