//! The SQLite store's storage figures (`collector::storage`): every table's
//! rows and bytes from the `dbstat` virtual table, the file's size from its
//! page counts, and the oldest raw minute from the indexes retention uses.

use crate::collector::store::sql::{OLDEST_RAW, query_err};
use crate::collector::store::{StorageFacts, StorageSummary, StoreError, TableSize};
use sqlx::SqlitePool;
use std::collections::BTreeMap;

/// The file's size and the oldest raw minute.
pub(super) async fn summary(pool: &SqlitePool) -> Result<StorageSummary, StoreError> {
    let (pages, _, page_size) = pages(pool).await?;
    Ok(StorageSummary {
        database_bytes: pages.saturating_mul(page_size),
        oldest_raw_ms: oldest_raw(pool).await?,
    })
}

/// Placed time of the oldest raw minute summary kept.
async fn oldest_raw(pool: &SqlitePool) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(OLDEST_RAW)
        .fetch_one(pool)
        .await
        .map_err(query_err("find the oldest raw minute"))
}

/// Pages in the file, pages free, bytes per page.
async fn pages(pool: &SqlitePool) -> Result<(i64, i64, i64), StoreError> {
    const OP: &str = "read the database's page counts";
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(pool)
        .await
        .map_err(query_err(OP))?;
    let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(pool)
        .await
        .map_err(query_err(OP))?;
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(pool)
        .await
        .map_err(query_err(OP))?;
    Ok((pages, free, size))
}

/// Every table's rows and bytes (one pass over every page of the file).
pub(super) async fn facts(pool: &SqlitePool) -> Result<StorageFacts, StoreError> {
    // What each b-tree is: a table (with or without rowid) or an index of one.
    let schema: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT name, type, tbl_name, COALESCE(sql LIKE '%WITHOUT ROWID%', 0) \
         FROM sqlite_schema WHERE type IN ('table', 'index')",
    )
    .fetch_all(pool)
    .await
    .map_err(query_err("read the schema"))?;
    // Per b-tree: bytes, cells on leaf pages, cells on interior pages.
    let trees: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT name, SUM(pgsize), \
         SUM(CASE WHEN pagetype = 'leaf' THEN ncell ELSE 0 END), \
         SUM(CASE WHEN pagetype = 'internal' THEN ncell ELSE 0 END) \
         FROM dbstat GROUP BY name",
    )
    .fetch_all(pool)
    .await
    .map_err(query_err("measure the tables (dbstat)"))?;
    let by_name: BTreeMap<&str, (&str, &str, bool)> = schema
        .iter()
        .map(|(n, t, tbl, wr)| (n.as_str(), (t.as_str(), tbl.as_str(), *wr)))
        .collect();
    let mut tables: BTreeMap<String, TableSize> = BTreeMap::new();
    for (name, bytes, leaf_cells, interior_cells) in trees {
        let (table, is_index, rows) = match by_name.get(name.as_str()) {
            Some(("index", tbl, _)) => (tbl.to_string(), true, 0),
            // A rowid table keeps its rows in leaf cells only; a table
            // without rowid is a b-tree of keys, one per cell, leaf or not.
            Some((_, _, true)) => (name.clone(), false, leaf_cells + interior_cells),
            _ => (name.clone(), false, leaf_cells),
        };
        let t = tables.entry(table.clone()).or_insert(TableSize {
            table,
            rows: 0,
            table_bytes: 0,
            index_bytes: 0,
        });
        if is_index {
            t.index_bytes += bytes;
        } else {
            t.table_bytes += bytes;
            t.rows += rows;
        }
    }
    let (pages, free, page_size) = pages(pool).await?;
    Ok(StorageFacts {
        backend: "sqlite",
        tables: tables.into_values().collect(),
        database_bytes: pages.saturating_mul(page_size),
        free_bytes: free.saturating_mul(page_size),
        oldest_raw_ms: oldest_raw(pool).await?,
    })
}
