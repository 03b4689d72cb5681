//! PostgreSQL adapter of the [`super::Store`] trait: the store of larger
//! deployments, possibly shared by several collector replicas.
//!
//! **Group commit.** Ingest goes through `ingest::WRITERS` writer tasks (see
//! `super::group`): the batches that queued while a writer was busy are
//! written in one transaction, which first locks every device of the group
//! (`SELECT ... ORDER BY id FOR UPDATE`: one order for all writers and
//! replicas, so they never deadlock; concurrent batches of one device are
//! serialised across replicas). The batches of distinct devices then go in
//! together with one `INSERT ... SELECT FROM UNNEST(arrays)` and a handful
//! of other statements for the whole group; a batch that fails there is
//! written again alone, in a savepoint, so it fails alone.
//!
//! Semantics shared with the SQLite adapter:
//! - a record is a duplicate when a record of the device with the same `seq`
//!   is already stored; a record whose `seq` merely falls inside an earlier
//!   folded record's `seq..=seq_end` is stored (and counted as stored);
//! - `acked` advances over the stored ranges `seq..=seq_end` while they are
//!   contiguous (see [`super::advance_contiguous`]); it never goes back;
//! - ingest for an unknown device id fails with
//!   `StoreError::Query { op: "ingest", source: sqlx::Error::RowNotFound }`.

mod ingest;
pub mod lead;

use super::group::{self, Job};
use super::{
    Ack, ApiToken, ApiTokenRow, Device, Dirty, LastSeen, Office, Record, Store, StoreError,
    StoredRecord, api_token, day_row_columns, day_sums_select, device_sums, push_day_rows,
};
use crate::collector::access::{Branch, Role};
use crate::collector::rollup::{DayEnds, DayRow, DeviceSums};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Connections per collector process.
const MAX_CONNECTIONS: u32 = 16;

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

/// `url` with the password (if any) replaced by `***`, for error messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// The PostgreSQL store (a connection pool).
pub struct PgStore {
    pool: PgPool,
    /// To the group-commit writers (see the module documentation).
    jobs: mpsc::Sender<Job>,
}

impl PgStore {
    /// Connect to `url` (`postgres://USER:PASSWORD@HOST/DB?...`; PostgreSQL
    /// connection options such as `options[search_path]=SCHEMA` apply) and
    /// run the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            url: redact(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let (jobs, queue) = mpsc::channel(group::QUEUE);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..ingest::WRITERS {
            // Each ends when the store (the only sender) is dropped.
            tokio::spawn(ingest::group_writer(pool.clone(), queue.clone()));
        }
        Ok(PgStore { pool, jobs })
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
}

/// The alert and outbox statements in this dialect.
mod alert_rows {
    super::super::alerts::alert_sql!(sqlx::Postgres, crate::collector::store::alerts::pg);
}

