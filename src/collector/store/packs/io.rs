//! Packs in the database, generic over the sqlx database: which records of
//! a batch ingest packs ([`split`]; [`super::tails`] extends the packs),
//! records that move from `records` into packs once `acked` covers them
//! ([`compact`]), reads merged with `records` ([`by_seq`], [`by_time`]) and
//! retention ([`delete_before`]).

use super::tails::{TailRow, add, from_span, load_open};
use super::{
    CHUNK, Entry, MAX_SPAN, Pack, SPAN_MS, Stream, Tail, decode, encode, packable, span_start,
};
use crate::collector::model::StoredRecord;
use crate::collector::store::dialect::{Affected, Dialect};
use crate::collector::store::follows;
use crate::collector::store::group::{Job, Row};
use crate::wire::v1::Body;
use sqlx::database::HasStatementCache;
use sqlx::{Database, Pool, QueryBuilder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Pack the per-minute records (on by default). Off, every record is a row
/// of `records`, as before migration 0007: for benchmarks comparing both.
static PACKING: AtomicBool = AtomicBool::new(true);

/// Turn packing on or off for this process (see [`PACKING`]).
pub fn set_packing(on: bool) {
    PACKING.store(on, Ordering::Relaxed);
}

/// Packs read per step by sequence number.
const PAGE: i64 = 64;

const COLS: &str = "p.device_id, p.first_seq, s.kind, s.link, s.link_kind, s.boot_id, p.body";
/// Packs with their streams (migration 0011).
const PACKS: &str = "minute_packs p JOIN pack_streams s ON s.id = p.stream_id";
/// Columns [`COLS`] of a pack row.
pub(crate) type PackRow = (i64, i64, String, String, String, String, Vec<u8>);

fn pack(r: PackRow) -> Result<Pack, sqlx::Error> {
    let entries = decode(&r.2, &r.6).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    if entries.is_empty() {
        return Err(sqlx::Error::Decode("minute pack without entries".into()));
    }
    Ok(Pack {
        device_id: r.0,
        first_seq: r.1,
        stream: Stream::read(&r.2, r.3, r.4, r.5),
        entries,
    })
}

/// What ingest does with a batch.
pub(in crate::collector::store) struct Split<'a> {
    /// Records to pack: contiguous from `acked`, so `acked` covers them
    /// once written.
    pub packed: Vec<(Stream, Entry)>,
    /// Records to store as rows of `records`.
    pub rows: Vec<&'a Row>,
    /// Packed what it could: nothing to [`compact`] after it.
    pub simple: bool,
}

/// Split a batch of a device with `acked` and `beyond` records stored
/// beyond it. Only when nothing is stored beyond `acked` (so no fresh
/// record can be a duplicate) and the fresh records are in order and all
/// beyond `acked` are any packed: those of the run from `acked` on that
/// packs hold. Everything else is rows (and moves into packs with
/// [`compact`] once `acked` covers it).
pub(in crate::collector::store) fn split(job: &Job, acked: i64, beyond: i64) -> Split<'_> {
    let fresh: Vec<&Row> = job.fresh(acked).collect();
    let simple = PACKING.load(Ordering::Relaxed)
        && beyond == 0
        && fresh.windows(2).all(|w| w[0].seq_end < w[1].seq)
        && fresh.iter().all(|r| r.seq > acked);
    if !simple {
        return Split {
            packed: Vec::new(),
            rows: fresh,
            simple: false,
        };
    }
    let mut split = Split {
        packed: Vec::new(),
        rows: Vec::new(),
        simple: true,
    };
    let mut h = acked;
    for r in fresh {
        if follows(h, r.seq) {
            h = h.max(r.seq_end);
            if let Some((kind, link, link_kind, data)) = &r.pack {
                let stream = Stream {
                    kind,
                    link: link.clone(),
                    link_kind: link_kind.clone(),
                    boot_id: r.boot_id.clone(),
                };
                let e = Entry {
                    seq: r.seq,
                    at_ms: r.at_ms,
                    mono_ms: r.mono_ms,
                    received_ms: job.now_ms,
                    data: data.clone(),
                };
                split.packed.push((stream, e));
                continue;
            }
        }
        split.rows.push(r);
    }
    split
}

