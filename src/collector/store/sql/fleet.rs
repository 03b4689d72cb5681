//! The dashboard's bulk reads both adapters share (see [`super`]): every
//! device with the mark of its state-setting records (migration 0013), the
//! last state-setting records of many devices in one statement, and what
//! the dashboard judged from them, with the marks then (migration 0016).

use super::{
    Affected, DEVICE_COLS, DeviceRow, JsonDeviceRow, RECORD_COLS, RecordRow, Sql, device,
    json_device, json_rows, query_err, stored_record,
};
use crate::collector::model::{Device, StoredRecord};
use crate::collector::store::StoreError;
#[cfg(doc)]
use crate::collector::store::dialect::Dialect;
use sqlx::Database;
use std::collections::BTreeMap;

/// Devices per statement of [`Sql::last_transitions`] (SQLite binds at most
/// 32,766 values).
const IDS_CHUNK: usize = 500;
/// Devices per transaction of [`Sql::put_saids`].
const SAIDS_CHUNK: usize = 2_000;

/// The kinds of the state-setting records (those of the partial index
/// `records_device_transitions`).
const TRANSITION_KINDS: &str = "('link_state', 'lifecycle', 'failover', 'facts')";

/// A device row and its mark.
type MarkedRow = (
    i64,
    String,
    Option<String>,
    bool,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

/// A device id and one of its records.
type TransitionRow = (i64, i64, i64, i64, i64, String, String, String, i64);

impl<'a, DB> Sql<'a, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    DB::QueryResult: Affected,
    usize: sqlx::ColumnIndex<DB::Row>,
    i64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    bool: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    /// What the dashboard last judged per device: `(device_id, the mark
    /// then, the judgement's code)`.
    pub async fn saids(&self) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        sqlx::query_as::<DB, (i64, i64, i64)>(
            self.dialect
                .sql("SELECT device_id, version, said FROM device_saids"),
        )
        .fetch_all(self.pool)
        .await
        .map_err(query_err("saids"))
    }

    /// Keep what the dashboard judged (`(device_id, mark, code)`), a few
    /// thousand devices a transaction (SQLite's write lock is never held
    /// long).
    pub async fn put_saids(&self, saids: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        let e = query_err;
        for chunk in saids.chunks(SAIDS_CHUNK) {
            let (_w, mut tx) = self.write_tx("keep saids").await?;
            for &(id, version, said) in chunk {
                sqlx::query::<DB>(self.dialect.sql(
                    "INSERT INTO device_saids (device_id, version, said) VALUES (?, ?, ?) \
                     ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, \
                     said = excluded.said",
                ))
                .bind(id)
                .bind(version)
                .bind(said)
                .execute(&mut *tx)
                .await
                .map_err(e("keep saids"))?;
            }
            tx.commit().await.map_err(e("keep saids: commit"))?;
        }
        Ok(())
    }

    /// Every device (no particular order), or those whose last upload is
    /// at or after `since`, with the version of its
    /// state-setting records (0 before the first).
    pub async fn devices_marked(
        &self,
        since: Option<i64>,
    ) -> Result<Vec<(Device, Option<i64>)>, StoreError> {
        let op = "devices with marks";
        let cols: Vec<String> = DEVICE_COLS.split(", ").map(|c| format!("d.{c}")).collect();
        let cols = cols.join(", ");
        let from = match since {
            None => "FROM devices d LEFT JOIN transition_marks m ON m.device_id = d.id",
            Some(_) => {
                "FROM devices d LEFT JOIN transition_marks m ON m.device_id = d.id \
                 WHERE d.last_upload_ms >= ?"
            }
        };
        if self.dialect.devices_as_json {
            let mut q = sqlx::query_scalar::<DB, String>(self.dialect.sql(format!(
                "SELECT json_group_array(json_array(json_array({cols}), \
                 COALESCE(m.version, 0))) {from}"
            )));
            if let Some(t) = since {
                q = q.bind(t);
            }
            let text = q.fetch_one(self.pool).await.map_err(query_err(op))?;
            let rows = json_rows::<(JsonDeviceRow, i64)>(&text).map_err(query_err(op))?;
            return Ok(rows
                .into_iter()
                .map(|(d, mark)| (json_device(d), Some(mark)))
                .collect());
        }
        let mut q = sqlx::query_as::<DB, MarkedRow>(
            self.dialect
                .sql(format!("SELECT {cols}, COALESCE(m.version, 0) {from}")),
        );
        if let Some(t) = since {
            q = q.bind(t);
        }
        let rows = q.fetch_all(self.pool).await.map_err(query_err(op))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let row: DeviceRow = (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8);
                (device(row), Some(r.9))
            })
            .collect())
    }

    /// The last `limit` state-setting records of each device of `ids` (by
    /// time, the later sequence first among equal times: as
    /// `transitions_before(id, i64::MAX, limit)` reads them), in sequence
    /// order; devices without any are left out. One statement per 500
    /// devices, each reading only the newest entries of each device's
    /// index, however long its history (see [`Dialect::transitions`]).
    pub async fn last_transitions(
        &self,
        ids: &[i64],
        limit: i64,
    ) -> Result<Vec<(i64, Vec<StoredRecord>)>, StoreError> {
        let mut by: BTreeMap<i64, Vec<StoredRecord>> = BTreeMap::new();
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let cols: Vec<String> = RECORD_COLS.split(", ").map(|c| format!("r.{c}")).collect();
        for chunk in ids.chunks(IDS_CHUNK) {
            let sql = self
                .dialect
                .transitions
                .replace("{cols}", &cols.join(", "))
                .replace("{kinds}", TRANSITION_KINDS)
                .replace("{ids}", &vec!["?"; chunk.len()].join(", "));
            let mut q = sqlx::query_as::<DB, TransitionRow>(self.dialect.sql(sql)).bind(limit);
            for id in chunk {
                q = q.bind(*id);
            }
            let rows = q
                .fetch_all(self.pool)
                .await
                .map_err(query_err("last transitions"))?;
            for r in rows {
                let rec: RecordRow = (r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8);
                by.entry(r.0).or_default().push(stored_record(rec));
            }
        }
        Ok(by
            .into_iter()
            .map(|(id, mut v)| {
                // More than `limit` only when several share the cut-off time.
                v.sort_by_key(|r| std::cmp::Reverse((r.at_ms, r.seq)));
                v.truncate(limit as usize);
                v.sort_by_key(|r| r.seq);
                (id, v)
            })
            .collect())
    }
}
