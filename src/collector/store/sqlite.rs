//! SQLite adapter of the [`super::Store`] trait: the default store of a
//! single collector.
//!
//! The database runs in WAL mode with `synchronous = FULL`, so a batch is on
//! disk when [`Store::ingest`] returns. Every write transaction starts with
//! `BEGIN IMMEDIATE` (it takes the write lock up front, so two writers never
//! deadlock on a lock upgrade) and, inside this process, also holds a mutex so
//! that concurrent requests queue instead of polling the busy handler. Another
//! process writing the same file (the CLI) waits up to 5 s (`busy_timeout`).
//!
//! **Group commit.** One fsync per transaction caps a disk at a few hundred
//! to a few thousand commits a second, whatever the CPU. Ingest therefore goes
//! through one writer task: the batches that queued while the previous
//! commit was being flushed are written together in one transaction, each
//! inside its own savepoint (a failing batch is rolled back alone), and every
//! caller is answered only after that transaction's commit returned. Nothing
//! waits on purpose: under light load a group is one batch.
//!
//! Semantics shared with the PostgreSQL adapter:
//! - a record is a duplicate when a record of the device with the same `seq`
//!   is already stored, or when its whole range `seq..=seq_end` is at or
//!   below `acked` (already stored, or stored and since deleted by
//!   retention); a record whose `seq` merely falls inside an earlier folded
//!   record's range but reaches beyond `acked` is stored;
//! - `acked` advances over the stored ranges `seq..=seq_end` while they are
//!   contiguous (see [`super::advance_contiguous`]); it never goes back;
//! - ingest for an unknown device id fails with
//!   `StoreError::Query { op: "ingest", source: sqlx::Error::RowNotFound }`.

use super::{
    Ack, ApiToken, ApiTokenRow, Device, Dirty, Office, Record, Store, StoreError, StoredRecord,
    advance_contiguous, api_token, day_row_columns, day_sums_select, device_sums, push_day_rows,
};
use crate::collector::access::{Branch, Role};
use crate::collector::rollup::{self, DayEnds, DayRow, DeviceSums};
use crate::collector::uptime::Params;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Records per multi-row `INSERT` (9 bind parameters each; SQLite allows 32766).
const INSERT_CHUNK: usize = 1_000;
/// Stored ranges read per step while advancing `acked`.
const SCAN_CHUNK: i64 = 4_096;
/// Connections of a file database (one writer at a time, readers in parallel).
const MAX_CONNECTIONS: u32 = 8;
/// Most batches written in one group commit.
const GROUP_MAX_BATCHES: usize = 256;
/// Most records written in one group commit (a batch is never split).
const GROUP_MAX_RECORDS: usize = 20_000;
/// Batches waiting for the writer before callers wait to queue.
const QUEUE: usize = 4_096;

/// Columns `id, name, office, revoked, acked, created_at` of a device row.
type DeviceRow = (i64, String, Option<String>, bool, i64, i64);

/// Columns of a record row, in [`StoredRecord`] field order.
type RecordRow = (i64, i64, i64, i64, String, String, String, i64);

fn device(r: DeviceRow) -> Device {
    Device {
        id: r.0,
        name: r.1,
        office: r.2,
        revoked: r.3,
        acked: r.4,
        created_at_ms: r.5,
    }
}

fn stored_record(r: RecordRow) -> StoredRecord {
    StoredRecord {
        seq: r.0,
        seq_end: r.1,
        at_ms: r.2,
        mono_ms: r.3,
        boot_id: r.4,
        kind: r.5,
        body: r.6,
        received_ms: r.7,
    }
}

fn query_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

/// A record flattened to its columns.
struct Row {
    seq: i64,
    seq_end: i64,
    at_ms: i64,
    mono_ms: i64,
    boot_id: String,
    kind: &'static str,
    body: String,
    /// How far back the record can change the device's timeline.
    reach_ms: i64,
}

fn int(v: u64, what: &str) -> Result<i64, sqlx::Error> {
    i64::try_from(v).map_err(|_| sqlx::Error::Encode(format!("{what} {v} out of range").into()))
}