/// Move the records of `device_id` packs hold with sequence numbers in
/// `(from_seq, to_seq]` (what `acked` just came to cover) from `records`
/// into `packs` (saved by the caller).
pub(in crate::collector::store) async fn compact<DB>(
    conn: &mut DB::Connection,
    dialect: &Dialect,
    device_id: i64,
    from_seq: i64,
    to_seq: i64,
    packs: &mut HashMap<i64, Vec<Tail>>,
) -> Result<(), sqlx::Error>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    (i64, i64, i64, String, String, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
    TailRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    if to_seq <= from_seq || !PACKING.load(Ordering::Relaxed) {
        return Ok(());
    }
    let sql = "SELECT seq, at_ms, mono_ms, boot_id, body, received_ms FROM records \
               WHERE device_id = ? AND seq > ? AND seq <= ? AND seq_end = seq \
               AND kind IN ('link_minutes', 'heartbeat') ORDER BY seq";
    let rows: Vec<(i64, i64, i64, String, String, i64)> = sqlx::query_as(dialect.sql(sql))
        .bind(device_id)
        .bind(from_seq)
        .bind(to_seq)
        .fetch_all(&mut *conn)
        .await?;
    let mut entries = Vec::new();
    for (seq, at_ms, mono_ms, boot_id, body, received_ms) in rows {
        // Only what reads back byte for byte (JSON floats do not always
        // parse to the value printed) moves; the rest stays rows.
        let Ok(parsed) = serde_json::from_str::<Body>(&body) else {
            continue;
        };
        if serde_json::to_string(&parsed).ok().as_deref() != Some(body.as_str()) {
            continue;
        }
        if let Some((kind, link, link_kind, data)) = packable(&parsed, false) {
            let stream = Stream {
                kind,
                link,
                link_kind,
                boot_id,
            };
            let e = Entry {
                seq,
                at_ms,
                mono_ms,
                received_ms,
                data,
            };
            entries.push((stream, e));
        }
    }
    let Some(from_ms) = from_span(&entries) else {
        return Ok(());
    };
    let seqs: Vec<i64> = entries.iter().map(|(_, e)| e.seq).collect();
    load_open::<DB>(conn, &[(device_id, from_ms)], packs).await?;
    add(packs, device_id, entries);
    for chunk in seqs.chunks(CHUNK) {
        let mut q = QueryBuilder::<DB>::new("DELETE FROM records WHERE device_id = ");
        q.push_bind(device_id).push(" AND seq IN (");
        let mut list = q.separated(", ");
        for &s in chunk {
            list.push_bind(s);
        }
        q.push(")");
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Merge `rows` and `more` by sequence number, at most `limit`.
fn merge(rows: Vec<StoredRecord>, more: Vec<StoredRecord>, limit: usize) -> Vec<StoredRecord> {
    if more.is_empty() {
        return rows;
    }
    let mut out: Vec<StoredRecord> = rows.into_iter().chain(more).collect();
    out.sort_by_key(|r| r.seq);
    out.truncate(limit);
    out
}

/// [`crate::collector::store::Store::records`]: `rows` are the first
/// `limit` rows of `records` with `seq >= from_seq`; the packs' entries
/// merged in.
pub(in crate::collector::store) async fn by_seq<DB>(
    pool: &Pool<DB>,
    dialect: &Dialect,
    device_id: i64,
    from_seq: i64,
    limit: i64,
    rows: Vec<StoredRecord>,
) -> Result<Vec<StoredRecord>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    PackRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let limit_n = usize::try_from(limit).unwrap_or(0);
    // Nothing of the packs beyond the last row read when the page is full.
    let to_seq = match rows.last() {
        Some(r) if rows.len() >= limit_n => r.seq,
        _ => i64::MAX,
    };
    let mut cursor = from_seq.saturating_sub(MAX_SPAN + 1);
    let mut more = Vec::new();
    loop {
        let sql = format!(
            "SELECT {COLS} FROM {PACKS} WHERE p.device_id = ? AND p.first_seq > ? \
             AND p.first_seq <= ? AND p.last_seq >= ? ORDER BY p.first_seq LIMIT ?"
        );
        let page: Vec<PackRow> = sqlx::query_as(dialect.sql(sql))
            .bind(device_id)
            .bind(cursor)
            .bind(to_seq)
            .bind(from_seq)
            .bind(PAGE)
            .fetch_all(pool)
            .await?;
        let full = page.len() as i64 == PAGE;
        for r in page {
            let p = pack(r)?;
            cursor = p.first_seq;
            more.extend(
                p.entries
                    .iter()
                    .filter(|e| e.seq >= from_seq && e.seq <= to_seq)
                    .map(|e| p.record(e)),
            );
        }
        // Records at or below the last pack's first seq are all read.
        let done = rows.iter().filter(|r| r.seq <= cursor).count()
            + more.iter().filter(|r| r.seq <= cursor).count();
        if !full || done >= limit_n {
            break;
        }
    }
    Ok(merge(rows, more, limit_n))
}

/// [`crate::collector::store::Store::records_between`]: `rows` are the rows
/// of `records` placed in `[from_ms, to_ms)`; the packs' entries merged in.
pub(in crate::collector::store) async fn by_time<DB>(
    pool: &Pool<DB>,
    dialect: &Dialect,
    device_id: i64,
    from_ms: i64,
    to_ms: i64,
    rows: Vec<StoredRecord>,
) -> Result<Vec<StoredRecord>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    PackRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    // A pack ends within the span it starts in: one ending at or after
    // `from_ms` starts at or after that span's start.
    let sql = format!(
        "SELECT {COLS} FROM {PACKS} WHERE p.device_id = ? AND p.first_at_ms >= ? \
         AND p.first_at_ms < ? AND p.last_at_ms >= ?"
    );
    let packs: Vec<PackRow> = sqlx::query_as(dialect.sql(sql))
        .bind(device_id)
        .bind(span_start(from_ms))
        .bind(to_ms)
        .bind(from_ms)
        .fetch_all(pool)
        .await?;
    let mut more = Vec::new();
    for r in packs {
        let p = pack(r)?;
        more.extend(
            p.entries
                .iter()
                .filter(|e| e.at_ms >= from_ms && e.at_ms < to_ms)
                .map(|e| p.record(e)),
        );
    }
    Ok(merge(rows, more, usize::MAX))
}

