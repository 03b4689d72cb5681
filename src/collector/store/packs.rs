//! Packs (issue 18): the per-minute records, most of what arrives, stored
//! compactly. Plain `link_minutes` summaries (not folded) and plain
//! heartbeats (`count` 1, not folded) are not rows of `records` but entries
//! of packs in `minute_packs`: one row per device, stream (the kind and, for
//! link summaries, the link and its kind), boot and span of two UTC hours ([`SPAN_MS`]), whose body
//! holds the entries delta-encoded ([`encode`]) and grows in place as
//! uploads arrive. Every field of a record is kept exactly (the receipt time
//! too), so reads give back the same [`StoredRecord`]s as rows would.
//!
//! Only records `acked` covers are packed: idempotence stays with `acked`
//! and with `records`' primary key (a record at or below `acked` is never
//! stored again; records beyond it are rows until the gap before them is
//! filled, then move into packs). This module is the pure part (entries,
//! which pack an entry joins, the encoding); [`io`] reads and writes packs.

mod columns;
pub(super) mod io;
mod streams;
pub(super) mod tails;
mod v1;

use crate::collector::model::StoredRecord;
use crate::wire::LinkKind;
use crate::wire::v1::Body;

/// A pack holds entries of one span of this length (UTC, aligned to
/// midnight): two hours. Longer spans mean fewer rows (each row costs tens of
/// bytes of header and index entries, most of the size of a short pack) but
/// rewrite more bytes at each update in place; packs of shorter spans
/// (earlier versions wrote one-hour packs) lie within one span and read the
/// same.
pub(crate) const SPAN_MS: i64 = 2 * 3_600_000;
/// Most sequence numbers one pack spans (first to last entry): reads by
/// sequence number look back this far for packs reaching into their range.
pub(crate) const MAX_SPAN: i64 = 4_096;
/// Rows per statement when packs or streams are read or written in bulk
/// (packs take 11 bind parameters each).
const CHUNK: usize = 500;

/// What packs keep of a record besides its place: the body's fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    Minutes {
        minutes: u32,
        sent: u32,
        lost: u32,
        /// p50, p95, max.
        rtt: [Option<f64>; 3],
        bytes: u64,
    },
    Heartbeat {
        online: bool,
    },
}

/// Which packs an entry may join (with its boot).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Stream {
    /// `link_minutes` or `heartbeat`.
    pub kind: &'static str,
    /// The link's name and kind (empty for heartbeats).
    pub link: String,
    pub link_kind: String,
    pub boot_id: String,
}

impl Stream {
    /// A stream as read from `pack_streams` (a kind other than link
    /// summaries is heartbeats; decoding the body refuses unknown kinds).
    pub fn read(kind: &str, link: String, link_kind: String, boot_id: String) -> Stream {
        Stream {
            kind: if kind == "link_minutes" {
                "link_minutes"
            } else {
                "heartbeat"
            },
            link,
            link_kind,
            boot_id,
        }
    }
}

/// The start of the span `at_ms` lies in.
pub(crate) fn span_start(at_ms: i64) -> i64 {
    at_ms.div_euclid(SPAN_MS).saturating_mul(SPAN_MS)
}

/// One packed record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub seq: i64,
    pub at_ms: i64,
    pub mono_ms: i64,
    pub received_ms: i64,
    pub data: Data,
}

/// The stream and data of a record that packs can hold (plain link
/// summaries and plain heartbeats, not folded), without its boot.
pub(crate) fn packable(body: &Body, folded: bool) -> Option<(&'static str, String, String, Data)> {
    if folded {
        return None;
    }
    match body {
        Body::LinkMinutes {
            link,
            kind,
            minutes,
            sent,
            lost,
            rtt_p50_ms,
            rtt_p95_ms,
            rtt_max_ms,
            bytes,
        } => Some((
            "link_minutes",
            link.clone(),
            kind.to_string(),
            Data::Minutes {
                minutes: *minutes,
                sent: *sent,
                lost: *lost,
                rtt: [*rtt_p50_ms, *rtt_p95_ms, *rtt_max_ms],
                bytes: *bytes,
            },
        )),
        Body::Heartbeat { online, count: 1 } => Some((
            "heartbeat",
            String::new(),
            String::new(),
            Data::Heartbeat { online: *online },
        )),
        _ => None,
    }
}

fn link_kind(s: &str) -> Option<LinkKind> {
    [LinkKind::Broadband, LinkKind::Wifi, LinkKind::Mobile]
        .into_iter()
        .find(|k| k.to_string() == s)
}

/// A pack: its key (device, first entry's seq), stream and entries (in
/// sequence order, placed times not decreasing, all in one span).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pack {
    pub device_id: i64,
    pub first_seq: i64,
    pub stream: Stream,
    pub entries: Vec<Entry>,
}

impl Pack {
    pub fn first_at_ms(&self) -> i64 {
        self.entries[0].at_ms
    }

