//! Storage of alerts and of their outbox (migration `0006_alerts`), the
//! same SQL for both dialects: [`alert_sql!`] expands the statements for
//! one sqlx database, with `?` placeholders turned into `$n` for
//! PostgreSQL ([`super::dialect::numbered`]). An alert row keeps the engine's [`OpenAlert`] as
//! JSON (its id and acknowledgement from the row's columns); an outbox row
//! keeps the whole [`OutboxRow`] as JSON, with the columns the delivery
//! loop selects on beside it.

use crate::collector::alerts::model::{AlertKind, OpenAlert, Resolution};
use crate::collector::alerts::outbox::OutboxRow;
use serde::Serialize;

/// An alert as listed: its state, and when and why it closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    #[serde(flatten)]
    pub alert: OpenAlert,
    pub resolved_ms: Option<i64>,
    pub resolution: Option<Resolution>,
}

/// Which alerts to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertQuery {
    /// Only open ones.
    pub open_only: bool,
    /// Also closed ones opened at or after this (ignored with `open_only`).
    pub since_ms: i64,
    /// Only alerts whose id is below this (paging back), if set.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Outbox rows to read: the pending ones, and those delivered since
/// `delivered_since_ms` (the rate limits count them).
pub(crate) const OUTBOX_READ_LIMIT: i64 = 10_000;

