//! The roll-up statements both adapters share (see [`super`]): the reads
//! the maintainer computes from, the dirty marks, and the day and hour rows
//! it stores and reports sum.

use super::{Affected, RECORD_COLS, RecordRow, Sql, query_err, stored_record};
use crate::collector::model::{Dirty, StoredRecord};
use crate::collector::rollup::{DayEnds, DayRow, DeviceSums, RTT_BUCKETS};
use crate::collector::store::StoreError;
use sqlx::Database;

/// Fractional roll-up columns (`sent`, `lost`, the RTT histogram) in
/// thousandths as integers: how the SQLite dialect stores them.
const MILLI: f64 = 1000.0;

/// Day and hour rows stored per statement.
const ROWS_CHUNK: usize = 200;

/// Columns of `rollup_days`, in [`push_day_rows`] order.
fn day_row_columns() -> Vec<String> {
    let mut c: Vec<String> = [
        "schedule",
        "device_id",
        "day_ms",
        "online_ms",
        "offline_ms",
        "not_running_ms",
        "no_data_ms",
        "broadband_ms",
        "wifi_ms",
        "mobile_ms",
        "outages",
        "outage_ms",
        "longest_ms",
        "head_ms",
        "tail_ms",
        "whole",
        "cont",
        "failovers",
        "sent",
        "lost",
    ]
    .map(String::from)
    .into();
    c.extend((0..RTT_BUCKETS).map(|i| format!("rtt_h{i:02}")));
    c.push("computed_ms".into());
    c
}

/// `VALUES (...), (...)` of day rows, in [`day_row_columns`] order;
/// `milli`: the fractional columns as integer thousandths.
fn push_day_rows<DB>(q: &mut sqlx::QueryBuilder<DB>, rows: &[DayRow], milli: bool)
where
    DB: Database,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'s> &'s str: sqlx::Encode<'s, DB> + sqlx::Type<DB>,
{
    q.push_values(rows, |mut b, r| {
        b.push_bind(r.schedule.as_str());
        for v in [
            r.device_id,
            r.day_ms,
            r.online_ms,
            r.offline_ms,
            r.not_running_ms,
            r.no_data_ms,
            r.broadband_ms,
            r.wifi_ms,
            r.mobile_ms,
            r.outages,
            r.outage_ms,
            r.longest_ms,
            r.head_ms,
            r.tail_ms,
        ] {
            b.push_bind(v);
        }
        b.push_bind(r.whole)
            .push_bind(r.cont)
            .push_bind(r.failovers);
        for v in [r.sent, r.lost].into_iter().chain(r.rtt) {
            if milli {
                b.push_bind((v * MILLI).round() as i64);
            } else {
                b.push_bind(v);
            }
        }
        b.push_bind(r.computed_ms);
    });
}

/// `SUM(...)` expressions of the per-device aggregate, in [`DeviceSums`] order
/// after `device_id, COUNT(*)`.
fn day_sums_select(int_cast: &str) -> String {
    let sum = |c: &str| format!("SUM({c}){int_cast}");
    let mut c = format!("device_id, COUNT(*){int_cast}");
    for col in [
        "online_ms",
        "offline_ms",
        "not_running_ms",
        "no_data_ms",
        "broadband_ms",
        "wifi_ms",
        "mobile_ms",
        "outages",
        "outage_ms",
    ] {
        c.push_str(", ");
        c.push_str(&sum(col));
    }
    c.push_str(&format!(
        ", MAX(longest_ms){int_cast}, {}, SUM(sent), SUM(lost)",
        sum("failovers")
    ));
    for i in 0..RTT_BUCKETS {
        c.push_str(&format!(", SUM(rtt_h{i:02})"));
    }
    c
}

