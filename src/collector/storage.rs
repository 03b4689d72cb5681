//! The storage view (issue 18): how many rows and bytes each kind of data
//! takes in the collector's database, and the oldest raw minute it still
//! keeps, as `linkwatch storage` prints it, `GET /api/v1/storage` answers it
//! and `/metrics` counts it. The stores measure ([`StorageFacts`], from
//! SQLite's `dbstat` or PostgreSQL's relation sizes, see `store::sizes`); grouping and
//! rendering here are pure; [`run_gauges`] is the thin task that refreshes
//! the two cheap gauges.

use crate::collector::store::Store;
pub use crate::collector::store::{StorageFacts, StorageSummary, TableSize};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// The kinds of data, in the order the view lists them.
pub const KINDS: [&str; 6] = [
    "records",
    "minute_packs",
    "rollups",
    "alerts",
    "fleet",
    "other",
];

/// What a kind holds, for the table's legend.
pub fn kind_meaning(kind: &str) -> &'static str {
    match kind {
        "records" => "transitions, failovers, lifecycle, facts, folded minutes",
        "minute_packs" => "minute summaries and heartbeats, packed per two hours",
        "rollups" => "hour and day figures for reports",
        "alerts" => "alerts, their outbox, silences, contacts",
        "fleet" => "devices, offices, tokens, users, sessions",
        _ => "migrations and other bookkeeping",
    }
}

/// The kind a table belongs to.
pub fn kind_of(table: &str) -> &'static str {
    match table {
        "records" => "records",
        "minute_packs" | "pack_streams" | "pack_unsealed" => "minute_packs",
        t if t.starts_with("rollup_") => "rollups",
        t if t.starts_with("alert") => "alerts",
        "devices" | "offices" | "api_tokens" | "web_users" | "web_sessions" => "fleet",
        _ => "other",
    }
}

/// One kind's rows and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindSize {
    pub kind: &'static str,
    pub tables: Vec<String>,
    pub rows: i64,
    pub table_bytes: i64,
    pub index_bytes: i64,
    pub bytes: i64,
}

/// The storage view (the API's JSON; the CLI's table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageView {
    pub backend: &'static str,
    pub database_bytes: i64,
    pub free_bytes: i64,
    pub kinds: Vec<KindSize>,
    /// Oldest raw minute kept (Unix ms and RFC 3339); `null` when none.
    pub oldest_raw_minute_ms: Option<i64>,
    pub oldest_raw_minute: Option<String>,
    /// The configured `raw_retention_days` (`null`: kept for ever).
    pub raw_retention_days: Option<i64>,
}

/// Groups the measured tables by kind (kinds with no table left out).
pub fn view(facts: &StorageFacts, raw_retention_days: Option<i64>) -> StorageView {
    let mut kinds: Vec<KindSize> = KINDS
        .iter()
        .map(|&kind| KindSize {
            kind,
            tables: Vec::new(),
            rows: 0,
            table_bytes: 0,
            index_bytes: 0,
            bytes: 0,
        })
        .collect();
    let mut tables = facts.tables.clone();
    tables.sort_by(|a, b| a.table.cmp(&b.table));
    for t in &tables {
        let k = kind_of(&t.table);
        let Some(into) = kinds.iter_mut().find(|s| s.kind == k) else {
            continue;
        };
        into.tables.push(t.table.clone());
        into.rows = into.rows.saturating_add(t.rows);
        into.table_bytes = into.table_bytes.saturating_add(t.table_bytes);
        into.index_bytes = into.index_bytes.saturating_add(t.index_bytes);
        into.bytes = into.table_bytes.saturating_add(into.index_bytes);
    }
    kinds.retain(|k| !k.tables.is_empty());
    StorageView {
        backend: facts.backend,
        database_bytes: facts.database_bytes,
        free_bytes: facts.free_bytes,
        kinds,
        oldest_raw_minute_ms: facts.oldest_raw_ms,
        oldest_raw_minute: facts.oldest_raw_ms.map(crate::collector::report::ts),
        raw_retention_days,
    }
}

/// 1536 -> "1.5 KiB", in binary units.
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The view as a plain table; `when` renders a time (the CLI's zone).
pub fn render_table(v: &StorageView, when: &dyn Fn(i64) -> String) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} {:>12} {:>11} {:>11} {:>11}  holds",
        "KIND", "ROWS", "TABLES", "INDEXES", "TOTAL"
    );
    for k in &v.kinds {
        let _ = writeln!(
            out,
            "{:<13} {:>12} {:>11} {:>11} {:>11}  {}",
            k.kind,
            k.rows,
            human_bytes(k.table_bytes),
            human_bytes(k.index_bytes),
            human_bytes(k.bytes),
            kind_meaning(k.kind)
        );
    }
    let _ = writeln!(
        out,
        "database ({}): {}{}",
        v.backend,
        human_bytes(v.database_bytes),
        if v.free_bytes > 0 {
            format!(", of which {} free for reuse", human_bytes(v.free_bytes))
        } else {
            String::new()
        }
    );
    let kept = match v.raw_retention_days {
        Some(d) => format!("kept {d} days (collector.raw_retention_days)"),
        None => "kept for ever (collector.raw_retention_days = 0)".into(),
    };
    match v.oldest_raw_minute_ms {
        Some(ms) => {
            let _ = writeln!(out, "oldest raw minute: {}; {kept}", when(ms));
        }
        None => {
            let _ = writeln!(out, "oldest raw minute: none stored; {kept}");
        }
    }
    out
}

/// The storage gauges on `/metrics`: cheap to read, so refreshed often.
#[derive(Clone, Default)]
pub struct StorageGauges {
    database_bytes: Gauge,
    oldest_raw: Gauge,
}

impl StorageGauges {
    pub fn register(registry: &mut Registry) -> Self {
        let g = StorageGauges::default();
        registry.register(
            "database_bytes",
            "Size of the collector database (SQLite: the file; PostgreSQL: this schema's tables and indexes)",
            g.database_bytes.clone(),
        );
        registry.register(
            "oldest_raw_minute_timestamp_seconds",
            "Placed time of the oldest raw minute summary kept (Unix seconds; 0 when none)",
            g.oldest_raw.clone(),
        );
        g
    }

    pub fn set(&self, s: &StorageSummary) {
        self.database_bytes.set(s.database_bytes);
        self.oldest_raw
            .set(s.oldest_raw_ms.map_or(0, |ms| ms / 1000));
    }
}

/// How often [`run_gauges`] refreshes the gauges.
pub const GAUGE_EVERY: Duration = Duration::from_secs(60);

/// Refreshes the storage gauges every `every` until dropped.
pub async fn run_gauges(store: Arc<dyn Store>, gauges: StorageGauges, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.storage_summary().await {
            Ok(s) => gauges.set(&s),
            Err(e) => tracing::warn!(error = %e, "storage metrics: cannot measure the database"),
        }
    }
}

#[cfg(test)]
mod tests;
