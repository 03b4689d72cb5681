//! The PostgreSQL store's storage figures (`collector::storage`): every
//! table of the store's schema with its rows (counted) and its bytes
//! (heap and TOAST, indexes) from PostgreSQL's size functions, and the oldest
//! raw minute from the indexes retention uses.

use crate::collector::store::sql::{OLDEST_RAW, query_err};
use crate::collector::store::{StorageFacts, StorageSummary, StoreError, TableSize};
use sqlx::{AssertSqlSafe, PgPool};

/// The store's tables (of the schema the connection works in): name, bytes
/// without indexes, bytes of indexes.
const TABLES: &str = "SELECT c.relname::text, \
     (pg_total_relation_size(c.oid) - pg_indexes_size(c.oid))::bigint, \
     pg_indexes_size(c.oid)::bigint \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
     ORDER BY 1";

/// This schema's tables and indexes together, and the oldest raw minute.
pub(super) async fn summary(pool: &PgPool) -> Result<StorageSummary, StoreError> {
    let database_bytes: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
    )
    .fetch_one(pool)
    .await
    .map_err(query_err("measure the schema"))?;
    Ok(StorageSummary {
        database_bytes,
        oldest_raw_ms: oldest_raw(pool).await?,
    })
}

/// Placed time of the oldest raw minute summary kept.
async fn oldest_raw(pool: &PgPool) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(OLDEST_RAW)
        .fetch_one(pool)
        .await
        .map_err(query_err("find the oldest raw minute"))
}

/// Every table's rows and bytes (counting the rows reads every table).
pub(super) async fn facts(pool: &PgPool) -> Result<StorageFacts, StoreError> {
    let sizes: Vec<(String, i64, i64)> = sqlx::query_as(TABLES)
        .fetch_all(pool)
        .await
        .map_err(query_err("measure the tables"))?;
    let mut tables = Vec::with_capacity(sizes.len());
    for (table, table_bytes, index_bytes) in sizes {
        // The name comes from the catalogue; quoted as an identifier all the same.
        let count = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
        let rows: i64 = sqlx::query_scalar(AssertSqlSafe(count))
            .fetch_one(pool)
            .await
            .map_err(query_err("count a table's rows"))?;
        tables.push(TableSize {
            table,
            rows,
            table_bytes,
            index_bytes,
        });
    }
    // The schema's size is the sum of what was just measured.
    let database_bytes = tables.iter().map(|t| t.table_bytes + t.index_bytes).sum();
    Ok(StorageFacts {
        backend: "postgresql",
        tables,
        database_bytes,
        free_bytes: 0,
        oldest_raw_ms: oldest_raw(pool).await?,
    })
}