fn rows(records: &[Record]) -> Result<Vec<Row>, sqlx::Error> {
    records
        .iter()
        .map(|r| {
            let seq = int(r.seq, "seq")?;
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
                reach_ms: rollup::reach_back_ms(r, &Params::default()),
            })
        })
        .collect()
}

/// One batch waiting for the group-commit writer.
struct Job {
    device_id: i64,
    rows: Vec<Row>,
    now_ms: i64,
    reply: oneshot::Sender<Result<Ack, StoreError>>,
}

/// The SQLite store (a connection pool on one database file).
pub struct SqliteStore {
    pool: SqlitePool,
    /// Serialises this process's write transactions.
    write: Arc<tokio::sync::Mutex<()>>,
    /// To the group-commit writer (see the module documentation).
    jobs: mpsc::Sender<Job>,
}

impl SqliteStore {
    /// Open (creating when missing) the database `url` names
    /// (`sqlite://PATH`, `sqlite:PATH`, or `sqlite::memory:` for tests) and
    /// run the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        // An in-memory database lives as long as its one connection: keep it.
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        }
        .connect_with(options)
        .await
        .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let write = Arc::new(tokio::sync::Mutex::new(()));
        let (jobs, queue) = mpsc::channel(QUEUE);
        // Ends when the store (the only sender) is dropped.
        tokio::spawn(group_writer(pool.clone(), write.clone(), queue));
        Ok(SqliteStore { pool, write, jobs })
    }

    async fn device_where(
        &self,
        sql: &'static str,
        key: &str,
        op: &'static str,
    ) -> Result<Option<Device>, StoreError> {
        sqlx::query_as::<_, DeviceRow>(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.map(device))
            .map_err(query_err(op))
    }

    /// A write transaction of this process: the write mutex (held while the
    /// guard lives), then `BEGIN IMMEDIATE`.
    async fn write_tx(
        &self,
        op: &'static str,
    ) -> Result<
        (
            tokio::sync::MutexGuard<'_, ()>,
            sqlx::Transaction<'static, Sqlite>,
        ),
        StoreError,
    > {
        let guard = self.write.lock().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(op))?;
        Ok((guard, tx))
    }
}

/// The highest contiguous sequence number stored for `device_id`, starting
/// from `acked`. Every ingest leaves no stored range with
/// `seq <= acked < seq_end`, so only records of `batch` can start at or below
/// `acked` and still reach beyond it; the rest is a scan of `seq > acked` along
/// the primary key.
async fn advance(
    conn: &mut SqliteConnection,
    device_id: i64,
    acked: i64,
    batch: &[Row],
) -> Result<i64, sqlx::Error> {
    let mut h = acked;
    for r in batch.iter().filter(|r| r.seq <= acked && r.seq_end > acked) {
        let end: Option<i64> =
            sqlx::query_scalar("SELECT seq_end FROM records WHERE device_id = ? AND seq = ?")
                .bind(device_id)
                .bind(r.seq)
                .fetch_optional(&mut *conn)
                .await?;
        h = h.max(end.unwrap_or(h));
    }
    let mut cursor = acked;
    loop {
        let mut ranges: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, seq_end FROM records WHERE device_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
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
        if !full || last > h + 1 {
            break;
        }
        cursor = last;
    }
    Ok(h)
}

