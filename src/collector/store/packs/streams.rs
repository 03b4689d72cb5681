//! The streams of packs (migration 0011): a pack names its stream (kind,
//! link, link kind, boot) by the id of a row of `pack_streams`; [`ids`]
//! finds or adds the rows of the packs about to be inserted.

use super::CHUNK;
use super::{Stream, Tail};
use sqlx::database::HasStatementCache;
use sqlx::{Database, QueryBuilder};
use std::collections::HashMap;

/// A stream of a device.
type StreamKey = (i64, Stream);
/// Columns id, device_id, kind, link, link_kind, boot_id of `pack_streams`.
pub(crate) type StreamRow = (i64, i64, String, String, String, String);

/// The ids in `pack_streams` of the streams of `packs`, added when new.
pub(in crate::collector::store) async fn ids<DB>(
    conn: &mut DB::Connection,
    packs: &[&Tail],
) -> Result<HashMap<StreamKey, i64>, sqlx::Error>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    StreamRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let mut want: Vec<StreamKey> = packs
        .iter()
        .map(|p| (p.device_id, p.stream.clone()))
        .collect();
    want.sort_by(|a, b| {
        (a.0, a.1.kind, &a.1.link, &a.1.link_kind, &a.1.boot_id).cmp(&(
            b.0,
            b.1.kind,
            &b.1.link,
            &b.1.link_kind,
            &b.1.boot_id,
        ))
    });
    want.dedup();
    let mut ids = HashMap::with_capacity(want.len());
    // Read; add the missing ones (another writer may add them meanwhile:
    // nothing happens then); read those.
    for add in [false, true] {
        let missing: Vec<&StreamKey> = want.iter().filter(|k| !ids.contains_key(*k)).collect();
        if missing.is_empty() {
            break;
        }
        for chunk in missing.chunks(CHUNK) {
            if add {
                let mut q = QueryBuilder::<DB>::new(
                    "INSERT INTO pack_streams (device_id, kind, link, link_kind, boot_id) ",
                );
                q.push_values(chunk, |mut b, (d, s)| {
                    b.push_bind(*d)
                        .push_bind(s.kind.to_string())
                        .push_bind(s.link.clone())
                        .push_bind(s.link_kind.clone())
                        .push_bind(s.boot_id.clone());
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().persistent(false).execute(&mut *conn).await?;
            }
            let mut q = QueryBuilder::<DB>::new(
                "SELECT s.id, s.device_id, s.kind, s.link, s.link_kind, s.boot_id FROM (",
            );
            q.push_values(chunk, |mut b, (d, s)| {
                b.push_bind(*d)
                    .push_bind(s.kind.to_string())
                    .push_bind(s.link.clone())
                    .push_bind(s.link_kind.clone())
                    .push_bind(s.boot_id.clone());
            });
            q.push(
                ") AS v JOIN pack_streams s ON s.device_id = v.column1 AND s.kind = v.column2 \
                 AND s.link = v.column3 AND s.link_kind = v.column4 AND s.boot_id = v.column5",
            );
            let rows: Vec<StreamRow> = q
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            for (id, device_id, kind, link, link_kind, boot_id) in rows {
                let kind = if kind == "link_minutes" {
                    "link_minutes"
                } else {
                    "heartbeat"
                };
                let stream = Stream {
                    kind,
                    link,
                    link_kind,
                    boot_id,
                };
                ids.insert((device_id, stream), id);
            }
        }
    }
    if want.iter().any(|k| !ids.contains_key(k)) {
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(ids)
}
