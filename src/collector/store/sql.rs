//! The SQL both adapters share, written once and run through the
//! [`Dialect`] table: devices, offices as read, records, API tokens (here)
//! and roll-ups ([`rollups`]), the dashboard's bulk reads ([`fleet`]). Generic over the sqlx database; each adapter
//! makes an [`Sql`] of its pool, its dialect and, for SQLite, its write
//! lock, and its [`Store`] methods call these. What differs by more than
//! spelling stays in the adapters: ingest, office upserts, leadership.
//!
//! Each public method is the [`Store`] method of the same name, documented
//! there (and only there). Every one is one transaction (or one statement);
//! writes run under the adapter's write lock when it has one
//! ([`Sql::lock`]).

mod alerts;
mod fleet;
mod rollups;
mod silences;
mod users;

#[cfg(doc)]
use super::Store;
use super::dialect::Dialect;
use super::{ApiToken, Device, LastSeen, Office, StoreError, StoredRecord};
use crate::collector::model::{Branch, Level, Role};
use crate::wire::v1::Backlog;
use sqlx::{Database, Pool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

/// The shared statements on one pool, in its dialect.
pub(crate) struct Sql<'a, DB: Database> {
    pub pool: &'a Pool<DB>,
    pub dialect: &'static Dialect,
    /// Serialises this process's write transactions (SQLite: concurrent
    /// requests queue here instead of polling the busy handler).
    pub write: Option<&'a Mutex<()>>,
}

/// The oldest raw minute summary: packed, or a row of its own (folded).
/// Both lookups are the first entry of an index.
pub(crate) const OLDEST_RAW: &str = "SELECT MIN(m) FROM ( \
     SELECT MIN(first_at_ms) AS m FROM minute_packs WHERE minutes = 1 \
     UNION ALL SELECT MIN(at_ms) FROM records WHERE kind = 'link_minutes') AS t";

/// A failed statement of `op` as a [`StoreError`].
pub(crate) fn query_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