/// The group-commit writer: takes what has queued, writes it in one
/// transaction, answers every caller after the commit.
async fn group_writer(
    pool: SqlitePool,
    write: Arc<tokio::sync::Mutex<()>>,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut group: Vec<Job> = Vec::with_capacity(GROUP_MAX_BATCHES);
    while let Some(first) = queue.recv().await {
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
        let results = {
            let _w = write.lock().await;
            write_group(&pool, &group).await
        };
        match results {
            Ok(results) => {
                for (job, result) in group.drain(..).zip(results) {
                    // A caller that went away (request cancelled) is fine: its
                    // records are stored and the agent learns so next time.
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
}

/// Write a group in one transaction. The batches of devices that appear once
/// in the group go first, together (see [`write_together`]) inside one
/// savepoint; when that fails, or for a device's second batch in the group,
/// each batch is written alone inside a savepoint of its own (a failing batch
/// is rolled back alone). `Err` (operation, message) when the transaction as
/// a whole failed: then nothing of the group is stored.
async fn write_group(
    pool: &SqlitePool,
    group: &[Job],
) -> Result<Vec<Result<Ack, StoreError>>, (&'static str, String)> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| ("ingest: begin", e.to_string()))?;
    let savepoint = |sql: &'static str| sqlx::query(sql).persistent(true);
    let mut results: Vec<Option<Result<Ack, StoreError>>> = group.iter().map(|_| None).collect();
    let mut seen: HashMap<i64, usize> = HashMap::with_capacity(group.len());
    for job in group {
        *seen.entry(job.device_id).or_default() += 1;
    }
    let single: Vec<usize> = (0..group.len())
        .filter(|&i| seen[&group[i].device_id] == 1)
        .collect();
    if single.len() > 1 {
        savepoint("SAVEPOINT together")
            .execute(&mut *tx)
            .await
            .map_err(|e| ("ingest: savepoint", e.to_string()))?;
        let jobs: Vec<&Job> = single.iter().map(|&i| &group[i]).collect();
        match write_together(&mut tx, &jobs).await {
            Ok(acks) => {
                for (&i, ack) in single.iter().zip(acks) {
                    results[i] = Some(Ok(ack));
                }
            }
            Err(error) => {
                tracing::warn!(%error, batches = jobs.len(), "ingest: writing the group together failed; writing its batches one by one");
                savepoint("ROLLBACK TO together")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| ("ingest: rollback to savepoint", e.to_string()))?;
            }
        }
        savepoint("RELEASE together")
            .execute(&mut *tx)
            .await
            .map_err(|e| ("ingest: release savepoint", e.to_string()))?;
    }
    for (job, result) in group.iter().zip(results.iter_mut()) {
        if result.is_some() {
            continue;
        }
        savepoint("SAVEPOINT batch")
            .execute(&mut *tx)
            .await
            .map_err(|e| ("ingest: savepoint", e.to_string()))?;
        let outcome = ingest_one(&mut tx, job.device_id, &job.rows, job.now_ms).await;
        if outcome.is_err() {
            savepoint("ROLLBACK TO batch")
                .execute(&mut *tx)
                .await
                .map_err(|e| ("ingest: rollback to savepoint", e.to_string()))?;
        }
        savepoint("RELEASE batch")
            .execute(&mut *tx)
            .await
            .map_err(|e| ("ingest: release savepoint", e.to_string()))?;
        *result = Some(outcome);
    }
    tx.commit()
        .await
        .map_err(|e| ("ingest: commit", e.to_string()))?;
    Ok(results
        .into_iter()
        .map(|r| r.expect("every batch of the group was written"))
        .collect())
}

/// Write the batches of distinct devices with a handful of statements for
/// the whole group instead of a handful per batch: one read of the devices'
/// `acked`, multi-row `INSERT ... RETURNING` across batches, one count of
/// each device's records beyond its `acked`, one `UPDATE` of the advanced
/// `acked`s and one or two roll-up mark inserts. Same semantics as
/// [`ingest_one`] run batch by batch (the batches touch different devices):
/// where the stored records beyond `acked` are exactly the ones just
/// inserted, `acked` follows from them; otherwise (records stored out of
/// order earlier, a replayed batch) [`advance`] scans that device.
async fn write_together(
    conn: &mut SqliteConnection,
    jobs: &[&Job],
) -> Result<Vec<Ack>, sqlx::Error> {
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
    let mut fresh: Vec<(i64, i64, &Row)> = Vec::new();
    for job in jobs {
        let a = *acked.get(&job.device_id).ok_or(sqlx::Error::RowNotFound)?;
        fresh.extend(
            job.rows
                .iter()
                .filter(|r| r.seq_end > a)
                .map(|r| (job.device_id, job.now_ms, r)),
        );
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
    // How many records each device has beyond its `acked`.
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
    let mut acks = Vec::with_capacity(jobs.len());
    let mut moved: Vec<(i64, i64)> = Vec::new();
    let mut lower: Vec<(i64, i64)> = Vec::new();
    let mut keep: Vec<(i64, i64)> = Vec::new();
    for job in jobs {
        let a = acked[&job.device_id];
        let mut ranges = inserted.remove(&job.device_id).unwrap_or_default();
        let stored = ranges.len() as u64;
        let new_acked = if beyond.get(&job.device_id).copied().unwrap_or(0)
            == ranges.iter().filter(|&&(s, _)| s > a).count() as i64
        {
            advance_contiguous(a, &mut ranges)
        } else {
            advance(conn, job.device_id, a, &job.rows).await?
        };
        if new_acked != a {
            moved.push((job.device_id, new_acked));
        }
        if let Some(reach) = job
            .rows
            .iter()
            .filter(|r| r.seq_end > a)
            .map(|r| r.reach_ms)
            .min()
        {
            if rollup::lowers_mark(reach, job.now_ms) {
                lower.push((job.device_id, reach));
            } else {
                keep.push((job.device_id, reach));
            }
        }
        let total = job.rows.len() as u64;
        acks.push(Ack {
            acked: new_acked as u64,
            stored: u32::try_from(stored).unwrap_or(u32::MAX),
            duplicates: u32::try_from(total.saturating_sub(stored)).unwrap_or(u32::MAX),
        });
    }
    if !moved.is_empty() {
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE devices SET acked = v.column2 FROM (");
        update.push_values(&moved, |mut b, &(id, a)| {
            b.push_bind(id).push_bind(a);
        });
        update.push(") AS v WHERE devices.id = v.column1");
        update.build().persistent(false).execute(&mut *conn).await?;
    }
    for (marks, conflict) in [
        (
            &lower,
            " ON CONFLICT (device_id) DO UPDATE SET \
             from_ms = MIN(from_ms, excluded.from_ms), version = version + 1",
        ),
        (&keep, " ON CONFLICT (device_id) DO NOTHING"),
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
    Ok(acks)
}

/// Store one device's batch inside the writer's transaction; the new `acked`.
async fn ingest_one(
    conn: &mut SqliteConnection,
    device_id: i64,
    rows: &[Row],
    now_ms: i64,
) -> Result<Ack, StoreError> {
    let e = query_err;
    let acked: i64 = sqlx::query_scalar("SELECT acked FROM devices WHERE id = ?")
        .bind(device_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(e("ingest: device"))?
        .ok_or_else(|| e("ingest")(sqlx::Error::RowNotFound))?;
    // Records the device's `acked` already covers are stored (or were, and
    // retention removed them): never insert them again.
    let fresh: Vec<&Row> = rows.iter().filter(|r| r.seq_end > acked).collect();
    let mut stored: u64 = 0;
    for chunk in fresh.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO records (device_id, seq, seq_end, at_ms, mono_ms, boot_id, kind, \
             body, received_ms) ",
        );
        insert.push_values(chunk, |mut b, r| {
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
        insert.push(" ON CONFLICT (device_id, seq) DO NOTHING");
        // Keep only the full-chunk statement prepared: the shorter last
        // chunks differ in length from batch to batch.
        stored += insert
            .build()
            .persistent(chunk.len() == INSERT_CHUNK)
            .execute(&mut *conn)
            .await
            .map_err(e("ingest: insert"))?
            .rows_affected();
    }
    let new_acked = advance(conn, device_id, acked, rows)
        .await
        .map_err(e("ingest: advance"))?;
    if new_acked != acked {
        sqlx::query("UPDATE devices SET acked = ? WHERE id = ?")
            .bind(new_acked)
            .bind(device_id)
            .execute(&mut *conn)
            .await
            .map_err(e("ingest: update acked"))?;
    }
    if let Some(reach) = fresh.iter().map(|r| r.reach_ms).min() {
        // Lower the mark only for a batch reaching into settled days (see
        // `rollup::lowers_mark`); otherwise just make sure there is one.
        let sql = if rollup::lowers_mark(reach, now_ms) {
            "INSERT INTO rollup_dirty (device_id, from_ms, version) VALUES (?, ?, 1) \
             ON CONFLICT (device_id) DO UPDATE SET \
             from_ms = MIN(from_ms, excluded.from_ms), version = version + 1"
        } else {
            "INSERT INTO rollup_dirty (device_id, from_ms, version) VALUES (?, ?, 1) \
             ON CONFLICT (device_id) DO NOTHING"
        };
        sqlx::query(sql)
            .bind(device_id)
            .bind(reach)
            .persistent(true)
            .execute(&mut *conn)
            .await
            .map_err(e("ingest: mark roll-ups"))?;
    }
    let total = rows.len() as u64;
    Ok(Ack {
        acked: new_acked as u64,
        stored: u32::try_from(stored).unwrap_or(u32::MAX),
        duplicates: u32::try_from(total.saturating_sub(stored)).unwrap_or(u32::MAX),
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn add_device(
        &self,
        name: &str,
        office: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Device, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("add device").await?;
        if let Some(code) = office {
            let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM offices WHERE code = ?")
                .bind(code)
                .fetch_optional(&mut *tx)
                .await
                .map_err(e("add device: office"))?;
            if found.is_none() {
                return Err(StoreError::UnknownOffice(code.to_string()));
            }
        }
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM devices WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(e("add device: name"))?;
        if taken.is_some() {
            return Err(StoreError::DeviceExists(name.to_string()));
        }
        let inserted = sqlx::query_as::<_, DeviceRow>(
            "INSERT INTO devices (name, office, token_hash, created_at) VALUES (?, ?, ?, ?) \
             RETURNING id, name, office, revoked, acked, created_at",
        )
        .bind(name)
        .bind(office)
        .bind(token_hash)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await;
        match inserted {
            Ok(row) => {
                tx.commit().await.map_err(e("add device: commit"))?;
                Ok(device(row))
            }
            Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => Err(
                StoreError::UnknownOffice(office.unwrap_or_default().to_string()),
            ),
            // Name checked above under the write lock: a unique violation here
            // is the token hash (or another writer of the file).
            Err(err) => Err(e("add device")(err)),
        }
    }

    async fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>, StoreError> {
        self.device_where(
            "SELECT id, name, office, revoked, acked, created_at FROM devices \
             WHERE token_hash = ?",
            token_hash,
            "device by token",
        )
        .await
    }

    async fn device_by_name(&self, name: &str) -> Result<Option<Device>, StoreError> {
        self.device_where(
            "SELECT id, name, office, revoked, acked, created_at FROM devices WHERE name = ?",
            name,
            "device by name",
        )
        .await
    }

    async fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        sqlx::query_as::<_, DeviceRow>(
            "SELECT id, name, office, revoked, acked, created_at FROM devices ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(device).collect())
        .map_err(query_err("list devices"))
    }

    async fn revoke_device(&self, name: &str) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let done = sqlx::query("UPDATE devices SET revoked = 1 WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(query_err("revoke device"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn upsert_offices(&self, offices: &[Office]) -> Result<usize, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("upsert offices").await?;
        // One write per code, the last one given winning (as the PostgreSQL
        // adapter does), so both count written rows alike.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, o) in offices.iter().enumerate() {
            last.insert(&o.code, i);
        }
        let mut written = 0;
        for (_, o) in offices
            .iter()
            .enumerate()
            .filter(|&(i, o)| last[o.code.as_str()] == i)
        {
            written += sqlx::query(
                "INSERT INTO offices (code, name, division, district, upazila) \
                 VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, \
                 division = excluded.division, district = excluded.district, \
                 upazila = excluded.upazila",
            )
            .bind(&o.code)
            .bind(&o.name)
            .bind(&o.division)
            .bind(&o.district)
            .bind(&o.upazila)
            .execute(&mut *tx)
            .await
            .map_err(e("upsert offices"))?
            .rows_affected() as usize;
        }
        tx.commit().await.map_err(e("upsert offices: commit"))?;
        Ok(written)
    }

    async fn list_offices(&self) -> Result<Vec<Office>, StoreError> {
        let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT code, name, division, district, upazila FROM offices ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list offices"))?;
        Ok(rows
            .into_iter()
            .map(|(code, name, division, district, upazila)| Office {
                code,
                name,
                division,
                district,
                upazila,
            })
            .collect())
    }

    async fn ingest(
        &self,
        device_id: i64,
        records: &[Record],
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        // Flattened (and the bodies serialised) here, in the caller's task,
        // so the single writer only writes.
        let rows = rows(records).map_err(query_err("ingest"))?;
        let (reply, answer) = oneshot::channel();
        let gone = || query_err("ingest")(sqlx::Error::PoolClosed);
        self.jobs
            .send(Job {
                device_id,
                rows,
                now_ms,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn records(
        &self,
        device_id: i64,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        sqlx::query_as::<_, RecordRow>(
            "SELECT seq, seq_end, at_ms, mono_ms, boot_id, kind, body, received_ms \
             FROM records WHERE device_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(device_id)
        .bind(from_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(stored_record).collect())
        .map_err(query_err("records"))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(query_err("ping"))
    }

    async fn add_api_token(
        &self,
        name: &str,
        role: Role,
        branch: Option<&Branch>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<ApiToken, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("add API token").await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(e("add API token: name"))?;
        if taken.is_some() {
            return Err(StoreError::ApiTokenExists(name.to_string()));
        }
        let row = sqlx::query_as::<_, ApiTokenRow>(
            "INSERT INTO api_tokens (name, role, scope_level, scope_value, token_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             RETURNING id, name, role, scope_level, scope_value, revoked, created_at",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(branch.map(|b| b.level.as_str()))
        .bind(branch.map(|b| b.name.as_str()))
        .bind(token_hash)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(e("add API token"))?;
        tx.commit().await.map_err(e("add API token: commit"))?;
        api_token(row).map_err(e("add API token"))
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let e = query_err("API token by hash");
        sqlx::query_as::<_, ApiTokenRow>(
            "SELECT id, name, role, scope_level, scope_value, revoked, created_at \
             FROM api_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .and_then(|r| r.map(api_token).transpose())
        .map_err(e)
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        sqlx::query_as::<_, ApiTokenRow>(
            "SELECT id, name, role, scope_level, scope_value, revoked, created_at \
             FROM api_tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.into_iter().map(api_token).collect())
        .map_err(query_err("list API tokens"))
    }

    async fn revoke_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let done = sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(query_err("revoke API token"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn records_between(
        &self,
        device_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        sqlx::query_as::<_, RecordRow>(
            "SELECT seq, seq_end, at_ms, mono_ms, boot_id, kind, body, received_ms \
             FROM records WHERE device_id = ? AND at_ms >= ? AND at_ms < ? ORDER BY seq",
        )
        .bind(device_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(stored_record).collect())
        .map_err(query_err("records between"))
    }

    async fn transitions_before(
        &self,
        device_id: i64,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut v = sqlx::query_as::<_, RecordRow>(
            "SELECT seq, seq_end, at_ms, mono_ms, boot_id, kind, body, received_ms \
             FROM records INDEXED BY records_device_transitions \
             WHERE device_id = ? AND at_ms < ? \
             AND kind IN ('link_state', 'lifecycle', 'failover', 'facts') \
             ORDER BY at_ms DESC LIMIT ?",
        )
        .bind(device_id)
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("transitions before"))?;
        v.sort_by_key(|r| r.0);
        Ok(v.into_iter().map(stored_record).collect())
    }

    async fn dirty_due(&self, before_ms: i64, limit: i64) -> Result<Vec<Dirty>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT device_id, from_ms, version FROM rollup_dirty WHERE from_ms < ? \
             ORDER BY from_ms LIMIT ?",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("dirty roll-ups"))?;
        Ok(rows.into_iter().map(dirty).collect())
    }

    async fn dirty_marks(&self) -> Result<Vec<Dirty>, StoreError> {
        let rows: Vec<(i64, i64, i64)> =
            sqlx::query_as("SELECT device_id, from_ms, version FROM rollup_dirty")
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("roll-up marks"))?;
        Ok(rows.into_iter().map(dirty).collect())
    }

    async fn dirty_mark(&self, device_id: i64) -> Result<Option<Dirty>, StoreError> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT device_id, from_ms, version FROM rollup_dirty WHERE device_id = ?",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("roll-up mark"))?;
        Ok(row.map(dirty))
    }

    async fn mark_all_dirty(&self, from_ms: i64) -> Result<u64, StoreError> {
        let _w = self.write.lock().await;
        let done =
            sqlx::query("UPDATE rollup_dirty SET from_ms = MIN(from_ms, ?), version = version + 1")
                .bind(from_ms)
                .execute(&self.pool)
                .await
                .map_err(query_err("mark roll-ups"))?;
        Ok(done.rows_affected())
    }

    async fn has_rollups(&self, schedule: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM rollup_days WHERE schedule = ? LIMIT 1")
                .bind(schedule)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("roll-ups present"))?;
        Ok(found.is_some())
    }

    async fn put_rollups(
        &self,
        device_id: i64,
        rows: &[DayRow],
        timelines: &[(i64, String)],
        version: i64,
        new_from_ms: i64,
    ) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("store roll-ups").await?;
        let cols = day_row_columns();
        for chunk in rows.chunks(200) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "INSERT OR REPLACE INTO rollup_days ({cols}) "
            ));
            push_day_rows(&mut q, chunk, true);
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(e("store roll-ups: days"))?;
        }
        for (day, body) in timelines {
            sqlx::query(
                "INSERT OR REPLACE INTO rollup_timelines (device_id, day_ms, body) VALUES (?, ?, ?)",
            )
            .bind(device_id)
            .bind(day)
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(e("store roll-ups: timelines"))?;
        }
        let moved =
            sqlx::query("UPDATE rollup_dirty SET from_ms = ? WHERE device_id = ? AND version = ?")
                .bind(new_from_ms)
                .bind(device_id)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(e("store roll-ups: mark"))?
                .rows_affected()
                > 0;
        tx.commit().await.map_err(e("store roll-ups: commit"))?;
        Ok(moved)
    }

    async fn rollup_sums(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DeviceSums>, StoreError> {
        let sql = format!(
            // Devices first (CROSS JOIN keeps SQLite's join order): one seek
            // into each device's days, groups in key order, however many
            // other days are stored.
            "SELECT {} FROM devices d CROSS JOIN rollup_days r \
             ON r.schedule = ? AND r.device_id = d.id AND r.day_ms >= ? AND r.day_ms < ? \
             GROUP BY d.id",
            day_sums_select("")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(schedule)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("roll-up sums"))?;
        rows.iter()
            .map(|r| device_sums(r, true))
            .collect::<Result<_, _>>()
            .map_err(query_err("roll-up sums: decode"))
    }

    async fn rollup_ends(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayEnds>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64, bool, bool)> = sqlx::query_as(
            "SELECT device_id, day_ms, head_ms, tail_ms, whole, cont \
             FROM devices d CROSS JOIN rollup_days r INDEXED BY rollup_days_ends \
             ON r.schedule = ? AND r.device_id = d.id AND r.day_ms >= ? AND r.day_ms < ? \
             AND (r.head_ms > 0 OR r.tail_ms > 0) ORDER BY d.id, r.day_ms",
        )
        .bind(schedule)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("roll-up ends"))?;
        Ok(rows.into_iter().map(day_ends).collect())
    }

    async fn rollup_timelines(
        &self,
        device_id: i64,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        sqlx::query_as(
            "SELECT day_ms, body FROM rollup_timelines \
             WHERE device_id = ? AND day_ms >= ? AND day_ms < ? ORDER BY day_ms",
        )
        .bind(device_id)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("roll-up timelines"))
    }

    async fn delete_minutes_before(&self, before_ms: i64, limit: i64) -> Result<u64, StoreError> {
        let _w = self.write.lock().await;
        let done = sqlx::query(
            "DELETE FROM records WHERE (device_id, seq) IN (SELECT device_id, seq FROM records \
             INDEXED BY records_kind_at WHERE kind = 'link_minutes' AND at_ms < ? LIMIT ?)",
        )
        .bind(before_ms)
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(query_err("delete raw minutes"))?;
        Ok(done.rows_affected())
    }
}

fn dirty(r: (i64, i64, i64)) -> Dirty {
    Dirty {
        device_id: r.0,
        from_ms: r.1,
        version: r.2,
    }
}

fn day_ends(r: (i64, i64, i64, i64, bool, bool)) -> DayEnds {
    DayEnds {
        device_id: r.0,
        day_ms: r.1,
        head_ms: r.2,
        tail_ms: r.3,
        whole: r.4,
        cont: r.5,
    }
}
