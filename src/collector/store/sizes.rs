//! What a store measures of itself for the storage view
//! (`collector::storage`): each table's rows and bytes, the database's size
//! and the oldest raw minute kept. The adapters fill these in
//! (`sqlite/sizes.rs`, `postgres/sizes.rs`).

/// One table as a store measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    pub table: String,
    pub rows: i64,
    /// The table itself (with overflow or TOAST pages).
    pub table_bytes: i64,
    /// All its indexes.
    pub index_bytes: i64,
}

/// What a store measured: every table of the schema, the whole database
/// and the oldest raw minute summary kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFacts {
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    pub tables: Vec<TableSize>,
    /// The database file (SQLite, pages in use and free) or this schema's
    /// relations (PostgreSQL).
    pub database_bytes: i64,
    /// Pages the file keeps free for reuse (SQLite; 0 on PostgreSQL).
    pub free_bytes: i64,
    /// Placed time of the oldest raw minute summary kept (packed or a row).
    pub oldest_raw_ms: Option<i64>,
}

/// The cheap part of [`StorageFacts`], read for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageSummary {
    pub database_bytes: i64,
    pub oldest_raw_ms: Option<i64>,
}