pub(crate) fn json_err(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// The row's columns: `id, state, acked_by, acked_ms, resolved_ms,
/// resolution`.
pub(crate) type AlertRowCols = (
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

pub(crate) fn alert_record(r: AlertRowCols) -> Result<AlertRecord, sqlx::Error> {
    let mut alert: OpenAlert = serde_json::from_str(&r.1).map_err(json_err)?;
    alert.id = r.0;
    alert.acked = match (r.2, r.3) {
        (Some(by), Some(at_ms)) => {
            Some(crate::collector::alerts::model::Acknowledged { by, at_ms })
        }
        _ => None,
    };
    let resolution =
        r.5.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(json_err)?;
    Ok(AlertRecord {
        alert,
        resolved_ms: r.4,
        resolution,
    })
}

pub(crate) fn outbox_row(body: &str) -> Result<OutboxRow, sqlx::Error> {
    serde_json::from_str(body).map_err(json_err)
}

pub(crate) fn kind_str(k: AlertKind) -> &'static str {
    k.as_str()
}

/// The alert and outbox statements for one dialect: `$db` the sqlx
/// database, `$sql` a function making a statement of `?`-placeholder SQL.
/// Expands to `async fn`s taking a connection (or transaction).
macro_rules! alert_sql {
    ($db:ty, $sql:expr) => {
        use $crate::collector::alerts::model::{Decisions, OpenAlert};
        use $crate::collector::alerts::outbox::OutboxRow;
        use $crate::collector::store::alerts::{
            AlertQuery, AlertRecord, AlertRowCols, OUTBOX_READ_LIMIT, alert_record, json_err,
            kind_str, outbox_row,
        };
        use sqlx::AssertSqlSafe;

        type Conn = <$db as sqlx::Database>::Connection;

        fn q(sql: &str) -> AssertSqlSafe<String> {
            AssertSqlSafe($sql(sql))
        }

        const ALERT_COLS: &str =
            "id, state, acked_by, acked_ms, resolved_ms, resolution FROM alerts";

        pub(crate) async fn open_alerts(conn: &mut Conn) -> Result<Vec<OpenAlert>, sqlx::Error> {
            let rows: Vec<AlertRowCols> = sqlx::query_as(q(&format!(
                "SELECT {ALERT_COLS} WHERE resolved_ms IS NULL ORDER BY id"
            )))
            .fetch_all(&mut *conn)
            .await?;
            rows.into_iter()
                .map(|r| alert_record(r).map(|a| a.alert))
                .collect()
        }

        pub(crate) async fn list_alerts(
            conn: &mut Conn,
            f: &AlertQuery,
        ) -> Result<Vec<AlertRecord>, sqlx::Error> {
            let open = if f.open_only {
                "resolved_ms IS NULL"
            } else {
                "(resolved_ms IS NULL OR opened_ms >= ?)"
            };
            let sql = format!("SELECT {ALERT_COLS} WHERE {open} AND id < ? ORDER BY id DESC LIMIT ?");
            let mut query = sqlx::query_as::<_, AlertRowCols>(q(&sql));
            if !f.open_only {
                query = query.bind(f.since_ms);
            }
            let rows = query
                .bind(f.before_id.unwrap_or(i64::MAX))
                .bind(f.limit)
                .fetch_all(&mut *conn)
                .await?;
            rows.into_iter().map(alert_record).collect()
        }

        pub(crate) async fn alert_by_id(
            conn: &mut Conn,
            id: i64,
        ) -> Result<Option<AlertRecord>, sqlx::Error> {
            let row: Option<AlertRowCols> =
                sqlx::query_as(q(&format!("SELECT {ALERT_COLS} WHERE id = ?")))
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            row.map(alert_record).transpose()
        }

        /// Acknowledge an open, not yet acknowledged alert; false otherwise.
        pub(crate) async fn ack_alert(
            conn: &mut Conn,
            id: i64,
            by: &str,
            now_ms: i64,
        ) -> Result<bool, sqlx::Error> {
            let done = sqlx::query(q("UPDATE alerts SET acked_by = ?, acked_ms = ? \
                 WHERE id = ? AND resolved_ms IS NULL AND acked_ms IS NULL"))
            .bind(by)
            .bind(now_ms)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() > 0)
        }

        /// Apply one evaluation's decisions and insert the outbox rows
        /// `plan` makes of each notification (by its index and alert id),
        /// in the caller's transaction. The ids of the opened alerts.
        pub(crate) async fn apply(
            conn: &mut Conn,
            d: &Decisions,
            plan: &(dyn Fn(usize, i64) -> Vec<OutboxRow> + Send + Sync),
        ) -> Result<Vec<i64>, sqlx::Error> {
            let mut ids = Vec::with_capacity(d.open.len());
            for n in &d.open {
                let state = serde_json::to_string(&n.with_id(0)).map_err(json_err)?;
                let id: i64 = sqlx::query_scalar(q(
                    "INSERT INTO alerts (alert_key, kind, office, device, since_ms, opened_ms, \
                     state) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                ))
                .bind(n.key.to_string())
                .bind(kind_str(n.kind))
                .bind(n.office.as_deref())
                .bind(n.key.subject.device_name())
                .bind(n.since_ms)
                .bind(n.opened_ms)
                .bind(state)
                .fetch_one(&mut *conn)
                .await?;
                ids.push(id);
            }
            for u in &d.update {
                let row: Option<String> =
                    sqlx::query_scalar(q("SELECT state FROM alerts WHERE id = ?"))
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
                sqlx::query(q("UPDATE alerts SET state = ? WHERE id = ?"))
                    .bind(state)
                    .bind(u.id)
                    .execute(&mut *conn)
                    .await?;
            }
            for r in &d.resolve {
                let why = serde_json::to_string(r).map_err(json_err)?;
                sqlx::query(q(
                    "UPDATE alerts SET resolved_ms = ?, resolution = ? \
                     WHERE id = ? AND resolved_ms IS NULL",
                ))
                .bind(r.at_ms)
                .bind(why)
                .bind(r.id)
                .execute(&mut *conn)
                .await?;
            }
            for (k, n) in d.notify.iter().enumerate() {
                let id = match n.alert {
                    $crate::collector::alerts::model::AlertRef::Id(id) => id,
                    $crate::collector::alerts::model::AlertRef::New(i) => match ids.get(i) {
                        Some(id) => *id,
                        None => continue,
                    },
                };
                for row in plan(k, id) {
                    put_outbox(&mut *conn, &row, true).await?;
                }
            }
            Ok(ids)
        }

        /// Insert a new outbox row (`insert`: kept as it is when its dedupe
        /// key exists), or write a row's new state.
        pub(crate) async fn put_outbox(
            conn: &mut Conn,
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
            let done = sqlx::query(q(sql))
                .bind(row.state.as_str())
                .bind(row.next_attempt_ms)
                .bind(row.done_ms)
                .bind(body)
                .bind(row.alert_id)
                .bind(row.dedupe_key.as_str())
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        /// Claim a pending row for an attempt: written as `claimed` only if
        /// it is still pending and due at `was_next_ms` (no other replica or
        /// round claimed it meanwhile).
        pub(crate) async fn claim_outbox(
            conn: &mut Conn,
            claimed: &OutboxRow,
            was_next_ms: i64,
        ) -> Result<bool, sqlx::Error> {
            let body = serde_json::to_string(claimed).map_err(json_err)?;
            let done = sqlx::query(q(
                "UPDATE alert_outbox SET next_attempt_ms = ?, body = ? \
                 WHERE dedupe_key = ? AND state = 'pending' AND next_attempt_ms = ?",
            ))
            .bind(claimed.next_attempt_ms)
            .bind(body)
            .bind(claimed.dedupe_key.as_str())
            .bind(was_next_ms)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() > 0)
        }

        /// The pending rows, and those delivered since `delivered_since_ms`.
        pub(crate) async fn outbox_rows(
            conn: &mut Conn,
            delivered_since_ms: i64,
        ) -> Result<Vec<OutboxRow>, sqlx::Error> {
            let bodies: Vec<String> = sqlx::query_scalar(q(
                "SELECT body FROM alert_outbox WHERE state = 'pending' \
                 OR (state = 'delivered' AND done_ms >= ?) ORDER BY next_attempt_ms LIMIT ?",
            ))
            .bind(delivered_since_ms)
            .bind(OUTBOX_READ_LIMIT)
            .fetch_all(&mut *conn)
            .await?;
            bodies.iter().map(|b| outbox_row(b)).collect()
        }

        /// Every outbox row of an alert.
        pub(crate) async fn outbox_of(
            conn: &mut Conn,
            alert_id: i64,
        ) -> Result<Vec<OutboxRow>, sqlx::Error> {
            let bodies: Vec<String> = sqlx::query_scalar(q(
                "SELECT body FROM alert_outbox WHERE alert_id = ? ORDER BY dedupe_key",
            ))
            .bind(alert_id)
            .fetch_all(&mut *conn)
            .await?;
            bodies.iter().map(|b| outbox_row(b)).collect()
        }
    };
}

pub(crate) use alert_sql;

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(
            super::pg("UPDATE t SET a = ? WHERE b = ? AND c = ?"),
            "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"
        );
    }
}
