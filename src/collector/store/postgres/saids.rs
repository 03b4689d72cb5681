//! The dashboard's judgements of each device (migration 0016) kept on
//! PostgreSQL: one statement of arrays per chunk.

use crate::collector::store::StoreError;
use crate::collector::store::sql::query_err;
use sqlx::PgPool;

/// Upsert `(device_id, mark, code)` judgements.
pub(super) async fn put(pool: &PgPool, saids: &[(i64, i64, i64)]) -> Result<(), StoreError> {
    // One statement of arrays per chunk: a whole fleet's first judgement
    // (100,000 devices) is 50 statements, not 100,000 round trips.
    for chunk in saids.chunks(2_000) {
        let ids: Vec<i64> = chunk.iter().map(|s| s.0).collect();
        let versions: Vec<i64> = chunk.iter().map(|s| s.1).collect();
        let codes: Vec<i64> = chunk.iter().map(|s| s.2).collect();
        sqlx::query(
            "INSERT INTO device_saids (device_id, version, said) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) \
             ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, \
             said = excluded.said",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&codes)
        .execute(pool)
        .await
        .map_err(query_err("keep saids"))?;
    }
    Ok(())
}
