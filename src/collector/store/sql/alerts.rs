//! The alert and outbox statements both adapters share (see [`super`]; the
//! rows' types are in [`crate::collector::store::alerts`]).

use super::{Affected, Sql, query_err};
use crate::collector::alerts::model::{AlertRef, Decisions, OpenAlert};
use crate::collector::alerts::outbox::OutboxRow;
use crate::collector::store::StoreError;
use crate::collector::store::alerts::{
    AlertQuery, AlertRecord, AlertRowCols, OUTBOX_READ_LIMIT, alert_record, json_err, kind_str,
    outbox_row,
};
use sqlx::Database;

const ALERT_COLS: &str = "id, state, acked_by, acked_ms, resolved_ms, resolution FROM alerts";

impl<'a, DB> Sql<'a, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    DB::QueryResult: Affected,
    usize: sqlx::ColumnIndex<DB::Row>,
    i64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'s> &'s str: sqlx::Encode<'s, DB> + sqlx::Type<DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    pub async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StoreError> {
        let rows: Vec<AlertRowCols> = sqlx::query_as(self.dialect.sql(format!(
            "SELECT {ALERT_COLS} WHERE resolved_ms IS NULL ORDER BY id"
        )))
        .fetch_all(self.pool)
        .await
        .map_err(query_err("open alerts"))?;
        rows.into_iter()
            .map(|r| alert_record(r).map(|a| a.alert))
            .collect::<Result<_, _>>()
            .map_err(query_err("open alerts"))
    }

    pub async fn list_alerts(&self, f: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let open = if f.open_only {
            "resolved_ms IS NULL"
        } else {
            "(resolved_ms IS NULL OR opened_ms >= ?)"
        };
        let sql = format!("SELECT {ALERT_COLS} WHERE {open} AND id < ? ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query_as::<DB, AlertRowCols>(self.dialect.sql(sql));
        if !f.open_only {
            query = query.bind(f.since_ms);
        }
        let e = query_err("list alerts");
        match query
            .bind(f.before_id.unwrap_or(i64::MAX))
            .bind(f.limit)
            .fetch_all(self.pool)
            .await
        {
            Ok(rows) => rows.into_iter().map(alert_record).collect(),
            Err(err) => Err(err),
        }
        .map_err(e)
    }

    pub async fn alert_by_id(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        let sql = format!("SELECT {ALERT_COLS} WHERE id = ?");
        sqlx::query_as::<DB, AlertRowCols>(self.dialect.sql(sql))
            .bind(id)
            .fetch_optional(self.pool)
            .await
            .and_then(|row| row.map(alert_record).transpose())
            .map_err(query_err("alert by id"))
    }

    pub async fn ack_alert(&self, id: i64, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("acknowledge alert").await?;
        let sql = "UPDATE alerts SET acked_by = ?, acked_ms = ? \
                   WHERE id = ? AND resolved_ms IS NULL AND acked_ms IS NULL";
        let done = sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(by)
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(e("acknowledge alert"))?;
        tx.commit().await.map_err(e("acknowledge alert: commit"))?;
        Ok(done.affected() > 0)
    }

    pub async fn apply_alerts(
        &self,
        d: &Decisions,
        plan: &(dyn Fn(usize, i64) -> Vec<OutboxRow> + Send + Sync),
    ) -> Result<Vec<i64>, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("apply alerts").await?;
        let ids = self
            .apply(&mut tx, d, plan)
            .await
            .map_err(e("apply alerts"))?;
        tx.commit().await.map_err(e("apply alerts: commit"))?;
        Ok(ids)
    }

    /// [`Sql::apply_alerts`] inside the caller's transaction.
    async fn apply(
        &self,
        conn: &mut DB::Connection,
        d: &Decisions,
        plan: &(dyn Fn(usize, i64) -> Vec<OutboxRow> + Send + Sync),
    ) -> Result<Vec<i64>, sqlx::Error> {
        let sql = |s: &'static str| self.dialect.sql(s);
        let mut ids = Vec::with_capacity(d.open.len());
        for n in &d.open {
            let state = serde_json::to_string(&n.with_id(0)).map_err(json_err)?;
            let id: i64 = sqlx::query_scalar(sql(
                "INSERT INTO alerts (alert_key, kind, office, device, since_ms, opened_ms, \
                 state) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(n.key.to_string())
            .bind(kind_str(n.kind))
            .bind(n.office.clone())
            .bind(n.key.subject.device_name().map(str::to_string))
            .bind(n.since_ms)
            .bind(n.opened_ms)
            .bind(state)
            .fetch_one(&mut *conn)
            .await?;
            ids.push(id);
        }
        for u in &d.update {
            let row: Option<String> =
                sqlx::query_scalar(sql("SELECT state FROM alerts WHERE id = ?"))
                    .bind(u.id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(row) = row else { continue };
            let mut a: OpenAlert = serde_json::from_str(&row).map_err(json_err)?;
            a.id = u.id;
            let mut one = vec![a];
            let mut none = 0;
            Decisions {
                update: vec![u.clone()],
                ..Decisions::default()
            }
            .apply(&mut one, &mut none);
            let state = serde_json::to_string(&one[0]).map_err(json_err)?;
            sqlx::query::<DB>(sql("UPDATE alerts SET state = ? WHERE id = ?"))
                .bind(state)
                .bind(u.id)
                .execute(&mut *conn)
                .await?;
        }
        for r in &d.resolve {
            let why = serde_json::to_string(r).map_err(json_err)?;
            sqlx::query::<DB>(sql("UPDATE alerts SET resolved_ms = ?, resolution = ? \
                 WHERE id = ? AND resolved_ms IS NULL"))
            .bind(r.at_ms)
            .bind(why)
            .bind(r.id)
            .execute(&mut *conn)
            .await?;
        }
        for (k, n) in d.notify.iter().enumerate() {
            let id = match n.alert {
                AlertRef::Id(id) => id,
                AlertRef::New(i) => match ids.get(i) {
                    Some(id) => *id,
                    None => continue,
                },
            };
            for row in plan(k, id) {
                self.put_outbox(&mut *conn, &row, true).await?;
            }
        }
        Ok(ids)
    }

    /// Insert a new outbox row (`insert`: kept as it is when its dedupe
    /// key exists), or write a row's new state.
    async fn put_outbox(
        &self,
        conn: &mut DB::Connection,
        row: &OutboxRow,
        insert: bool,
    ) -> Result<bool, sqlx::Error> {
        let body = serde_json::to_string(row).map_err(json_err)?;
        let sql = if insert {
            "INSERT INTO alert_outbox (state, next_attempt_ms, done_ms, body, alert_id, \
             dedupe_key) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING"
        } else {
            "UPDATE alert_outbox SET state = ?, next_attempt_ms = ?, done_ms = ?, body = ? \
             WHERE alert_id = ? AND dedupe_key = ?"
        };
        let done = sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(row.state.as_str())
            .bind(row.next_attempt_ms)
            .bind(row.done_ms)
            .bind(body)
            .bind(row.alert_id)
            .bind(row.dedupe_key.as_str())
            .execute(&mut *conn)
            .await?;
        Ok(done.affected() > 0)
    }

    pub async fn outbox_rows(&self, delivered_since_ms: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = "SELECT body FROM alert_outbox WHERE state = 'pending' \
                   OR (state = 'delivered' AND done_ms >= ?) ORDER BY next_attempt_ms LIMIT ?";
        sqlx::query_scalar::<DB, String>(self.dialect.sql(sql))
            .bind(delivered_since_ms)
            .bind(OUTBOX_READ_LIMIT)
            .fetch_all(self.pool)
            .await
            .and_then(|bodies| bodies.iter().map(|b| outbox_row(b)).collect())
            .map_err(query_err("outbox rows"))
    }

    pub async fn claim_outbox(
        &self,
        claimed: &OutboxRow,
        was_next_ms: i64,
    ) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("claim outbox row").await?;
        let body = serde_json::to_string(claimed)
            .map_err(json_err)
            .map_err(e("claim outbox row"))?;
        let sql = "UPDATE alert_outbox SET next_attempt_ms = ?, body = ? \
                   WHERE dedupe_key = ? AND state = 'pending' AND next_attempt_ms = ?";
        let done = sqlx::query::<DB>(self.dialect.sql(sql))
            .bind(claimed.next_attempt_ms)
            .bind(body)
            .bind(claimed.dedupe_key.as_str())
            .bind(was_next_ms)
            .execute(&mut *tx)
            .await
            .map_err(e("claim outbox row"))?;
        tx.commit().await.map_err(e("claim outbox row: commit"))?;
        Ok(done.affected() > 0)
    }

    pub async fn settle_outbox(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("settle outbox row").await?;
        self.put_outbox(&mut tx, row, false)
            .await
            .map_err(e("settle outbox row"))?;
        tx.commit().await.map_err(e("settle outbox row: commit"))?;
        Ok(())
    }

    pub async fn outbox_of(&self, alert_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = "SELECT body FROM alert_outbox WHERE alert_id = ? ORDER BY dedupe_key";
        sqlx::query_scalar::<DB, String>(self.dialect.sql(sql))
            .bind(alert_id)
            .fetch_all(self.pool)
            .await
            .and_then(|bodies| bodies.iter().map(|b| outbox_row(b)).collect())
            .map_err(query_err("outbox of alert"))
    }
}
