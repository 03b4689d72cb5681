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

mod ingest;

use super::group::{self, Job};
use super::{
    Ack, ApiToken, ApiTokenRow, Device, Dirty, LastSeen, Office, Record, Store, StoreError,
    StoredRecord, api_token, day_row_columns, day_sums_select, device_sums, push_day_rows,
};
use crate::collector::access::{Branch, Role};
use crate::collector::rollup::{DayEnds, DayRow, DeviceSums};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Connections of a file database (one writer at a time, readers in parallel).
const MAX_CONNECTIONS: u32 = 8;

/// Columns `id, name, office, revoked, acked, created_at, last_upload_ms,
/// last_record_ms, next_upload_due_ms` of a device row.
type DeviceRow = (
    i64,
    String,
    Option<String>,
    bool,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// Columns of an office row, in [`Office`] field order.
type OfficeRow = (String, String, String, String, String, Option<String>);

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
        seen: LastSeen {
            last_upload_ms: r.6,
            last_record_ms: r.7,
            next_upload_due_ms: r.8,
        },
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
        let options = SqliteConnectOptions::from_str(url).map_err(open_err)?;
        if !memory {
            // The database holds token hashes and every record: 0600 from
            // the start (SQLite would make it 0644, and its WAL and SHM
            // files follow the database's mode).
            let file = options.get_filename();
            let changed = crate::shared::files::private_database(file)
                .map_err(|e| open_err(sqlx::Error::Io(e)))?;
            for t in changed {
                match t.result {
                    Ok(()) => tracing::warn!(
                        file = %t.path.display(),
                        "the collector database was readable by others: made it private (0600)"
                    ),
                    Err(e) => tracing::warn!(
                        file = %t.path.display(),
                        error = %e,
                        "the collector database is readable by others and cannot be made private: run `chmod 600` on it"
                    ),
                }
            }
        }
        let options = options
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
        let (jobs, queue) = mpsc::channel(group::QUEUE);
        // Ends when the store (the only sender) is dropped.
        tokio::spawn(ingest::group_writer(pool.clone(), write.clone(), queue));
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

/// The alert and outbox statements in this dialect.
mod alert_rows {
    super::super::alerts::alert_sql!(sqlx::Sqlite, String::from);
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn open_alerts(
        &self,
    ) -> Result<Vec<crate::collector::alerts::model::OpenAlert>, StoreError> {
        let mut c = self
            .pool
            .acquire()
            .await
            .map_err(query_err("open alerts"))?;
        alert_rows::open_alerts(&mut c)
            .await
            .map_err(query_err("open alerts"))
    }

    async fn apply_alerts(
        &self,
        d: &crate::collector::alerts::model::Decisions,
        plan: &(
             dyn Fn(usize, i64) -> Vec<crate::collector::alerts::outbox::OutboxRow> + Send + Sync
         ),
    ) -> Result<Vec<i64>, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("apply alerts").await?;
        let ids = alert_rows::apply(&mut tx, d, plan)
            .await
            .map_err(e("apply alerts"))?;
        tx.commit().await.map_err(e("apply alerts: commit"))?;
        Ok(ids)
    }

    async fn list_alerts(
        &self,
        q: &super::AlertQuery,
    ) -> Result<Vec<super::AlertRecord>, StoreError> {
        let mut c = self
            .pool
            .acquire()
            .await
            .map_err(query_err("list alerts"))?;
        alert_rows::list_alerts(&mut c, q)
            .await
            .map_err(query_err("list alerts"))
    }

    async fn alert_by_id(&self, id: i64) -> Result<Option<super::AlertRecord>, StoreError> {
        let mut c = self
            .pool
            .acquire()
            .await
            .map_err(query_err("alert by id"))?;
        alert_rows::alert_by_id(&mut c, id)
            .await
            .map_err(query_err("alert by id"))
    }

    async fn ack_alert(&self, id: i64, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("acknowledge alert").await?;
        let done = alert_rows::ack_alert(&mut tx, id, by, now_ms)
            .await
            .map_err(e("acknowledge alert"))?;
        tx.commit().await.map_err(e("acknowledge alert: commit"))?;
        Ok(done)
    }

    async fn outbox_rows(
        &self,
        delivered_since_ms: i64,
    ) -> Result<Vec<crate::collector::alerts::outbox::OutboxRow>, StoreError> {
        let mut c = self
            .pool
            .acquire()
            .await
            .map_err(query_err("outbox rows"))?;
        alert_rows::outbox_rows(&mut c, delivered_since_ms)
            .await
            .map_err(query_err("outbox rows"))
    }

    async fn claim_outbox(
        &self,
        claimed: &crate::collector::alerts::outbox::OutboxRow,
        was_next_ms: i64,
    ) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("claim outbox row").await?;
        let done = alert_rows::claim_outbox(&mut tx, claimed, was_next_ms)
            .await
            .map_err(e("claim outbox row"))?;
        tx.commit().await.map_err(e("claim outbox row: commit"))?;
        Ok(done)
    }

    async fn settle_outbox(
        &self,
        row: &crate::collector::alerts::outbox::OutboxRow,
    ) -> Result<(), StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("settle outbox row").await?;
        alert_rows::put_outbox(&mut tx, row, false)
            .await
            .map_err(e("settle outbox row"))?;
        tx.commit().await.map_err(e("settle outbox row: commit"))?;
        Ok(())
    }

    async fn outbox_of(
        &self,
        alert_id: i64,
    ) -> Result<Vec<crate::collector::alerts::outbox::OutboxRow>, StoreError> {
        let mut c = self
            .pool
            .acquire()
            .await
            .map_err(query_err("outbox of alert"))?;
        alert_rows::outbox_of(&mut c, alert_id)
            .await
            .map_err(query_err("outbox of alert"))
    }

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
             RETURNING id, name, office, revoked, acked, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms",
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
            "SELECT id, name, office, revoked, acked, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms FROM devices \
             WHERE token_hash = ?",
            token_hash,
            "device by token",
        )
        .await
    }

    async fn device_by_name(&self, name: &str) -> Result<Option<Device>, StoreError> {
        self.device_where(
            "SELECT id, name, office, revoked, acked, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms FROM devices WHERE name = ?",
            name,
            "device by name",
        )
        .await
    }

    async fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        sqlx::query_as::<_, DeviceRow>(
            "SELECT id, name, office, revoked, acked, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms FROM devices ORDER BY name",
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

    async fn rotate_device_token(&self, name: &str, token_hash: &str) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let done = sqlx::query("UPDATE devices SET token_hash = ?, revoked = 0 WHERE name = ?")
            .bind(token_hash)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(query_err("rotate device token"))?;
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
        let before: HashMap<String, Option<String>> =
            sqlx::query_as("SELECT code, hours FROM offices")
                .fetch_all(&mut *tx)
                .await
                .map_err(e("upsert offices: read"))?
                .into_iter()
                .collect();
        let mut written = 0;
        for (_, o) in offices
            .iter()
            .enumerate()
            .filter(|&(i, o)| last[o.code.as_str()] == i)
        {
            written += sqlx::query(
                "INSERT INTO offices (code, name, division, district, upazila, hours) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, \
                 division = excluded.division, district = excluded.district, \
                 upazila = excluded.upazila, hours = excluded.hours",
            )
            .bind(&o.code)
            .bind(&o.name)
            .bind(&o.division)
            .bind(&o.district)
            .bind(&o.upazila)
            .bind(&o.hours)
            .execute(&mut *tx)
            .await
            .map_err(e("upsert offices"))?
            .rows_affected() as usize;
            if before.get(&o.code).is_some_and(|h| *h != o.hours) {
                sqlx::query(
                    "UPDATE rollup_dirty SET from_ms = MIN(from_ms, 0), version = version + 1 \
                     WHERE device_id IN (SELECT id FROM devices WHERE office = ?)",
                )
                .bind(&o.code)
                .execute(&mut *tx)
                .await
                .map_err(e("upsert offices: mark roll-ups"))?;
            }
        }
        tx.commit().await.map_err(e("upsert offices: commit"))?;
        Ok(written)
    }

    async fn list_offices(&self) -> Result<Vec<Office>, StoreError> {
        let rows: Vec<OfficeRow> = sqlx::query_as(
            "SELECT code, name, division, district, upazila, hours FROM offices ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list offices"))?;
        Ok(rows
            .into_iter()
            .map(|(code, name, division, district, upazila, hours)| Office {
                code,
                name,
                division,
                district,
                upazila,
                hours,
            })
            .collect())
    }

    async fn ingest(
        &self,
        device_id: i64,
        records: &[Record],
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        group::submit(&self.jobs, device_id, records, None, now_ms).await
    }

    async fn ingest_upload(
        &self,
        device_id: i64,
        records: &[Record],
        next_upload_due_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        group::submit(&self.jobs, device_id, records, next_upload_due_ms, now_ms).await
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

    async fn delete_rollups_before(
        &self,
        device_id: i64,
        schedule: &str,
        before_ms: i64,
    ) -> Result<u64, StoreError> {
        let _w = self.write.lock().await;
        let done = sqlx::query(
            "DELETE FROM rollup_days WHERE schedule = ? AND device_id = ? AND day_ms < ?",
        )
        .bind(schedule)
        .bind(device_id)
        .bind(before_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("delete old roll-up rows"))?;
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
