//! Packs (issue 18): the per-minute records, most of what arrives, stored
//! compactly. Plain `link_minutes` summaries (not folded) and plain
//! heartbeats (`count` 1, not folded) are not rows of `records` but entries
//! of packs in `minute_packs`: one row per device, stream (the kind and, for
//! link summaries, the link and its kind), boot and UTC hour, whose body
//! holds the entries delta-encoded ([`encode`]) and grows in place as
//! uploads arrive. Every field of a record is kept exactly (the receipt time
//! too), so reads give back the same [`StoredRecord`]s as rows would.
//!
//! Only records `acked` covers are packed: idempotence stays with `acked`
//! and with `records`' primary key (a record at or below `acked` is never
//! stored again; records beyond it are rows until the gap before them is
//! filled, then move into packs). This module is the pure part (entries,
//! which pack an entry joins, the encoding); [`io`] reads and writes packs.

pub(super) mod io;

use crate::collector::model::StoredRecord;
use crate::wire::LinkKind;
use crate::wire::v1::Body;

/// A pack holds entries of one UTC hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Most sequence numbers one pack spans (first to last entry): reads by
/// sequence number look back this far for packs reaching into their range.
pub(crate) const MAX_SPAN: i64 = 4_096;
/// The body format's version (its first byte).
const FORMAT: u8 = 1;

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
/// sequence order, placed times not decreasing, all in one UTC hour).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pack {
    pub device_id: i64,
    pub first_seq: i64,
    pub stream: Stream,
    pub entries: Vec<Entry>,
    /// Stored already (updated in place) or new (inserted).
    pub stored: bool,
    /// Changed since read.
    pub dirty: bool,
}

impl Pack {
    pub fn last(&self) -> &Entry {
        self.entries.last().expect("a pack has entries")
    }

    pub fn first_at_ms(&self) -> i64 {
        self.entries[0].at_ms
    }