    /// The entry as the record it stands for.
    pub fn record(&self, e: &Entry) -> StoredRecord {
        let s = &self.stream;
        let body = match &e.data {
            Data::Minutes {
                minutes,
                sent,
                lost,
                rtt,
                bytes,
            } => Body::LinkMinutes {
                link: s.link.clone(),
                kind: link_kind(&s.link_kind).unwrap_or(LinkKind::Broadband),
                minutes: *minutes,
                sent: *sent,
                lost: *lost,
                rtt_p50_ms: rtt[0],
                rtt_p95_ms: rtt[1],
                rtt_max_ms: rtt[2],
                bytes: *bytes,
            },
            Data::Heartbeat { online } => Body::Heartbeat {
                online: *online,
                count: 1,
            },
        };
        StoredRecord {
            seq: e.seq,
            seq_end: e.seq,
            at_ms: e.at_ms,
            mono_ms: e.mono_ms,
            boot_id: s.boot_id.clone(),
            kind: s.kind.into(),
            body: serde_json::to_string(&body).unwrap_or_default(),
            received_ms: e.received_ms,
        }
    }
}

/// Segments a stored body may hold before the next extension rewrites it
/// whole: a pack extended every minute stays a few hundred bytes, not one
/// segment (tens of bytes) a minute.
pub(crate) const MOST_PARTS: i64 = 8;

/// A pack as ingest extends it: where it ends, without its body, and the
/// entries to add (issue 18: reading and encoding a whole pack at every
/// upload cost the collector more CPU than the rows packs replaced).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tail {
    pub device_id: i64,
    pub first_seq: i64,
    pub stream: Stream,
    pub first_at_ms: i64,
    pub last_seq: i64,
    pub last_at_ms: i64,
    /// Stored already (extended in place) or new (inserted).
    pub stored: bool,
    /// Segments of the stored body (0: written before segments, its layout
    /// unknown).
    pub parts: i64,
    /// The stored entries, when read to rewrite the body whole (segments
    /// of unknown layout, or [`MOST_PARTS`] of them).
    pub whole: Option<Vec<Entry>>,
    /// Entries to add, in order after the stored ones.
    pub added: Vec<Entry>,
}

/// How a [`Tail`] is written.
#[derive(Debug, PartialEq)]
pub(crate) enum Write {
    /// Nothing added.
    Keep,
    /// A new pack with this body.
    Insert(Vec<u8>),
    /// This segment appended to the stored body.
    Append(Vec<u8>),
    /// The stored body replaced by this one of one segment.
    Rewrite(Vec<u8>),
}

impl Tail {
    /// A new pack of `e`.
    fn new(device_id: i64, stream: &Stream, e: Entry) -> Tail {
        Tail {
            device_id,
            first_seq: e.seq,
            stream: stream.clone(),
            first_at_ms: e.at_ms,
            last_seq: e.seq,
            last_at_ms: e.at_ms,
            stored: false,
            parts: 0,
            whole: None,
            added: vec![e],
        }
    }

    /// Can `e` of `stream` be appended?
    fn takes(&self, stream: &Stream, e: &Entry) -> bool {
        self.stream == *stream
            && span_start(e.at_ms) == self.span_ms()
            && e.seq > self.last_seq
            && e.at_ms >= self.last_at_ms
            && e.seq - self.first_seq <= MAX_SPAN
    }

    fn push(&mut self, e: Entry) {
        self.last_seq = e.seq;
        self.last_at_ms = e.at_ms;
        self.added.push(e);
    }

    /// The start of the pack's span.
    pub fn span_ms(&self) -> i64 {
        span_start(self.first_at_ms)
    }

    /// How to write the pack: new ones inserted, stored ones read whole
    /// rewritten as one segment, the others extended by one segment.
    pub fn write(&self) -> Write {
        if self.added.is_empty() {
            return Write::Keep;
        }
        if !self.stored {
            return Write::Insert(encode(&self.added));
        }
        match &self.whole {
            Some(stored) => {
                let mut all = stored.clone();
                all.extend(self.added.iter().cloned());
                Write::Rewrite(encode(&all))
            }
            None => Write::Append(encode(&self.added)),
        }
    }
}

/// Add `e` of `stream` to the device's packs: appended to the pack that
/// takes it (the one with the highest last seq when several do), or as a
/// new pack.
pub(crate) fn assign(packs: &mut Vec<Tail>, device_id: i64, stream: &Stream, e: Entry) {
    let best = packs
        .iter_mut()
        .filter(|p| p.takes(stream, &e))
        .max_by_key(|p| p.last_seq);
    match best {
        Some(p) => p.push(e),
        None => packs.push(Tail::new(device_id, stream, e)),
    }
}

/// Encode entries (in order) as a pack body in the current format
/// ([`columns`]).
pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    columns::encode(entries)
}

/// A pack body that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("minute pack body: {0}")]
pub(crate) struct Corrupt(&'static str);

/// Decode a pack body of `kind` (`link_minutes` or `heartbeat`) in either
/// format: [`v1`] (packs written before migration 0011) or [`columns`].
pub(crate) fn decode(kind: &str, body: &[u8]) -> Result<Vec<Entry>, Corrupt> {
    let minutes_kind = match kind {
        "link_minutes" => true,
        "heartbeat" => false,
        _ => return Err(Corrupt("unknown kind")),
    };
    match body.first() {
        Some(&v1::FORMAT) => v1::decode(minutes_kind, body),
        Some(&columns::FORMAT) => columns::decode(minutes_kind, body),
        Some(_) => Err(Corrupt("unknown format")),
        None => Err(Corrupt("truncated")),
    }
}

#[cfg(test)]
mod tests;