/// Retention of packed link summaries placed before `before_ms`, inside the
/// caller's write transaction: whole packs deleted, packs reaching over
/// `before_ms` rewritten in place without their older entries. Stops once `limit`
/// entries are gone (a pack over it) or none is left; how many.
pub(in crate::collector::store) async fn delete_before<DB>(
    conn: &mut DB::Connection,
    dialect: &Dialect,
    before_ms: i64,
    limit: i64,
) -> Result<u64, sqlx::Error>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    Vec<u8>: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    DB::QueryResult: Affected,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    PackRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let limit = u64::try_from(limit).unwrap_or(0).max(1);
    // About `limit` entries of full packs per statement.
    let page = (limit / (SPAN_MS / 60_000) as u64).clamp(1, CHUNK as u64) as i64;
    let mut count = 0_u64;
    while count < limit {
        let sql = "DELETE FROM minute_packs WHERE (device_id, first_seq) IN \
                   (SELECT device_id, first_seq FROM minute_packs WHERE minutes = 1 \
                   AND first_at_ms < ? AND last_at_ms < ? LIMIT ?) RETURNING CAST(n AS BIGINT)";
        let gone: Vec<(i64,)> = sqlx::query_as(dialect.sql(sql))
            .bind(before_ms)
            .bind(before_ms)
            .bind(page)
            .fetch_all(&mut *conn)
            .await?;
        count += gone.iter().map(|&(n,)| n as u64).sum::<u64>();
        if (gone.len() as i64) < page {
            break;
        }
    }
    while count < limit {
        let sql = format!(
            "SELECT {COLS} FROM {PACKS} WHERE p.minutes = 1 \
             AND p.first_at_ms < ? AND p.last_at_ms >= ? LIMIT ?"
        );
        let reaching: Vec<PackRow> = sqlx::query_as(dialect.sql(sql))
            .bind(before_ms)
            .bind(before_ms)
            .bind(page)
            .fetch_all(&mut *conn)
            .await?;
        let full = reaching.len() as i64 == page;
        for r in reaching {
            let mut p = pack(r)?;
            let old_first = p.first_seq;
            let before = p.entries.len();
            // It reaches over `before_ms`: entries are left.
            p.entries.retain(|e| e.at_ms >= before_ms);
            count += (before - p.entries.len()) as u64;
            let sql = "UPDATE minute_packs SET first_seq = ?, first_at_ms = ?, n = ?, body = ? \
                       WHERE device_id = ? AND first_seq = ?";
            sqlx::query(dialect.sql(sql))
                .bind(p.entries[0].seq)
                .bind(p.first_at_ms())
                .bind(p.entries.len() as i64)
                .bind(encode(&p.entries))
                .bind(p.device_id)
                .bind(old_first)
                .execute(&mut *conn)
                .await?;
        }
        if !full {
            break;
        }
    }
    Ok(count)
}