#[async_trait::async_trait]
impl Store for PgStore {
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
        let mut tx = self.pool.begin().await.map_err(e("apply alerts"))?;
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
        let mut tx = self.pool.begin().await.map_err(e("acknowledge alert"))?;
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
        let mut tx = self.pool.begin().await.map_err(e("claim outbox row"))?;
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
        let mut tx = self.pool.begin().await.map_err(e("settle outbox row"))?;
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
        if let Some(code) = office {
            let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM offices WHERE code = $1")
                .bind(code)
                .fetch_optional(&self.pool)
                .await
                .map_err(e("add device: office"))?;
            if found.is_none() {
                return Err(StoreError::UnknownOffice(code.to_string()));
            }
        }
        let inserted = sqlx::query_as::<_, DeviceRow>(
            "INSERT INTO devices (name, office, token_hash, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, name, office, revoked, acked, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms",
        )
        .bind(name)
        .bind(office)
        .bind(token_hash)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await;
        let err = match inserted {
            Ok(row) => return Ok(device(row)),
            Err(err) => err,
        };
        if let sqlx::Error::Database(d) = &err {
            if d.is_foreign_key_violation() {
                return Err(StoreError::UnknownOffice(
                    office.unwrap_or_default().to_string(),
                ));
            }
            // The name or the token hash is taken: tell which.
            if d.is_unique_violation() && self.device_by_name(name).await?.is_some() {
                return Err(StoreError::DeviceExists(name.to_string()));
            }
        }
        Err(e("add device")(err))
    }

    async fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>, StoreError> {
        self.device_where(
            "SELECT id, name, office, revoked, acked, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms FROM devices \
             WHERE token_hash = $1",
            token_hash,
            "device by token",
        )
        .await
    }

    async fn device_by_name(&self, name: &str) -> Result<Option<Device>, StoreError> {
        self.device_where(
            "SELECT id, name, office, revoked, acked, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms FROM devices WHERE name = $1",
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
        let done = sqlx::query("UPDATE devices SET revoked = true WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(query_err("revoke device"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_device_token(&self, name: &str, token_hash: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE devices SET token_hash = $1, revoked = false WHERE name = $2")
                .bind(token_hash)
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(query_err("rotate device token"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn upsert_offices(&self, offices: &[Office]) -> Result<usize, StoreError> {
        // One row per code, the last one given winning (as row-by-row upserts
        // would); one statement cannot update the same row twice.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, o) in offices.iter().enumerate() {
            last.insert(&o.code, i);
        }
        let mut cols: [Vec<&str>; 5] = Default::default();
        let mut hours: Vec<Option<&str>> = Vec::new();
        for (i, o) in offices.iter().enumerate() {
            if last[o.code.as_str()] == i {
                for (col, v) in
                    cols.iter_mut()
                        .zip([&o.code, &o.name, &o.division, &o.district, &o.upazila])
                {
                    col.push(v);
                }
                hours.push(o.hours.as_deref());
            }
        }
        let [code, name, division, district, upazila] = cols;
        let e = query_err;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(e("upsert offices: begin"))?;
        // The devices of offices whose hours change: their roll-ups of the
        // `office` schedule are due again (the maintainer recomputes the
        // days whose raw records are kept).
        sqlx::query(
            "UPDATE rollup_dirty SET from_ms = LEAST(from_ms, 0), version = version + 1 \
             WHERE device_id IN (SELECT d.id FROM devices d \
             JOIN offices o ON o.code = d.office \
             JOIN UNNEST($1::text[], $2::text[]) AS n(code, hours) ON n.code = o.code \
             WHERE o.hours IS DISTINCT FROM n.hours)",
        )
        .bind(&code)
        .bind(&hours)
        .execute(&mut *tx)
        .await
        .map_err(e("upsert offices: mark roll-ups"))?;
        let done = sqlx::query(
            "INSERT INTO offices (code, name, division, district, upazila, hours) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[]) \
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, \
             division = excluded.division, district = excluded.district, \
             upazila = excluded.upazila, hours = excluded.hours",
        )
        .bind(code)
        .bind(name)
        .bind(division)
        .bind(district)
        .bind(upazila)
        .bind(hours)
        .execute(&mut *tx)
        .await
        .map_err(e("upsert offices"))?;
        tx.commit().await.map_err(e("upsert offices: commit"))?;
        Ok(done.rows_affected() as usize)
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
             FROM records WHERE device_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
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

    fn leadership(&self, replica: &str) -> Arc<dyn crate::collector::lead::Leadership> {
        Arc::new(lead::PgLeadership::new(
            &self.pool.connect_options(),
            replica,
        ))
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
        let inserted = sqlx::query_as::<_, ApiTokenRow>(
            "INSERT INTO api_tokens (name, role, scope_level, scope_value, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, name, role, scope_level, scope_value, revoked, created_at",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(branch.map(|b| b.level.as_str()))
        .bind(branch.map(|b| b.name.as_str()))
        .bind(token_hash)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await;
        let err = match inserted {
            Ok(row) => return api_token(row).map_err(e("add API token")),
            Err(err) => err,
        };
        // The name or the token hash is taken: tell which.
        if let sqlx::Error::Database(d) = &err
            && d.is_unique_violation()
        {
            let taken: Option<i32> = sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(e("add API token: name"))?;
            if taken.is_some() {
                return Err(StoreError::ApiTokenExists(name.to_string()));
            }
        }
        Err(e("add API token")(err))
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        sqlx::query_as::<_, ApiTokenRow>(
            "SELECT id, name, role, scope_level, scope_value, revoked, created_at \
             FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .and_then(|r| r.map(api_token).transpose())
        .map_err(query_err("API token by hash"))
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        sqlx::query_as::<_, ApiTokenRow>(
            "SELECT id, name, role, scope_level, scope_value, revoked, created_at \
             FROM api_tokens ORDER BY name COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.into_iter().map(api_token).collect())
        .map_err(query_err("list API tokens"))
    }

    async fn revoke_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_tokens SET revoked = true WHERE name = $1")
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
             FROM records WHERE device_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY seq",
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
             FROM records WHERE device_id = $1 AND at_ms < $2 \
             AND kind IN ('link_state', 'lifecycle', 'failover', 'facts') \
             ORDER BY at_ms DESC LIMIT $3",
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
            "SELECT device_id, from_ms, version FROM rollup_dirty WHERE from_ms < $1 \
             ORDER BY from_ms LIMIT $2",
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
            "SELECT device_id, from_ms, version FROM rollup_dirty WHERE device_id = $1",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("roll-up mark"))?;
        Ok(row.map(dirty))
    }

    async fn mark_all_dirty(&self, from_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE rollup_dirty SET from_ms = LEAST(from_ms, $1), version = version + 1",
        )
        .bind(from_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("mark roll-ups"))?;
        Ok(done.rows_affected())
    }

    async fn has_rollups(&self, schedule: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1::BIGINT FROM rollup_days WHERE schedule = $1 LIMIT 1")
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
        let mut tx = self.pool.begin().await.map_err(e("store roll-ups"))?;
        let cols = day_row_columns();
        let mut set = String::new();
        for c in cols.split(", ").skip(3) {
            if !set.is_empty() {
                set.push_str(", ");
            }
            set.push_str(&format!("{c} = excluded.{c}"));
        }
        for chunk in rows.chunks(200) {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
                "INSERT INTO rollup_days ({cols}) "
            ));
            push_day_rows(&mut q, chunk, false);
            q.push(format!(
                " ON CONFLICT (schedule, device_id, day_ms) DO UPDATE SET {set}"
            ));
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(e("store roll-ups: days"))?;
        }
        for (day, body) in timelines {
            sqlx::query(
                "INSERT INTO rollup_timelines (device_id, day_ms, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (device_id, day_ms) DO UPDATE SET body = excluded.body",
            )
            .bind(device_id)
            .bind(day)
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(e("store roll-ups: timelines"))?;
        }
        let moved = sqlx::query(
            "UPDATE rollup_dirty SET from_ms = $1 WHERE device_id = $2 AND version = $3",
        )
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
            "SELECT {} FROM rollup_days WHERE schedule = $1 AND day_ms >= $2 AND day_ms < $3 \
             GROUP BY device_id",
            day_sums_select("::BIGINT")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(schedule)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("roll-up sums"))?;
        rows.iter()
            .map(|r| device_sums(r, false))
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
            "SELECT device_id, day_ms, head_ms, tail_ms, whole, cont FROM rollup_days \
             WHERE schedule = $1 AND day_ms >= $2 AND day_ms < $3 \
             AND (head_ms > 0 OR tail_ms > 0) ORDER BY device_id, day_ms",
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
             WHERE device_id = $1 AND day_ms >= $2 AND day_ms < $3 ORDER BY day_ms",
        )
        .bind(device_id)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("roll-up timelines"))
    }

    async fn delete_minutes_before(&self, before_ms: i64, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM records WHERE (device_id, seq) IN (SELECT device_id, seq FROM records \
             WHERE kind = 'link_minutes' AND at_ms < $1 LIMIT $2)",
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
        let done = sqlx::query(
            "DELETE FROM rollup_days WHERE schedule = $1 AND device_id = $2 AND day_ms < $3",
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

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://lw:secret@db:5432/lw?sslmode=require"),
            "postgres://lw:***@db:5432/lw?sslmode=require"
        );
        assert_eq!(redact("postgres://lw@db/lw"), "postgres://lw@db/lw");
        assert_eq!(redact("postgres://db/lw"), "postgres://db/lw");
        assert_eq!(redact("postgres://a:b@c@db/x"), "postgres://a:***@db/x");
    }
}
