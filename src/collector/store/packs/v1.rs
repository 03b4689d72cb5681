//! The first pack body format (migration 0007): per entry a flags byte and
//! varints against the entry before. Packs written before migration 0011
//! keep it; [`super::decode`] reads both formats, new bodies are
//! [`super::columns`].

use super::{Corrupt, Data, Entry};

/// This format's version (a body's first byte).
pub(super) const FORMAT: u8 = 1;

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

pub(super) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_i(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A time in whole hundredths of a millisecond, if it is exactly one.
pub(super) fn centi(v: f64) -> Option<i64> {
    let c = (v * 100.0).round();
    if c.is_nan() || c.abs() >= 9.0e15 {
        return None;
    }
    // Exactly what decoding gives back (not -0.0, which reads as 0.0).
    let c = c as i64;
    ((c as f64 / 100.0).to_bits() == v.to_bits()).then_some(c)
}

/// Encode entries (in order) in this format (tests: old bodies still read).
#[cfg(test)]
pub(super) fn encode(entries: &[Entry]) -> Vec<u8> {
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

/// Reads a body from its start (varints as [`put`] and [`put_i`] write
/// them); both formats' decoders use it.
pub(super) struct Reader<'a> {
    pub(super) b: &'a [u8],
    pub(super) at: usize,
}

impl Reader<'_> {
    pub(super) fn byte(&mut self) -> Result<u8, Corrupt> {
        let v = *self.b.get(self.at).ok_or(Corrupt("truncated"))?;
        self.at += 1;
        Ok(v)
    }

    pub(super) fn u(&mut self) -> Result<u64, Corrupt> {
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

    pub(super) fn i(&mut self) -> Result<i64, Corrupt> {
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

/// Decode a body of this format (of link summaries or heartbeats).
pub(super) fn decode(minutes_kind: bool, body: &[u8]) -> Result<Vec<Entry>, Corrupt> {
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
