//! Packs as ingest extends them, generic over the sqlx database: the packs
//! new entries may join read without their bodies ([`load_open`]), entries
//! assigned to them ([`add`]), each written as [`Tail::write`] decides
//! ([`save`]: a segment appended in place, a body rewritten, a new pack),
//! and packs of many segments whose span is over rewritten as one
//! ([`seal`], a job of the maintainer).

use super::{
    CHUNK, Entry, MOST_PARTS, SPAN_MS, Stream, Tail, Write, assign, decode, encode, span_start,
};
use crate::collector::store::dialect::{Affected, Dialect};
use sqlx::database::HasStatementCache;
use sqlx::{Database, QueryBuilder};
use std::collections::{HashMap, HashSet};

/// Columns of a pack row as ingest reads it: its key, stream, where it
/// ends, its segments and, only when it is to be rewritten whole, its body.
const COLS: &str = "p.device_id, p.first_seq, s.kind, s.link, s.link_kind, s.boot_id, \
                    p.first_at_ms, p.last_seq, p.last_at_ms, CAST(p.parts AS BIGINT)";
/// Columns [`COLS`] and the body (or NULL).
pub(crate) type TailRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<Vec<u8>>,
);

fn tail(r: TailRow) -> Result<Tail, sqlx::Error> {
    let whole = match r.10 {
        Some(body) => Some(decode(&r.2, &body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?),
        None => None,
    };
    Ok(Tail {
        device_id: r.0,
        first_seq: r.1,
        stream: Stream::read(&r.2, r.3, r.4, r.5),
        first_at_ms: r.6,
        last_seq: r.7,
        last_at_ms: r.8,
        stored: true,
        parts: r.9,
        whole,
        added: Vec::new(),
    })
}

/// The packs of each device that end at or after its time in `wants`
/// (device, from_ms, a span's start): those new entries may extend. Bodies
/// are read only of packs to be rewritten whole.
pub(in crate::collector::store) async fn load_open<DB>(
    conn: &mut DB::Connection,
    wants: &[(i64, i64)],
    packs: &mut HashMap<i64, Vec<Tail>>,
) -> Result<(), sqlx::Error>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    TailRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let body = format!("CASE WHEN p.parts = 0 OR p.parts >= {MOST_PARTS} THEN p.body END");
    for chunk in wants.chunks(CHUNK) {
        // A pack lies within one span: ending in or after the span that
        // `from_ms` starts is starting in or after it.
        for p in read::<DB>(conn, &body, chunk, "p.first_at_ms >= v.column2").await? {
            packs.entry(p.device_id).or_default().push(p);
        }
    }
    Ok(())
}

/// The packs of each device of `pairs` (device, value) whose `on` holds
/// of the value (`v.column2`), with `body` (an expression of `p.body`) as
/// their body.
async fn read<DB>(
    conn: &mut DB::Connection,
    body: &str,
    pairs: &[(i64, i64)],
    on: &str,
) -> Result<Vec<Tail>, sqlx::Error>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    TailRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let mut q = QueryBuilder::<DB>::new(format!("SELECT {COLS}, {body} FROM ("));
    q.push_values(pairs, |mut b, &(device_id, value)| {
        b.push_bind(device_id).push_bind(value);
    });
    q.push(format!(
        ") AS v JOIN minute_packs p ON p.device_id = v.column1 AND {on} \
         JOIN pack_streams s ON s.id = p.stream_id"
    ));
    let rows: Vec<TailRow> = q
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(tail).collect()
}

/// Add entries of a device to its packs (loaded with [`load_open`]).
pub(in crate::collector::store) fn add(
    packs: &mut HashMap<i64, Vec<Tail>>,
    device_id: i64,
    entries: Vec<(Stream, Entry)>,
) {
    let mine = packs.entry(device_id).or_default();
    for (stream, e) in entries {
        assign(mine, device_id, &stream, e);
    }
}

/// The earliest span start of `entries` (for [`load_open`]).
pub(in crate::collector::store) fn from_span(entries: &[(Stream, Entry)]) -> Option<i64> {
    entries.iter().map(|(_, e)| span_start(e.at_ms)).min()
}

