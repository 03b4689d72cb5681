//! The durable record: every protocol-v1 record the agent learns is written
//! here first (SQLite, WAL, `synchronous=FULL`: an [`Spool::append`] that
//! returned is on disk), then read out in sequence order by the uploader and
//! deleted once the collector acknowledged it.
//!
//! Sequence numbers come from a counter in the `meta` table, advanced in the
//! same transaction as the insert, so a number is never handed out twice, not
//! after deletions, not after a crash, not after a reopen.
//!
//! # Disk budget and folding
//! When the records' payload bytes (body JSON + boot id + 24 bytes for the
//! numbers, per record; the file itself is larger by SQLite's page and index
//! overhead) exceed `max_bytes`, the oldest `link_minutes` and `heartbeat`
//! records are folded into coarser ones until the payload is at most 7/8 of
//! the budget:
//!
//! * Only runs of *foldable* records are folded. `link_state`, `failover`,
//!   `lifecycle` and `facts` records are never folded nor dropped, and a fold
//!   never crosses one of them, nor a change of boot id, nor a gap in the
//!   sequence: minutes before and after a transition stay apart.
//! * A run is cut into chunks such that no group (one link's `link_minutes`,
//!   or heartbeats with the same `online`) sums to more than
//!   [`FOLD_MAX_MINUTES`] minutes / [`FOLD_MAX_HEARTBEATS`] heartbeats. Each
//!   chunk becomes one record per group. The chunk's sequence range
//!   `first..=last` is split into consecutive sub-ranges, one per group (in
//!   the order the groups first appear), each as long as the number of
//!   sequence numbers its members stood for. So the folded records partition
//!   exactly the numbers they replace: no range overlaps another record's,
//!   nothing is left uncovered, and the collector's contiguity count is
//!   unaffected. (When a chunk holds a single group this is simply "keep the
//!   first seq, `seq_end` = the last seq".) A folded record is stamped with
//!   the time, monotonic time and boot id of the last record of its group.
//! * Merging `link_minutes`: `minutes`, `sent`, `lost` and `bytes` are summed,
//!   `rtt_max_ms` is the maximum. `rtt_p50_ms` and `rtt_p95_ms` are
//!   approximations: the mean of the parts' percentiles weighted by their
//!   answered probes (`sent - lost`; an unweighted mean when no part answered),
//!   `p95` clamped to the merged maximum. The true percentile of the union
//!   cannot be rebuilt from summaries; the mean stays between the smallest
//!   and the largest part's value. Heartbeats: `count` is summed.
//! * Records already handed out by [`Spool::batch`] are never folded again:
//!   the collector may hold them already, and it de-duplicates by `seq`.
//! * When everything foldable is folded and the payload is still over budget,
//!   records are still written (a transition is never lost); every such
//!   append is counted in [`SpoolStats::over_budget`] and a warning is logged.

mod fold;

use fold::{chunks, fold_chunk};

use crate::wire::v1::{Body, MAX_SEQ, Record};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most minutes one folded `link_minutes` record stands for.
pub const FOLD_MAX_MINUTES: u32 = 60;
/// Most heartbeats one folded `heartbeat` record stands for.
pub const FOLD_MAX_HEARTBEATS: u32 = 60;
/// Bytes counted per record besides its body and boot id.
const RECORD_OVERHEAD: u64 = 24;
/// Rows read per folding transaction.
const FOLD_PAGE: usize = 4096;