/// A [`DeviceSums`] from an aggregate row (integer sums as i64, the rest f64,
/// or integer thousandths when `milli`).
fn device_sums<R: sqlx::Row>(r: &R, milli: bool) -> Result<DeviceSums, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    f64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let i = |k: usize| r.try_get::<i64, _>(k);
    let f = |k: usize| {
        if milli {
            r.try_get::<i64, _>(k).map(|v| v as f64 / MILLI)
        } else {
            r.try_get::<f64, _>(k)
        }
    };
    let mut rtt = [0.0; RTT_BUCKETS];
    for (k, v) in rtt.iter_mut().enumerate() {
        *v = f(15 + k)?;
    }
    Ok(DeviceSums {
        device_id: i(0)?,
        days: i(1)?,
        online_ms: i(2)?,
        offline_ms: i(3)?,
        not_running_ms: i(4)?,
        no_data_ms: i(5)?,
        broadband_ms: i(6)?,
        wifi_ms: i(7)?,
        mobile_ms: i(8)?,
        outages: i(9)?,
        outage_ms: i(10)?,
        longest_ms: i(11)?,
        failovers: i(12)?,
        sent: f(13)?,
        lost: f(14)?,
        rtt,
    })
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
    pub async fn records_between(
        &self,
        device_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredRecord>, StoreError>
    where
        for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
        super::super::packs::io::PackRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        let rows = sqlx::query_as::<DB, RecordRow>(self.dialect.sql(format!(
            "SELECT {RECORD_COLS} FROM records WHERE device_id = ? AND at_ms >= ? \
             AND at_ms < ? ORDER BY seq"
        )))
        .bind(device_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool)
        .await
        .map_err(query_err("records between"))?;
        let rows = rows.into_iter().map(stored_record).collect();
        super::super::packs::io::by_time(self.pool, self.dialect, device_id, from_ms, to_ms, rows)
            .await
            .map_err(query_err("records between: minute packs"))
    }

    pub async fn transitions_before(
        &self,
        device_id: i64,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut v = sqlx::query_as::<DB, RecordRow>(self.dialect.sql(format!(
            "SELECT {RECORD_COLS} FROM records{} WHERE device_id = ? AND at_ms < ? \
             AND kind IN ('link_state', 'lifecycle', 'failover', 'facts') \
             ORDER BY at_ms DESC LIMIT ?",
            self.dialect.transitions_hint
        )))
        .bind(device_id)
        .bind(before_ms)
        .bind(limit)
        .fetch_all(self.pool)
        .await
        .map_err(query_err("transitions before"))?;
        v.sort_by_key(|r| r.0);
        Ok(v.into_iter().map(stored_record).collect())
    }

    pub async fn dirty_due(&self, before_ms: i64, limit: i64) -> Result<Vec<Dirty>, StoreError> {
        let sql = "SELECT device_id, from_ms, version FROM rollup_dirty WHERE from_ms < ? \
                   ORDER BY from_ms LIMIT ?";
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(self.dialect.sql(sql))
            .bind(before_ms)
            .bind(limit)
            .fetch_all(self.pool)
            .await
            .map_err(query_err("dirty roll-ups"))?;
        Ok(rows.into_iter().map(dirty).collect())
    }

    pub async fn dirty_marks(&self) -> Result<Vec<Dirty>, StoreError> {
        let sql = "SELECT device_id, from_ms, version FROM rollup_dirty";
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(self.dialect.sql(sql))
            .fetch_all(self.pool)
            .await
            .map_err(query_err("roll-up marks"))?;
        Ok(rows.into_iter().map(dirty).collect())
    }

    pub async fn dirty_mark(&self, device_id: i64) -> Result<Option<Dirty>, StoreError> {
        let sql = "SELECT device_id, from_ms, version FROM rollup_dirty WHERE device_id = ?";
        let row: Option<(i64, i64, i64)> = sqlx::query_as(self.dialect.sql(sql))
            .bind(device_id)
            .fetch_optional(self.pool)
            .await
            .map_err(query_err("roll-up mark"))?;
        Ok(row.map(dirty))
    }

    pub async fn mark_all_dirty(&self, from_ms: i64) -> Result<u64, StoreError> {
        let _w = self.lock().await;
        sqlx::query::<DB>(self.dialect.sql(format!(
            "UPDATE rollup_dirty SET from_ms = {}(from_ms, ?), version = version + 1",
            self.dialect.least
        )))
        .bind(from_ms)
        .execute(self.pool)
        .await
        .map(|done| done.affected())
        .map_err(query_err("mark roll-ups"))
    }

    pub async fn has_rollups(&self, schedule: &str) -> Result<bool, StoreError> {
        let sql = "SELECT 1 FROM rollup_days WHERE schedule = ? LIMIT 1";
        sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(schedule)
            .fetch_optional(self.pool)
            .await
            .map(|found| found.is_some())
            .map_err(query_err("roll-ups present"))
    }

    pub async fn put_rollups(
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
        // Every column but the key (schedule, device_id, day_ms).
        let set: Vec<String> = cols[3..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        for chunk in rows.chunks(ROWS_CHUNK) {
            let mut q = sqlx::QueryBuilder::<DB>::new(format!(
                "INSERT INTO rollup_days ({}) ",
                cols.join(", ")
            ));
            push_day_rows(&mut q, chunk, self.dialect.milli);
            q.push(format!(
                " ON CONFLICT (schedule, device_id, day_ms) DO UPDATE SET {}",
                set.join(", ")
            ));
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(e("store roll-ups: days"))?;
        }
        let sql = "INSERT INTO rollup_timelines (device_id, day_ms, body) VALUES (?, ?, ?) \
                   ON CONFLICT (device_id, day_ms) DO UPDATE SET body = excluded.body";
        for (day, body) in timelines {
            sqlx::query::<DB>(self.dialect.sql(sql))
                .bind(device_id)
                .bind(*day)
                .bind(body.as_str())
                .execute(&mut *tx)
                .await
                .map_err(e("store roll-ups: timelines"))?;
        }
        let sql = "UPDATE rollup_dirty SET from_ms = ? WHERE device_id = ? AND version = ?";
        let moved = sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(new_from_ms)
            .bind(device_id)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(e("store roll-ups: mark"))?
            .affected()
            > 0;
        tx.commit().await.map_err(e("store roll-ups: commit"))?;
        Ok(moved)
    }

    pub async fn rollup_sums(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DeviceSums>, StoreError> {
        let sums = day_sums_select(self.dialect.int_cast);
        let sql = self.dialect.sums.replace("{sums}", &sums);
        let rows = sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(schedule)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(self.pool)
            .await
            .map_err(query_err("roll-up sums"))?;
        rows.iter()
            .map(|r| device_sums(r, self.dialect.milli))
            .collect::<Result<_, _>>()
            .map_err(query_err("roll-up sums: decode"))
    }

    pub async fn rollup_ends(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayEnds>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64, bool, bool)> =
            sqlx::query_as(self.dialect.sql(self.dialect.ends))
                .bind(schedule)
                .bind(from_day)
                .bind(to_day)
                .fetch_all(self.pool)
                .await
                .map_err(query_err("roll-up ends"))?;
        Ok(rows.into_iter().map(day_ends).collect())
    }

    pub async fn rollup_timelines(
        &self,
        device_id: i64,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let sql = "SELECT day_ms, body FROM rollup_timelines \
                   WHERE device_id = ? AND day_ms >= ? AND day_ms < ? ORDER BY day_ms";
        sqlx::query_as(self.dialect.sql(sql))
            .bind(device_id)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(self.pool)
            .await
            .map_err(query_err("roll-up timelines"))
    }

    pub async fn delete_minutes_before(&self, before_ms: i64, limit: i64) -> Result<u64, StoreError>
    where
        DB: sqlx::database::HasStatementCache,
        Vec<u8>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
        super::super::packs::io::PackRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("delete raw minutes").await?;
        // Rows: summaries stored beyond a gap, or before packs existed.
        let rows = sqlx::query::<DB>(self.dialect.sql(format!(
            "DELETE FROM records WHERE (device_id, seq) IN (SELECT device_id, seq FROM \
             records{} WHERE kind = 'link_minutes' AND at_ms < ? LIMIT ?)",
            self.dialect.minutes_hint
        )))
        .bind(before_ms)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map(|done| done.affected())
        .map_err(e("delete raw minutes"))?;
        let left = limit.saturating_sub(i64::try_from(rows).unwrap_or(i64::MAX));
        let packed = if left > 0 {
            super::super::packs::io::delete_before::<DB>(&mut *tx, self.dialect, before_ms, left)
                .await
                .map_err(e("delete raw minutes: packs"))?
        } else {
            0
        };
        tx.commit().await.map_err(e("delete raw minutes: commit"))?;
        Ok(rows + packed)
    }

    /// Seal up to `limit` packs whose span is over at `now_ms` (see
    /// [`super::super::packs::tails::seal`]); how many.
    pub async fn seal_packs(&self, now_ms: i64, limit: i64) -> Result<u64, StoreError>
    where
        DB: sqlx::database::HasStatementCache,
        Vec<u8>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        (i64, i64, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
        (i64, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
        super::super::packs::tails::TailRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("seal packs").await?;
        let n = super::super::packs::tails::seal::<DB>(&mut *tx, self.dialect, now_ms, limit)
            .await
            .map_err(e("seal packs"))?;
        tx.commit().await.map_err(e("seal packs: commit"))?;
        Ok(n)
    }

    pub async fn delete_rollups_before(
        &self,
        device_id: i64,
        schedule: &str,
        before_ms: i64,
    ) -> Result<u64, StoreError> {
        let _w = self.lock().await;
        let sql = "DELETE FROM rollup_days WHERE schedule = ? AND device_id = ? AND day_ms < ?";
        sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(schedule)
            .bind(device_id)
            .bind(before_ms)
            .execute(self.pool)
            .await
            .map(|done| done.affected())
            .map_err(query_err("delete old roll-up rows"))
    }
}