/// Fail the batch when a pack to extend is gone (retention of a late span)
/// rather than lose its entries: the agent sends it again.
fn all_found(done: u64, expected: usize) -> Result<(), sqlx::Error> {
    if done == expected as u64 {
        Ok(())
    } else {
        Err(sqlx::Error::RowNotFound)
    }
}

/// Write the packs entries were added to: segments appended, bodies
/// rewritten, new packs inserted, and the packs that came to hold their
/// second segment listed for [`seal`] (by what the append returns, so a
/// pack sealed meanwhile is listed again).
pub(in crate::collector::store) async fn save<'p, DB>(
    conn: &mut DB::Connection,
    dialect: &Dialect,
    packs: impl Iterator<Item = &'p Tail>,
) -> Result<(), sqlx::Error>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    Vec<u8>: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    DB::QueryResult: Affected,
    (i64, i64, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
    super::streams::StreamRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let (mut appends, mut rewrites, mut inserts) = (Vec::new(), Vec::new(), Vec::new());
    for p in packs {
        match p.write() {
            Write::Keep => {}
            Write::Append(segment) => appends.push((p, segment)),
            Write::Rewrite(body) => rewrites.push((p, body)),
            Write::Insert(body) => inserts.push((p, body)),
        }
    }
    let mut second = HashSet::new();
    for chunk in appends.chunks_mut(CHUNK) {
        let mut q = QueryBuilder::<DB>::new(format!(
            "UPDATE minute_packs SET last_seq = v.column3, last_at_ms = v.column4, \
             n = minute_packs.n + v.column5, body = {}, parts = minute_packs.parts + 1 FROM (",
            dialect.pack_append
        ));
        q.push_values(chunk.iter_mut(), |mut b, (p, segment)| {
            b.push_bind(p.device_id)
                .push_bind(p.first_seq)
                .push_bind(p.last_seq)
                .push_bind(p.last_at_ms)
                .push_bind(p.added.len() as i64)
                .push_bind(std::mem::take(segment));
        });
        q.push(
            ") AS v WHERE minute_packs.device_id = v.column1 \
             AND minute_packs.first_seq = v.column2 \
             RETURNING minute_packs.device_id, minute_packs.first_seq, \
             CAST(minute_packs.parts AS BIGINT)",
        );
        let done: Vec<(i64, i64, i64)> = q
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        all_found(done.len() as u64, chunk.len())?;
        second.extend(
            done.into_iter()
                .filter(|&(_, _, parts)| parts == 2)
                .map(|(d, s, _)| (d, s)),
        );
    }
    let listed: Vec<&Tail> = appends
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| second.contains(&(p.device_id, p.first_seq)))
        .collect();
    for chunk in listed.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<DB>::new("INSERT INTO pack_unsealed (span_ms, device_id, first_seq) ");
        q.push_values(chunk, |mut b, p| {
            b.push_bind(p.span_ms())
                .push_bind(p.device_id)
                .push_bind(p.first_seq);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    for chunk in rewrites.chunks_mut(CHUNK) {
        let mut q = QueryBuilder::<DB>::new(
            "UPDATE minute_packs SET last_seq = v.column3, last_at_ms = v.column4, \
             n = v.column5, body = v.column6, parts = 1 FROM (",
        );
        q.push_values(chunk.iter_mut(), |mut b, (p, body)| {
            let stored = p.whole.as_ref().map_or(0, Vec::len);
            b.push_bind(p.device_id)
                .push_bind(p.first_seq)
                .push_bind(p.last_seq)
                .push_bind(p.last_at_ms)
                .push_bind((stored + p.added.len()) as i64)
                .push_bind(std::mem::take(body));
        });
        q.push(
            ") AS v WHERE minute_packs.device_id = v.column1 \
             AND minute_packs.first_seq = v.column2",
        );
        let done = q.build().persistent(false).execute(&mut *conn).await?;
        all_found(done.affected(), chunk.len())?;
    }
    if inserts.is_empty() {
        return Ok(());
    }
    let new: Vec<&Tail> = inserts.iter().map(|(p, _)| *p).collect();
    let ids = super::streams::ids::<DB>(conn, &new).await?;
    for chunk in inserts.chunks_mut(CHUNK) {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO minute_packs (device_id, first_seq, last_seq, first_at_ms, last_at_ms, \
             stream_id, minutes, n, body, parts) ",
        );
        q.push_values(chunk.iter_mut(), |mut b, (p, body)| {
            b.push_bind(p.device_id)
                .push_bind(p.first_seq)
                .push_bind(p.last_seq)
                .push_bind(p.first_at_ms)
                .push_bind(p.last_at_ms)
                .push_bind(ids[&(p.device_id, p.stream.clone())])
                .push_bind(i64::from(p.stream.kind == "link_minutes"))
                .push_bind(p.added.len() as i64)
                .push_bind(std::mem::take(body))
                .push_bind(1_i64);
        });
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Packs are sealed this long after their span is over: the uploads of
/// its last minutes have come in by then (late ones are listed again).
pub(crate) const SEAL_AFTER_MS: i64 = 10 * 60_000;

/// Seal up to `limit` packs listed by [`save`] whose span was over
/// [`SEAL_AFTER_MS`] before `now_ms`, inside the caller's write
/// transaction: each rewritten as one segment (the same entries, the bytes
/// of a pack written at once) and taken off the list. A pack extended
/// meanwhile stays listed for the next round. How many were taken off.
pub(in crate::collector::store) async fn seal<DB>(
    conn: &mut DB::Connection,
    dialect: &Dialect,
    now_ms: i64,
    limit: i64,
) -> Result<u64, sqlx::Error>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    Vec<u8>: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    (i64, i64, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
    (i64, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
    TailRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let before_ms = now_ms.saturating_sub(SPAN_MS + SEAL_AFTER_MS);
    let sql = "SELECT span_ms, device_id, first_seq FROM pack_unsealed WHERE span_ms <= ? \
               ORDER BY span_ms, device_id, first_seq LIMIT ?";
    let keys: Vec<(i64, i64, i64)> = sqlx::query_as(dialect.sql(sql))
        .bind(before_ms)
        .bind(limit.clamp(1, CHUNK as i64))
        .fetch_all(&mut *conn)
        .await?;
    if keys.is_empty() {
        return Ok(0);
    }
    let pairs: Vec<(i64, i64)> = keys.iter().map(|&(_, d, s)| (d, s)).collect();
    let mut sealed = Vec::new();
    for p in read::<DB>(conn, "p.body", &pairs, "p.first_seq = v.column2").await? {
        let entries = p.whole.as_deref().unwrap_or_default();
        if p.parts > 1 && !entries.is_empty() {
            sealed.push((p.device_id, p.first_seq, p.parts, encode(entries)));
        }
    }
    let mut kept = HashSet::new();
    if !sealed.is_empty() {
        let mut q =
            QueryBuilder::<DB>::new("UPDATE minute_packs SET body = v.column4, parts = 1 FROM (");
        q.push_values(
            sealed.iter_mut(),
            |mut b, (device_id, first_seq, parts, body)| {
                b.push_bind(*device_id)
                    .push_bind(*first_seq)
                    .push_bind(*parts)
                    .push_bind(std::mem::take(body));
            },
        );
        q.push(
            ") AS v WHERE minute_packs.device_id = v.column1 \
             AND minute_packs.first_seq = v.column2 AND minute_packs.parts = v.column3 \
             RETURNING minute_packs.device_id, minute_packs.first_seq",
        );
        let done: Vec<(i64, i64)> = q
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        let done: HashSet<(i64, i64)> = done.into_iter().collect();
        // Extended since read: left listed.
        kept = sealed
            .iter()
            .map(|&(d, s, _, _)| (d, s))
            .filter(|k| !done.contains(k))
            .collect();
    }
    let gone: Vec<&(i64, i64, i64)> = keys
        .iter()
        .filter(|&&(_, d, s)| !kept.contains(&(d, s)))
        .collect();
    if !gone.is_empty() {
        let mut q = QueryBuilder::<DB>::new(
            "DELETE FROM pack_unsealed WHERE (span_ms, device_id, first_seq) IN (",
        );
        q.push_values(&gone, |mut b, &&(span_ms, device_id, first_seq)| {
            b.push_bind(span_ms)
                .push_bind(device_id)
                .push_bind(first_seq);
        });
        q.push(")");
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(gone.len() as u64)
}
