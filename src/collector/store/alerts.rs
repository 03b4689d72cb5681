//! Storage of alerts and of their outbox (migration `0006_alerts`): the
//! rows' types and decoding; the statements, the same for both dialects,
//! are in the shared SQL layer (`super::sql`). An alert row keeps the
//! engine's [`OpenAlert`] as JSON (its id and acknowledgement from the
//! row's columns); an outbox row keeps the whole [`OutboxRow`] as JSON, with
//! the columns the delivery loop selects on beside it.

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

/// A silence or maintenance window as stored (migration
/// `0008_silences_contacts`): the engine's [`Silence`], who set it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRecord {
    pub silence: crate::collector::alerts::model::Silence,
    pub created_by: String,
    pub created_ms: i64,
}

/// The row's columns: `id, target, start_ms, end_ms, reason, created_by,
/// created_ms`.
pub(crate) type SilenceRowCols = (i64, String, i64, i64, String, String, i64);

pub(crate) fn silence_record(r: SilenceRowCols) -> Result<SilenceRecord, sqlx::Error> {
    let target = crate::collector::alerts::silence::parse_target(&r.1)
        .map_err(|e| sqlx::Error::Decode(format!("alert_silences.target: {e}").into()))?;
    Ok(SilenceRecord {
        silence: crate::collector::alerts::model::Silence {
            id: r.0,
            target,
            start_ms: r.2,
            end_ms: r.3,
            reason: r.4,
        },
        created_by: r.5,
        created_ms: r.6,
    })
}
