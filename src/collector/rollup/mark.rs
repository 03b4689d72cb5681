//! Roll-up marks, as pure decisions the store only executes: how far back a
//! record can change a device's timeline ([`reach_back_ms`]: from its
//! coverage, a heartbeat's `count` minutes or a summary's `minutes`, minus
//! the silence the engine bridges, onwards), and what a stored batch does to
//! its device's mark ([`batch_mark`]: lower it, or only make sure there is
//! one).

use super::hours_settled_before;
use crate::collector::uptime::Params;
use crate::wire::v1::{Body, Record};

/// How far ahead of its own clock ingest looks for the settled boundary:
/// tolerance for collectors sharing one database with clocks apart, and for
/// a batch that was read in before a maintainer round began and stored after
/// the round read the device's records. (A round's own length needs none:
/// its boundary comes from the clock when it began.)
pub const MARK_MARGIN_MS: i64 = 10 * 60_000;

/// Must a batch that can change the timeline from `reach_ms` on lower its
/// device's mark? Only when it reaches into hours that are settled, or will
/// be within [`MARK_MARGIN_MS`]. A device's mark is never later than the
/// settled boundary (the maintainer moves it at most there, ingest only
/// lowers it), so a batch reaching no further back is already covered: live
/// uploads lower the mark only in the first minutes of each hour, when they
/// reach back into the hour before.
pub fn lowers_mark(reach_ms: i64, now_ms: i64) -> bool {
    reach_ms < hours_settled_before(now_ms.saturating_add(MARK_MARGIN_MS))
}

/// What storing a batch does to its device's roll-up mark (days from
/// `from_ms`'s on need computing again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkMove {
    /// Lower the mark to `from_ms` (and bump its version), creating it if
    /// missing: the batch reaches into settled hours (see [`lowers_mark`]).
    Lower { from_ms: i64 },
    /// Create the mark at `from_ms` if the device has none; an existing mark
    /// already covers the batch.
    Ensure { from_ms: i64 },
}

/// The mark move of a batch stored at `now_ms` whose fresh records (those
/// actually stored) reach back to `reaches` (see [`record_reach`]); `None`
/// when nothing fresh was stored.
pub fn batch_mark(reaches: impl IntoIterator<Item = i64>, now_ms: i64) -> Option<MarkMove> {
    let from_ms = reaches.into_iter().min()?;
    Some(if lowers_mark(from_ms, now_ms) {
        MarkMove::Lower { from_ms }
    } else {
        MarkMove::Ensure { from_ms }
    })
}

/// How far back a stored record can change its device's timeline, with the
/// engine's default parameters (what ingest marks by).
pub fn record_reach(r: &Record) -> i64 {
    reach_back_ms(r, &Params::default())
}

/// How far back a record can change the timeline: its placed time minus
/// what it covers minus the silence the engine bridges.
pub fn reach_back_ms(r: &Record, p: &Params) -> i64 {
    let covers = match &r.body {
        Body::Heartbeat { count, .. } => i64::from(*count) * p.heartbeat_ms,
        Body::LinkMinutes { minutes, .. } => i64::from(*minutes) * 60_000,
        _ => p.heartbeat_ms,
    };
    r.at.saturating_sub(covers + p.heartbeat_ms + p.grace_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::rollup::{day_start, day_tz};

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    #[test]
    fn a_batch_marks_from_its_earliest_fresh_record() {
        let day = day_start(&day_tz(), 1_790_000_000_000);
        let now = day + 10 * H + 30 * M;
        assert_eq!(batch_mark([], now), None);
        // Live records reaching back into the current hour: only make sure
        // of a mark.
        assert_eq!(
            batch_mark([now - 5 * M, now - 7 * M], now),
            Some(MarkMove::Ensure {
                from_ms: now - 7 * M
            })
        );
        // One record reaching into a settled hour lowers the mark to it.
        assert_eq!(
            batch_mark([now - 5 * M, day + 9 * H], now),
            Some(MarkMove::Lower {
                from_ms: day + 9 * H
            })
        );
    }

    #[test]
    fn reach_covers_the_record_and_the_bridged_silence() {
        let p = Params::default();
        let record = |body: &str| -> Record {
            serde_json::from_str(&format!(
                r#"{{"seq":1,"at":100000000,"mono_ms":0,"boot_id":"b","body":{body}}}"#
            ))
            .unwrap()
        };
        let bridge = p.heartbeat_ms + p.grace_ms;
        let beat = record(r#"{"type":"heartbeat","online":true,"count":3}"#);
        assert_eq!(
            reach_back_ms(&beat, &p),
            100_000_000 - 3 * p.heartbeat_ms - bridge
        );
        let one = record(r#"{"type":"heartbeat","online":true}"#);
        assert_eq!(
            reach_back_ms(&one, &p),
            100_000_000 - p.heartbeat_ms - bridge
        );
        assert_eq!(record_reach(&beat), reach_back_ms(&beat, &p));
    }
}