/// A spool operation that failed; names the operation and the file.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot create the spool's directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open spool {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("spool {path}: migration failed: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("spool {path}: {op} failed: {source}")]
    Query {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("spool {path}: record {seq} cannot be read back: {source}")]
    Corrupt {
        path: PathBuf,
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "spool {path}: the collector acknowledged seq {acked}, beyond the {last_seq} this spool \
         assigned and too far to renumber the waiting records above it (they would pass \
         2^63 - 2): nothing is deleted or renumbered; the collector's record of this device \
         needs an administrator"
    )]
    AckOutOfRange {
        path: PathBuf,
        acked: u64,
        last_seq: u64,
    },
    #[error("spool {path}: {op}: cannot encode the record body: {source}")]
    Encode {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What the spool holds (for status and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolStats {
    /// Records waiting (a folded record counts once).
    pub depth: u64,
    /// Payload bytes counted against the budget.
    pub bytes: u64,
    /// Wall-clock time of the oldest waiting record, Unix ms.
    pub oldest_at_ms: Option<i64>,
    /// Highest sequence number ever assigned.
    pub last_seq: u64,
    /// Records eliminated by folding since the spool was created.
    pub folded: u64,
    /// Appends written while over budget with nothing left to fold.
    pub over_budget: u64,
}

/// The durable local record. Cheap to share behind an `Arc`; every method is
/// one or more SQLite transactions on a single connection.
pub struct Spool {
    pool: SqlitePool,
    path: PathBuf,
    max_bytes: u64,
    /// Folding scans from here (records before were folded as far as they go).
    fold_from: AtomicU64,
    /// Only one fold at a time.
    folding: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// One row as read back, with what folding needs.
#[derive(Debug, Clone)]
struct SpoolRow {
    rec: Record,
    size: u64,
}

impl Spool {
    /// Open (or create, with its parent directory) the spool at `path`, with
    /// a payload budget of `max_bytes`.
    pub async fn open(path: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| SpoolError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // Private from the start, whatever the umask (its WAL and SHM files
        // follow the database's mode).
        let changed =
            crate::shared::files::private_database(path).map_err(|e| SpoolError::Open {
                path: path.to_path_buf(),
                source: sqlx::Error::Io(e),
            })?;
        for t in changed {
            match t.result {
                Ok(()) => tracing::warn!(
                    file = %t.path.display(),
                    "the spool was readable by others: made it private (0600)"
                ),
                Err(e) => tracing::warn!(
                    file = %t.path.display(),
                    error = %e,
                    "the spool is readable by others and cannot be made private: run `chmod 600` on it"
                ),
            }
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // A small page cache: the spool is written and read sequentially,
            // and the agent's memory budget is a few MB.
            .pragma("cache_size", "-256");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map_err(|source| SpoolError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        sqlx::migrate!("./migrations/spool")
            .run(&pool)
            .await
            .map_err(|source| SpoolError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Spool {
            pool,
            path: path.to_path_buf(),
            max_bytes,
            fold_from: AtomicU64::new(0),
            folding: tokio::sync::Mutex::new(()),
        })
    }

    /// The spool's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The payload budget in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn query_err(&self, op: &'static str) -> impl Fn(sqlx::Error) -> SpoolError + '_ {
        move |source| SpoolError::Query {
            op,
            path: self.path.clone(),
            source,
        }
    }

    /// Write one record durably and return its sequence number. Folds old
    /// records when the budget is exceeded (after the record is on disk).
    pub async fn append(
        &self,
        at_ms: i64,
        mono_ms: u64,
        boot_id: &str,
        body: &Body,
    ) -> Result<u64, SpoolError> {
        const OP: &str = "append";
        let json = serde_json::to_string(body).map_err(|source| SpoolError::Encode {
            op: OP,
            path: self.path.clone(),
            source,
        })?;
        let size = json.len() as u64 + boot_id.len() as u64 + RECORD_OVERHEAD;
        let e = self.query_err(OP);
        let mut tx = self.pool.begin().await.map_err(&e)?;
        let seq: i64 = sqlx::query_scalar(
            "UPDATE meta SET value = value + 1 WHERE key = 'last_seq' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(&e)?;
        sqlx::query(
            "INSERT INTO records (seq, seq_end, at_ms, mono_ms, boot_id, kind, link, body, size)
             VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(seq)
        .bind(at_ms)
        .bind(mono_ms as i64)
        .bind(boot_id)
        .bind(body.kind())
        .bind(link_of(body))
        .bind(&json)
        .bind(size as i64)
        .execute(&mut *tx)
        .await
        .map_err(&e)?;
        let bytes: i64 = sqlx::query_scalar(
            "UPDATE meta SET value = value + ?1 WHERE key = 'bytes' RETURNING value",
        )
        .bind(size as i64)
        .fetch_one(&mut *tx)
        .await
        .map_err(&e)?;
        tx.commit().await.map_err(&e)?;
        if bytes as u64 > self.max_bytes {
            self.enforce_budget().await;
        }
        Ok(seq as u64)
    }

    /// Up to `max_records` records, oldest first (by seq). They count as
    /// handed out from now on and are never folded again.
    pub async fn batch(&self, max_records: usize) -> Result<Vec<Record>, SpoolError> {
        let e = self.query_err("batch");
        let mut tx = self.pool.begin().await.map_err(&e)?;
        let rows = sqlx::query(
            "SELECT seq, seq_end, at_ms, mono_ms, boot_id, body, size FROM records
             ORDER BY seq LIMIT ?1",
        )
        .bind(max_records.min(i64::MAX as usize) as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(&e)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.decode(row)?.rec);
        }
        if let Some(last) = out.last() {
            sqlx::query("UPDATE meta SET value = max(value, ?1) WHERE key = 'exposed'")
                .bind(last.seq_end.unwrap_or(last.seq) as i64)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
        }
        tx.commit().await.map_err(&e)?;
        Ok(out)
    }

    /// The collector holds every record up to `acked`: delete the records
    /// whose `seq_end <= acked`. Returns how many were deleted.
    ///
    /// An `acked` above the highest seq this spool ever assigned means the
    /// collector knew this device under an older spool (the file was lost or
    /// replaced): it took the waiting records for replays. They are then
    /// renumbered above `acked` (and will be sent again), and new records
    /// follow them; nothing is deleted.
    pub async fn ack(&self, acked: u64) -> Result<u64, SpoolError> {
        let e = self.query_err("ack");
        let mut tx = self.pool.begin().await.map_err(&e)?;
        let last_seq = meta(&mut tx, "last_seq").await.map_err(&e)?;
        if acked > last_seq {
            // Every waiting record moves up by `acked`: all of them must stay
            // within what the collector accepts (checked, never wrapping).
            let offset = match last_seq.checked_add(acked) {
                Some(top) if top <= MAX_SEQ => acked as i64,
                _ => {
                    return Err(SpoolError::AckOutOfRange {
                        path: self.path.clone(),
                        acked,
                        last_seq,
                    });
                }
            };
            sqlx::query("UPDATE records SET seq = seq + ?1, seq_end = seq_end + ?1")
                .bind(offset)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
            sqlx::query("UPDATE meta SET value = value + ?1 WHERE key = 'last_seq'")
                .bind(offset)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
            sqlx::query("UPDATE meta SET value = 0 WHERE key = 'exposed'")
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
            tx.commit().await.map_err(&e)?;
            self.fold_from.store(0, Ordering::Relaxed);
            tracing::warn!(
                spool = %self.path.display(),
                acked,
                last_seq,
                "the collector acknowledged sequence numbers this spool never assigned \
                 (spool file lost or replaced?): renumbering waiting records above {acked}"
            );
            return Ok(0);
        }
        let row =
            sqlx::query("SELECT count(*), coalesce(sum(size), 0) FROM records WHERE seq_end <= ?1")
                .bind(acked as i64)
                .fetch_one(&mut *tx)
                .await
                .map_err(&e)?;
        let (count, size): (i64, i64) = (row.get(0), row.get(1));
        if count > 0 {
            sqlx::query("DELETE FROM records WHERE seq_end <= ?1")
                .bind(acked as i64)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
            sqlx::query("UPDATE meta SET value = value - ?1 WHERE key = 'bytes'")
                .bind(size)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
        }
        tx.commit().await.map_err(&e)?;
        Ok(count as u64)
    }

    /// Depth, bytes, oldest record, counters.
    pub async fn stats(&self) -> Result<SpoolStats, SpoolError> {
        let e = self.query_err("stats");
        let mut tx = self.pool.begin().await.map_err(&e)?;
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM records),
                    (SELECT at_ms FROM records ORDER BY seq LIMIT 1)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(&e)?;
        let depth: i64 = row.get(0);
        let oldest: Option<i64> = row.get(1);
        let stats = SpoolStats {
            depth: depth as u64,
            bytes: meta(&mut tx, "bytes").await.map_err(&e)?,
            oldest_at_ms: oldest,
            last_seq: meta(&mut tx, "last_seq").await.map_err(&e)?,
            folded: meta(&mut tx, "folded").await.map_err(&e)?,
            over_budget: meta(&mut tx, "over_budget").await.map_err(&e)?,
        };
        tx.commit().await.map_err(&e)?;
        Ok(stats)
    }

    /// Close the connection (checkpoints the write-ahead log).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn decode(&self, row: &SqliteRow) -> Result<SpoolRow, SpoolError> {
        let seq = row.get::<i64, _>(0) as u64;
        let seq_end = row.get::<i64, _>(1) as u64;
        let body: String = row.get(5);
        let body = serde_json::from_str(&body).map_err(|source| SpoolError::Corrupt {
            path: self.path.clone(),
            seq,
            source,
        })?;
        Ok(SpoolRow {
            rec: Record {
                seq,
                seq_end: (seq_end != seq).then_some(seq_end),
                at: row.get(2),
                mono_ms: row.get::<i64, _>(3) as u64,
                boot_id: row.get(4),
                body,
            },
            size: row.get::<i64, _>(6) as u64,
        })
    }

    /// Fold until within budget; count and warn when that is not possible.
    async fn enforce_budget(&self) {
        let Ok(_guard) = self.folding.try_lock() else {
            return;
        };
        let low_water = self.max_bytes - self.max_bytes / 8;
        match self.fold(low_water).await {
            Ok(bytes) if bytes > self.max_bytes => {
                let e = self.query_err("count over-budget append");
                let n = sqlx::query_scalar::<_, i64>(
                    "UPDATE meta SET value = value + 1 WHERE key = 'over_budget' RETURNING value",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(e);
                match n {
                    Ok(n) if n % 1000 == 1 => tracing::warn!(
                        spool = %self.path.display(),
                        bytes,
                        max_bytes = self.max_bytes,
                        over_budget_appends = n,
                        "spool over its disk budget with nothing left to fold: still writing \
                         (transitions are never dropped); it shrinks once uploads resume"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("folding the spool failed (records are kept): {e}"),
        }
    }

    /// Fold the oldest foldable records until the payload is at most
    /// `target` bytes or nothing is left to fold; returns the payload bytes.
    async fn fold(&self, target: u64) -> Result<u64, SpoolError> {
        let e = self.query_err("fold");
        let mut cursor = self.fold_from.load(Ordering::Relaxed);
        loop {
            let mut tx = self.pool.begin().await.map_err(&e)?;
            let exposed = meta(&mut tx, "exposed").await.map_err(&e)?;
            cursor = cursor.max(exposed.saturating_add(1));
            let rows = sqlx::query(
                "SELECT seq, seq_end, at_ms, mono_ms, boot_id, body, size FROM records
                 WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .bind(cursor as i64)
            .bind(FOLD_PAGE as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(&e)?;
            let rows = rows
                .iter()
                .map(|r| self.decode(r))
                .collect::<Result<Vec<_>, _>>()?;
            let full_page = rows.len() == FOLD_PAGE;
            let recs: Vec<Record> = rows.iter().map(|r| r.rec.clone()).collect();
            let chunks = chunks(&recs);
            // The chunk reaching the end of a full page may go on in the next
            // page: leave it for then (unless it is all the page holds).
            let mut next = rows
                .last()
                .map(|r| r.rec.seq.saturating_add(1))
                .unwrap_or(cursor);
            let mut apply: &[Range<usize>] = &chunks;
            if let Some(last) = chunks.last()
                && last.end == recs.len()
            {
                if !full_page {
                    // The newest records: fold them now, but look at them
                    // again next time, they may grow with new records.
                    next = recs[last.start].seq;
                } else if last.start > 0 {
                    apply = &chunks[..chunks.len() - 1];
                    next = recs[last.start].seq;
                }
                // else: a chunk as long as the page, closed here.
            }
            let mut removed_bytes: i64 = 0;
            let mut added_bytes: i64 = 0;
            let mut folded: i64 = 0;
            for range in apply {
                let members = &recs[range.clone()];
                let merged = fold_chunk(members);
                if merged.len() >= members.len() {
                    continue;
                }
                let first = members[0].seq;
                let last = &members[members.len() - 1];
                let last = last.seq_end.unwrap_or(last.seq);
                sqlx::query("DELETE FROM records WHERE seq BETWEEN ?1 AND ?2")
                    .bind(first as i64)
                    .bind(last as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(&e)?;
                removed_bytes += rows[range.clone()]
                    .iter()
                    .map(|r| r.size as i64)
                    .sum::<i64>();
                for m in &merged {
                    let json =
                        serde_json::to_string(&m.body).map_err(|source| SpoolError::Encode {
                            op: "fold",
                            path: self.path.clone(),
                            source,
                        })?;
                    let size = json.len() as u64 + m.boot_id.len() as u64 + RECORD_OVERHEAD;
                    sqlx::query(
                        "INSERT INTO records (seq, seq_end, at_ms, mono_ms, boot_id, kind, link, body, size)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .bind(m.seq as i64)
                    .bind(m.seq_end.unwrap_or(m.seq) as i64)
                    .bind(m.at)
                    .bind(m.mono_ms as i64)
                    .bind(&m.boot_id)
                    .bind(m.body.kind())
                    .bind(link_of(&m.body))
                    .bind(&json)
                    .bind(size as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(&e)?;
                    added_bytes += size as i64;
                }
                folded += (members.len() - merged.len()) as i64;
            }
            if folded > 0 {
                sqlx::query("UPDATE meta SET value = value + ?1 WHERE key = 'bytes'")
                    .bind(added_bytes - removed_bytes)
                    .execute(&mut *tx)
                    .await
                    .map_err(&e)?;
                sqlx::query("UPDATE meta SET value = value + ?1 WHERE key = 'folded'")
                    .bind(folded)
                    .execute(&mut *tx)
                    .await
                    .map_err(&e)?;
            }
            let bytes = meta(&mut tx, "bytes").await.map_err(&e)?;
            tx.commit().await.map_err(&e)?;
            if folded > 0 {
                tracing::debug!(
                    spool = %self.path.display(),
                    folded,
                    bytes,
                    "folded old link_minutes/heartbeat records to stay within the disk budget"
                );
            }
            let progressed = next > cursor;
            cursor = next;
            self.fold_from.store(cursor, Ordering::Relaxed);
            if bytes <= target || !full_page || !progressed {
                return Ok(bytes);
            }
        }
    }
}

async fn meta(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    key: &'static str,
) -> Result<u64, sqlx::Error> {
    let v: i64 = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?1")
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
    Ok(v.max(0) as u64)
}

/// The `link` column: the link of link-scoped records.
fn link_of(body: &Body) -> Option<&str> {
    match body {
        Body::LinkState { link, .. } | Body::LinkMinutes { link, .. } => Some(link),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
