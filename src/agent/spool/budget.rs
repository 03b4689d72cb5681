//! The spool's disk budget: folding.
//!
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

use super::fold::{chunks, fold_chunk};
use super::{FOLD_PAGE, RECORD_OVERHEAD, Spool, SpoolError, link_of, meta};
use crate::wire::v1::Record;
use std::ops::Range;
use std::sync::atomic::Ordering;

impl Spool {
    /// Fold until within budget; count and warn when that is not possible.
    pub(super) async fn enforce_budget(&self) {
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
