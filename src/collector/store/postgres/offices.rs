//! Office upserts on PostgreSQL: the whole hierarchy file in one statement
//! of arrays (`UNNEST`), and the roll-ups of offices whose hours change
//! marked due again, in one transaction.

use crate::collector::store::sql::query_err;
use crate::collector::store::{Office, StoreError};
use sqlx::PgPool;
use std::collections::HashMap;

/// Insert or update `offices`; how many rows were written.
pub(super) async fn upsert(pool: &PgPool, offices: &[Office]) -> Result<usize, StoreError> {
    // One row per code, the last one given winning (as row-by-row upserts
    // would); one statement cannot update the same row twice.
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, o) in offices.iter().enumerate() {
        last.insert(&o.code, i);
    }
    let mut cols: [Vec<&str>; 5] = Default::default();
    let mut hours: Vec<Option<&str>> = Vec::new();
    for (i, o) in offices.iter().enumerate() {
        if last[o.code.as_str()] == i {
            for (col, v) in
                cols.iter_mut()
                    .zip([&o.code, &o.name, &o.division, &o.district, &o.upazila])
            {
                col.push(v);
            }
            hours.push(o.hours.as_deref());
        }
    }
    let [code, name, division, district, upazila] = cols;
    let e = query_err;
    let mut tx = pool.begin().await.map_err(e("upsert offices: begin"))?;
    // The devices of offices whose hours change: their roll-ups of the
    // `office` schedule are due again (the maintainer recomputes the
    // days whose raw records are kept).
    sqlx::query(
        "UPDATE rollup_dirty SET from_ms = LEAST(from_ms, 0), version = version + 1 \
         WHERE device_id IN (SELECT d.id FROM devices d \
         JOIN offices o ON o.code = d.office \
         JOIN UNNEST($1::text[], $2::text[]) AS n(code, hours) ON n.code = o.code \
         WHERE o.hours IS DISTINCT FROM n.hours)",
    )
    .bind(&code)
    .bind(&hours)
    .execute(&mut *tx)
    .await
    .map_err(e("upsert offices: mark roll-ups"))?;
    let done = sqlx::query(
        "INSERT INTO offices (code, name, division, district, upazila, hours) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[]) \
         ON CONFLICT (code) DO UPDATE SET name = excluded.name, \
         division = excluded.division, district = excluded.district, \
         upazila = excluded.upazila, hours = excluded.hours",
    )
    .bind(code)
    .bind(name)
    .bind(division)
    .bind(district)
    .bind(upazila)
    .bind(hours)
    .execute(&mut *tx)
    .await
    .map_err(e("upsert offices"))?;
    tx.commit().await.map_err(e("upsert offices: commit"))?;
    Ok(done.rows_affected() as usize)
}
