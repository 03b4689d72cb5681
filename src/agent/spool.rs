//! The durable record: every protocol-v1 record the agent learns is written
//! here first (SQLite, WAL, `synchronous=FULL`: an [`Spool::append`] that
//! returned is on disk), then read out in sequence order by the uploader and
//! deleted once the collector acknowledged it.
//!
//! Sequence numbers come from a counter in the `meta` table, advanced in the
//! same transaction as the insert, so a number is never handed out twice, not
//! after deletions, not after a crash, not after a reopen.
//!
//! Over its disk budget the spool folds its oldest minute summaries and
//! heartbeats into coarser records (`spool/budget.rs`, rules there).

mod budget;
mod fold;

use crate::wire::v1::{Backlog, Body, MAX_SEQ, Record};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
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
        crate::shared::migrations::migrator(crate::shared::migrations::SPOOL)
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

    /// The records after sequence number `after` (those a batch ending
    /// there leaves waiting): how many, and the oldest one's time.
    pub async fn backlog_after(&self, after: u64) -> Result<Backlog, SpoolError> {
        let e = self.query_err("backlog");
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM records WHERE seq > ?1),
                    (SELECT at_ms FROM records WHERE seq > ?1 ORDER BY seq LIMIT 1)",
        )
        .bind(after.min(i64::MAX as u64) as i64)
        .fetch_one(&self.pool)
        .await
        .map_err(&e)?;
        let records: i64 = row.get(0);
        Ok(Backlog {
            records: records.max(0) as u64,
            oldest_at: row.get(1),
        })
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