/// Columns `id, name, office, revoked, acked, created_at, last_upload_ms,
/// last_record_ms, next_upload_due_ms` of a device row, `revoked` as `B`.
type Row<B> = (
    i64,
    String,
    Option<String>,
    B,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A device row as the driver decodes it.
type DeviceRow = Row<bool>;

const DEVICE_COLS: &str = "id, name, office, revoked, acked, created_at, last_upload_ms, \
                           last_record_ms, next_upload_due_ms";

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

/// A [`DeviceRow`] as JSON spells it, in a JSON array of rows
/// ([`Dialect::devices_as_json`]): SQLite gives `revoked` as 0 or 1 (a JSON
/// boolean would cost a `json()` call a row).
pub(crate) type JsonDeviceRow = Row<i64>;

pub(crate) fn json_device(r: JsonDeviceRow) -> Device {
    device((r.0, r.1, r.2, r.3 != 0, r.4, r.5, r.6, r.7, r.8))
}

/// The rows of a JSON array of rows, read as one text.
pub(crate) fn json_rows<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Columns of an office row, in [`Office`] field order.
type OfficeRow = (String, String, String, String, String, Option<String>);

/// Columns of a record row, in [`StoredRecord`] field order.
pub(crate) type RecordRow = (i64, i64, i64, i64, String, String, String, i64);

pub(crate) const RECORD_COLS: &str =
    "seq, seq_end, at_ms, mono_ms, boot_id, kind, body, received_ms";

pub(crate) fn stored_record(r: RecordRow) -> StoredRecord {
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

/// Columns `id, name, role, scope_level, scope_value, revoked, created_at` of
/// an API token row.
type ApiTokenRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    bool,
    i64,
);

const API_TOKEN_COLS: &str = "id, name, role, scope_level, scope_value, revoked, created_at";

/// An API token row as the type, or a decode error naming the bad column.
fn api_token(r: ApiTokenRow) -> Result<ApiToken, sqlx::Error> {
    let bad = |what: String| sqlx::Error::Decode(what.into());
    let role = Role::parse(&r.2).ok_or_else(|| bad(format!("api_tokens.role `{}`", r.2)))?;
    let branch = match (r.3, r.4) {
        (None, None) => None,
        (Some(level), Some(name)) => Some(Branch {
            level: Level::parse(&level)
                .ok_or_else(|| bad(format!("api_tokens.scope_level `{level}`")))?,
            name,
        }),
        _ => {
            return Err(bad(
                "api_tokens scope_level/scope_value: one without the other".into(),
            ));
        }
    };
    Ok(ApiToken {
        id: r.0,
        name: r.1,
        role,
        branch,
        revoked: r.5,
        created_at_ms: r.6,
    })
}

pub(crate) use super::dialect::Affected;

/// Is `e` a unique-constraint violation?
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl<'a, DB: Database> Sql<'a, DB> {
    /// This process's write lock, if the adapter has one; held while the
    /// guard lives.
    pub async fn lock(&self) -> Option<MutexGuard<'a, ()>> {
        match self.write {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    /// A write transaction: the write lock (held while the guard lives),
    /// then the dialect's `BEGIN`.
    pub async fn write_tx(
        &self,
        op: &'static str,
    ) -> Result<(Option<MutexGuard<'a, ()>>, Transaction<'static, DB>), StoreError> {
        let guard = self.lock().await;
        let tx = match self.dialect.begin_write {
            Some(begin) => self.pool.begin_with(begin).await,
            None => self.pool.begin().await,
        }
        .map_err(query_err(op))?;
        Ok((guard, tx))
    }
}

/// The bounds of the shared statements on the database: what both SQLite
/// and PostgreSQL provide (each impl block of this layer states its own).
impl<'a, DB> Sql<'a, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    DB::QueryResult: Affected,
    usize: sqlx::ColumnIndex<DB::Row>,
    i64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    f64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    bool: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'s> &'s str: sqlx::Encode<'s, DB> + sqlx::Type<DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    /// Is there a row? (`sql` selects anything, binding `key`.)
    async fn exists(
        &self,
        conn: &mut DB::Connection,
        sql: &'static str,
        key: &str,
    ) -> Result<bool, sqlx::Error> {
        Ok(sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(key)
            .fetch_optional(conn)
            .await?
            .is_some())
    }

    pub async fn add_device(
        &self,
        name: &str,
        office: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Device, StoreError> {
        let e = query_err;
        let (w, mut tx) = self.write_tx("add device").await?;
        if let Some(code) = office {
            let sql = "SELECT 1 FROM offices WHERE code = ?";
            if !self
                .exists(&mut tx, sql, code)
                .await
                .map_err(e("add device: office"))?
            {
                return Err(StoreError::UnknownOffice(code.to_string()));
            }
        }
        let sql = "SELECT 1 FROM devices WHERE name = ?";
        if self
            .exists(&mut tx, sql, name)
            .await
            .map_err(e("add device: name"))?
        {
            return Err(StoreError::DeviceExists(name.to_string()));
        }
        let inserted = sqlx::query_as::<DB, DeviceRow>(self.dialect.sql(format!(
            "INSERT INTO devices (name, office, token_hash, created_at) VALUES (?, ?, ?, ?) \
             RETURNING {DEVICE_COLS}"
        )))
        .bind(name)
        .bind(office.map(str::to_string))
        .bind(token_hash)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await;
        let err = match inserted {
            Ok(row) => {
                tx.commit().await.map_err(e("add device: commit"))?;
                return Ok(device(row));
            }
            Err(err) => err,
        };
        drop((tx, w));
        if let sqlx::Error::Database(d) = &err
            && d.is_foreign_key_violation()
        {
            return Err(StoreError::UnknownOffice(
                office.unwrap_or_default().to_string(),
            ));
        }
        // Another writer took the name since the check (a replica, or the
        // CLI on the same file); else the token hash is taken.
        if is_unique_violation(&err) && self.device_by_name(name).await?.is_some() {
            return Err(StoreError::DeviceExists(name.to_string()));
        }
        Err(e("add device")(err))
    }

    async fn device_where(
        &self,
        column: &'static str,
        key: &str,
        op: &'static str,
    ) -> Result<Option<Device>, StoreError> {
        sqlx::query_as::<DB, DeviceRow>(self.dialect.sql(format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE {column} = ?"
        )))
        .bind(key)
        .fetch_optional(self.pool)
        .await
        .map(|r| r.map(device))
        .map_err(query_err(op))
    }

    pub async fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("token_hash", token_hash, "device by token")
            .await
    }

    pub async fn device_by_name(&self, name: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("name", name, "device by name").await
    }

    /// The backlog the device's last upload reported (migration 0014).
    pub async fn spool_backlog(&self, device_id: i64) -> Result<Option<Backlog>, StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as::<DB, _>(
            self.dialect
                .sql("SELECT backlog_records, backlog_oldest_ms FROM devices WHERE id = ?"),
        )
        .bind(device_id)
        .fetch_optional(self.pool)
        .await
        .map_err(query_err("spool backlog"))?;
        Ok(match row {
            Some((Some(records), oldest_at)) => Some(Backlog {
                records: records.max(0) as u64,
                oldest_at,
            }),
            _ => None,
        })
    }

    pub async fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        self.devices_where("", None, "list devices").await
    }

    pub async fn devices_heard_since(&self, from_ms: i64) -> Result<Vec<Device>, StoreError> {
        self.devices_where(
            " WHERE last_upload_ms >= ?",
            Some(from_ms),
            "devices heard since",
        )
        .await
    }

    /// The devices `filter` (empty, or a `WHERE` clause binding `bind`)
    /// selects, by name: as rows, or as one JSON array where the dialect
    /// says that is faster ([`Dialect::devices_as_json`]).
    async fn devices_where(
        &self,
        filter: &'static str,
        bind: Option<i64>,
        op: &'static str,
    ) -> Result<Vec<Device>, StoreError> {
        if self.dialect.devices_as_json {
            let mut q = sqlx::query_scalar::<DB, String>(self.dialect.sql(format!(
                "SELECT json_group_array(json_array({DEVICE_COLS}) ORDER BY name) \
                 FROM devices{filter}"
            )));
            if let Some(v) = bind {
                q = q.bind(v);
            }
            let text = q.fetch_one(self.pool).await.map_err(query_err(op))?;
            let rows = json_rows::<JsonDeviceRow>(&text).map_err(query_err(op))?;
            return Ok(rows.into_iter().map(json_device).collect());
        }
        let mut q = sqlx::query_as::<DB, DeviceRow>(self.dialect.sql(format!(
            "SELECT {DEVICE_COLS} FROM devices{filter} ORDER BY name"
        )));
        if let Some(v) = bind {
            q = q.bind(v);
        }
        q.fetch_all(self.pool)
            .await
            .map(|rows| rows.into_iter().map(device).collect())
            .map_err(query_err(op))
    }

    pub async fn catalog_version(&self) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar::<DB, i64>(
            self.dialect
                .sql("SELECT version FROM device_catalog WHERE id = 1"),
        )
        .fetch_optional(self.pool)
        .await
        .map_err(query_err("device catalog version"))
    }

    /// Run one write statement binding `keys` under the write lock; how many
    /// rows it changed.
    async fn update(
        &self,
        sql: &'static str,
        keys: &[&str],
        op: &'static str,
    ) -> Result<u64, StoreError> {
        let _w = self.lock().await;
        let mut q = sqlx::query::<DB>(self.dialect.sql(sql));
        for k in keys {
            q = q.bind(*k);
        }
        q.execute(self.pool)
            .await
            .map(|done| done.affected())
            .map_err(query_err(op))
    }

    pub async fn revoke_device(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE devices SET revoked = TRUE WHERE name = ?";
        Ok(self.update(sql, &[name], "revoke device").await? > 0)
    }

    pub async fn rotate_device_token(
        &self,
        name: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE devices SET token_hash = ?, revoked = FALSE WHERE name = ?";
        let changed = self
            .update(sql, &[token_hash, name], "rotate device token")
            .await?;
        Ok(changed > 0)
    }

    pub async fn list_offices(&self) -> Result<Vec<Office>, StoreError> {
        let sql = "SELECT code, name, division, district, upazila, hours FROM offices \
                   ORDER BY code";
        let rows: Vec<OfficeRow> = sqlx::query_as(self.dialect.sql(sql))
            .fetch_all(self.pool)
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

    pub async fn records(
        &self,
        device_id: i64,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError>
    where
        for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
        super::packs::io::PackRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        let rows = sqlx::query_as::<DB, RecordRow>(self.dialect.sql(format!(
            "SELECT {RECORD_COLS} FROM records WHERE device_id = ? AND seq >= ? \
             ORDER BY seq LIMIT ?"
        )))
        .bind(device_id)
        .bind(from_seq)
        .bind(limit)
        .fetch_all(self.pool)
        .await
        .map_err(query_err("records"))?;
        let rows = rows.into_iter().map(stored_record).collect();
        super::packs::io::by_seq(self.pool, self.dialect, device_id, from_seq, limit, rows)
            .await
            .map_err(query_err("records: minute packs"))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query::<DB>("SELECT 1")
            .execute(self.pool)
            .await
            .map(|_| ())
            .map_err(query_err("ping"))
    }

    pub async fn add_api_token(
        &self,
        name: &str,
        role: Role,
        branch: Option<&Branch>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<ApiToken, StoreError> {
        let e = query_err;
        let taken_sql = "SELECT 1 FROM api_tokens WHERE name = ?";
        let (w, mut tx) = self.write_tx("add API token").await?;
        if self
            .exists(&mut tx, taken_sql, name)
            .await
            .map_err(e("add API token: name"))?
        {
            return Err(StoreError::ApiTokenExists(name.to_string()));
        }
        let inserted = sqlx::query_as::<DB, ApiTokenRow>(self.dialect.sql(format!(
            "INSERT INTO api_tokens (name, role, scope_level, scope_value, token_hash, \
             created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING {API_TOKEN_COLS}"
        )))
        .bind(name)
        .bind(role.as_str())
        .bind(branch.map(|b| b.level.as_str().to_string()))
        .bind(branch.map(|b| b.name.clone()))
        .bind(token_hash)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await;
        let err = match inserted {
            Ok(row) => {
                tx.commit().await.map_err(e("add API token: commit"))?;
                return api_token(row).map_err(e("add API token"));
            }
            Err(err) => err,
        };
        drop((tx, w));
        // Another writer took the name since the check; else the token hash
        // is taken.
        if is_unique_violation(&err) {
            let mut c = self
                .pool
                .acquire()
                .await
                .map_err(e("add API token: name"))?;
            if self
                .exists(&mut c, taken_sql, name)
                .await
                .map_err(e("add API token: name"))?
            {
                return Err(StoreError::ApiTokenExists(name.to_string()));
            }
        }
        Err(e("add API token")(err))
    }

    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        sqlx::query_as::<DB, ApiTokenRow>(self.dialect.sql(format!(
            "SELECT {API_TOKEN_COLS} FROM api_tokens WHERE token_hash = ?"
        )))
        .bind(token_hash)
        .fetch_optional(self.pool)
        .await
        .and_then(|r| r.map(api_token).transpose())
        .map_err(query_err("API token by hash"))
    }

    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        sqlx::query_as::<DB, ApiTokenRow>(self.dialect.sql(format!(
            "SELECT {API_TOKEN_COLS} FROM api_tokens ORDER BY name{}",
            self.dialect.bytewise
        )))
        .fetch_all(self.pool)
        .await
        .and_then(|rows| rows.into_iter().map(api_token).collect())
        .map_err(query_err("list API tokens"))
    }

    pub async fn revoke_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE api_tokens SET revoked = TRUE WHERE name = ?";
        Ok(self.update(sql, &[name], "revoke API token").await? > 0)
    }
}