    /// Can `e` of `stream` be appended?
    fn takes(&self, stream: &Stream, e: &Entry) -> bool {
        let last = self.last();
        self.stream == *stream
            && e.at_ms.div_euclid(HOUR_MS) == self.first_at_ms().div_euclid(HOUR_MS)
            && e.seq > last.seq
            && e.at_ms >= last.at_ms
            && e.seq - self.first_seq <= MAX_SPAN
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

/// Add `e` of `stream` to the device's packs: appended to the pack that
/// takes it (the one with the highest last seq when several do), or as a
/// new pack.
pub(crate) fn assign(packs: &mut Vec<Pack>, device_id: i64, stream: &Stream, e: Entry) {
    let best = packs
        .iter_mut()
        .filter(|p| p.takes(stream, &e))
        .max_by_key(|p| p.last().seq);
    match best {
        Some(p) => {
            p.entries.push(e);
            p.dirty = true;
        }
        None => packs.push(Pack {
            device_id,
            first_seq: e.seq,
            stream: stream.clone(),
            entries: vec![e],
            stored: false,
            dirty: true,
        }),
    }
}

// The body: FORMAT, then per entry a flags byte and the values the flags
// do not make implicit, as LEB128 varints (signed ones zigzag'd, deltas
// with wrapping arithmetic so that any value round-trips). Each entry is
// encoded against the one before (the first against zeros).

/// seq, at and mono deltas equal the previous entry's.
const STEP: u8 = 1;
/// Received when the previous entry was.
const SAME_RECEIVED: u8 = 1 << 1;
/// Link summaries: `minutes` and `sent` as the previous entry's.
/// Heartbeats: online.
const SAME_SHAPE: u8 = 1 << 2;
/// `lost` is not 0 (and follows).
const LOST: u8 = 1 << 3;
/// p50, p95, max present.
const RTT: [u8; 3] = [1 << 4, 1 << 5, 1 << 6];
/// The RTTs as 8-byte floats (not whole hundredths of a millisecond).
const RAW_RTT: u8 = 1 << 7;

#[derive(Default)]
struct State {
    seq: i64,
    at: i64,
    mono: i64,
    steps: (i64, i64, i64),
    received: i64,
    minutes: u32,
    sent: u32,
    bytes: u64,
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A time in whole hundredths of a millisecond, if it is exactly one.
fn centi(v: f64) -> Option<i64> {
    let c = (v * 100.0).round();
    (c.abs() < 9.0e15 && (c / 100.0).to_bits() == v.to_bits()).then_some(c as i64)
}

/// Encode entries (in order) as a pack body.
pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * 10);
    out.push(FORMAT);
    let mut s = State::default();
    for e in entries {
        let flags_at = out.len();
        out.push(0);
        let mut flags = 0_u8;
        let steps = (
            e.seq.wrapping_sub(s.seq),
            e.at_ms.wrapping_sub(s.at),
            e.mono_ms.wrapping_sub(s.mono),
        );
        if steps == s.steps {
            flags |= STEP;
        } else {
            put_i(&mut out, steps.0);
            put_i(&mut out, steps.1);
            put_i(&mut out, steps.2);
        }
        if e.received_ms == s.received {
            flags |= SAME_RECEIVED;
        } else {
            put_i(&mut out, e.received_ms.wrapping_sub(s.received));
        }
        match &e.data {
            Data::Heartbeat { online } => {
                if *online {
                    flags |= SAME_SHAPE;
                }
            }
            Data::Minutes {
                minutes,
                sent,
                lost,
                rtt,
                bytes,
            } => {
                if (*minutes, *sent) == (s.minutes, s.sent) {
                    flags |= SAME_SHAPE;
                } else {
                    put(&mut out, u64::from(*minutes));
                    put(&mut out, u64::from(*sent));
                }
                if *lost != 0 {
                    flags |= LOST;
                    put(&mut out, u64::from(*lost));
                }
                let present: Vec<f64> = rtt.iter().flatten().copied().collect();
                for (i, v) in rtt.iter().enumerate() {
                    if v.is_some() {
                        flags |= RTT[i];
                    }
                }
                let centis: Option<Vec<i64>> = present.iter().map(|&v| centi(v)).collect();
                match centis {
                    Some(cs) => {
                        let mut base = 0_i64;
                        for c in cs {
                            put_i(&mut out, c - base);
                            base = c;
                        }
                    }
                    None => {
                        flags |= RAW_RTT;
                        for v in present {
                            out.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                }
                put_i(&mut out, bytes.wrapping_sub(s.bytes) as i64);
                (s.minutes, s.sent, s.bytes) = (*minutes, *sent, *bytes);
            }
        }
        out[flags_at] = flags;
        (s.seq, s.at, s.mono, s.steps, s.received) =
            (e.seq, e.at_ms, e.mono_ms, steps, e.received_ms);
    }
    out
}

/// A pack body that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("minute pack body: {0}")]
pub(crate) struct Corrupt(&'static str);

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, Corrupt> {
        let v = *self.b.get(self.at).ok_or(Corrupt("truncated"))?;
        self.at += 1;
        Ok(v)
    }

    fn u(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0_u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Corrupt("varint too long"))
    }

    fn i(&mut self) -> Result<i64, Corrupt> {
        let v = self.u()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        u32::try_from(self.u()?).map_err(|_| Corrupt("count out of range"))
    }

    fn f64(&mut self) -> Result<f64, Corrupt> {
        let b = self
            .b
            .get(self.at..self.at + 8)
            .ok_or(Corrupt("truncated"))?;
        self.at += 8;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

/// Decode a pack body of `kind` (`link_minutes` or `heartbeat`).
pub(crate) fn decode(kind: &str, body: &[u8]) -> Result<Vec<Entry>, Corrupt> {
    let minutes_kind = match kind {
        "link_minutes" => true,
        "heartbeat" => false,
        _ => return Err(Corrupt("unknown kind")),
    };
    let mut r = Reader { b: body, at: 0 };
    if r.byte()? != FORMAT {
        return Err(Corrupt("unknown format"));
    }
    let mut s = State::default();
    let mut out = Vec::new();
    while r.at < body.len() {
        let flags = r.byte()?;
        if flags & STEP == 0 {
            s.steps = (r.i()?, r.i()?, r.i()?);
        }
        s.seq = s.seq.wrapping_add(s.steps.0);
        s.at = s.at.wrapping_add(s.steps.1);
        s.mono = s.mono.wrapping_add(s.steps.2);
        if flags & SAME_RECEIVED == 0 {
            s.received = s.received.wrapping_add(r.i()?);
        }
        let data = if minutes_kind {
            if flags & SAME_SHAPE == 0 {
                (s.minutes, s.sent) = (r.u32()?, r.u32()?);
            }
            let lost = if flags & LOST != 0 { r.u32()? } else { 0 };
            let mut rtt = [None; 3];
            let mut base = 0_i64;
            for (i, bit) in RTT.iter().enumerate() {
                if flags & bit == 0 {
                    continue;
                }
                rtt[i] = Some(if flags & RAW_RTT != 0 {
                    r.f64()?
                } else {
                    base = base.wrapping_add(r.i()?);
                    base as f64 / 100.0
                });
            }
            s.bytes = s.bytes.wrapping_add(r.i()? as u64);
            Data::Minutes {
                minutes: s.minutes,
                sent: s.sent,
                lost,
                rtt,
                bytes: s.bytes,
            }
        } else {
            Data::Heartbeat {
                online: flags & SAME_SHAPE != 0,
            }
        };
        out.push(Entry {
            seq: s.seq,
            at_ms: s.at,
            mono_ms: s.mono,
            received_ms: s.received,
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
