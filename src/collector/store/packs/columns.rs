//! The pack body format of migration 0011 (issue 18): the entries as
//! columns (sequence numbers, placed times, monotonic offsets, receipt
//! times, then the body's fields), each column stored the cheapest of four
//! ways: its values or their differences, either bit-packed against their
//! minimum (frame of reference: a column whose values are all equal costs
//! nothing per entry) or as runs of equal values. About six bytes a link
//! summary at the agent's shapes, against ten with [`super::v1`].
//!
//! Body: one or more segments, each [`FORMAT`], the number of its entries
//! (LEB128), then its columns. Ingest appends a segment per upload to a pack
//! of the current span (`tails`); sealing rewrites a closed pack as one
//! segment.
//! Column: a tag byte (bit 7: differences, the first value, zigzag LEB128,
//! following the tag; bits 0–6: the bit width 0–64 of a frame of
//! reference, or [`RUNS`]), then for a frame its minimum (zigzag LEB128)
//! and the packed values (least significant bit first, to the next byte),
//! for runs their number (LEB128), their lengths and their values, each a
//! column without runs (receipt times, one per upload, cost a few bytes
//! a pack when uploads are regular).
//! Arithmetic wraps, so that any value round-trips.

use super::v1::{Reader, centi, put, put_i};
use super::{Corrupt, Data, Entry, MAX_SPAN};

/// This format's version (a body's first byte).
pub(super) const FORMAT: u8 = 2;
/// Tag bit: the column holds its first value and then differences.
const DELTA: u8 = 0x80;
/// Tag value (bits 0–6): runs of equal values.
const RUNS: u8 = 0x7f;
/// RTT columns: the values are whole hundredths of a millisecond against
/// the value before (0) or 8-byte floats' bits (1).
const CENTIS: u8 = 0;
const RAW: u8 = 1;

/// `v - min` as the unsigned offset a frame stores (exact for `v >= min`).
fn offset(v: i64, min: i64) -> u64 {
    (i128::from(v) - i128::from(min)) as u64
}

/// Bytes of `v` as a zigzag LEB128 varint.
fn len_i(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - z.leading_zeros() as usize).max(1).div_ceil(7)
}

/// A frame of reference of `vals`: minimum, bit width, bytes it takes
/// after the tag.
fn frame_of(vals: &[i64]) -> (i64, u32, usize) {
    let s = Stats::of(vals.iter().copied());
    frame_shape(s.min, s.max, s.n)
}

/// A frame of `n` values between `min` and `max`: its minimum, bit width
/// and bytes after the tag (no values count as `0..=0`).
fn frame_shape(min: i64, max: i64, n: usize) -> (i64, u32, usize) {
    let (min, max) = if n == 0 { (0, 0) } else { (min, max) };
    let width = 64 - offset(max, min).leading_zeros();
    (min, width, len_i(min) + (n * width as usize).div_ceil(8))
}

/// Call `f(value, length)` for each run of equal values, in order.
fn for_each_run(vals: impl Iterator<Item = i64>, mut f: impl FnMut(i64, i64)) {
    let mut run: Option<(i64, i64)> = None;
    for v in vals {
        run = match run {
            Some((value, len)) if value == v => Some((value, len + 1)),
            Some((value, len)) => {
                f(value, len);
                Some((v, 1))
            }
            None => Some((v, 1)),
        };
    }
    if let Some((value, len)) = run {
        f(value, len);
    }
}

fn frame(out: &mut Vec<u8>, tag: u8, head: Option<i64>, vals: &[i64]) {
    let (min, width, _) = frame_of(vals);
    out.push(tag | width as u8);
    if let Some(h) = head {
        put_i(out, h);
    }
    put_i(out, min);
    let (mut acc, mut used) = (0_u128, 0_u32);
    for &v in vals {
        acc |= u128::from(offset(v, min)) << used;
        used += width;
        while used >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            used -= 8;
        }
    }
    if used > 0 {
        out.push(acc as u8);
    }
}

/// Runs of equal values: their number, then their lengths and their
/// values as plain columns (a frame of values or differences).
fn runs(out: &mut Vec<u8>, tag: u8, head: Option<i64>, vals: &[i64]) {
    out.push(tag | RUNS);
    if let Some(h) = head {
        put_i(out, h);
    }
    let (mut lens, mut values) = (Vec::new(), Vec::new());
    for_each_run(vals.iter().copied(), |value, len| {
        lens.push(len);
        values.push(value);
    });
    put(out, values.len() as u64);
    plain(out, &lens);
    plain(out, &values);
}

/// The first value and the differences after it.
fn deltas(vals: &[i64]) -> (Option<i64>, Vec<i64>) {
    (
        vals.first().copied(),
        vals.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect(),
    )
}

/// What sizing a plain column needs of its values, gathered in one pass
/// without allocating: their number, the first, and the range of the
/// values and of their differences. Ingest sizes every column of a pack
/// each time it extends the pack, so this is on its hot path.
#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    first: i64,
    prev: i64,
    min: i64,
    max: i64,
    dmin: i64,
    dmax: i64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            n: 0,
            first: 0,
            prev: 0,
            min: i64::MAX,
            max: i64::MIN,
            dmin: i64::MAX,
            dmax: i64::MIN,
        }
    }

    fn of(vals: impl Iterator<Item = i64>) -> Stats {
        let mut s = Stats::new();
        for v in vals {
            s.push(v);
        }
        s
    }

    fn push(&mut self, v: i64) {
        if self.n == 0 {
            self.first = v;
        } else {
            let d = v.wrapping_sub(self.prev);
            self.dmin = self.dmin.min(d);
            self.dmax = self.dmax.max(d);
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.prev = v;
        self.n += 1;
    }

    /// Bytes after the tag of the column without runs, and whether by
    /// differences.
    fn plain_size(&self) -> (usize, bool) {
        let by_value = frame_shape(self.min, self.max, self.n).2;
        if self.n == 0 {
            return (by_value, false);
        }
        let by_delta = len_i(self.first) + frame_shape(self.dmin, self.dmax, self.n - 1).2;
        if by_delta < by_value {
            (by_delta, true)
        } else {
            (by_value, false)
        }
    }
}

/// Bytes after the tag of a column without runs, and whether by
/// differences.
fn plain_size(vals: &[i64]) -> (usize, bool) {
    Stats::of(vals.iter().copied()).plain_size()
}

/// A column without runs: a frame of the values or of their differences.
fn plain(out: &mut Vec<u8>, vals: &[i64]) {
    if plain_size(vals).1 {
        let (head, d) = deltas(vals);
        frame(out, DELTA, head, &d);
    } else {
        frame(out, 0, None, vals);
    }
}

/// Bytes after the tag of the `n` values `vals` gives as runs (None when
/// runs cannot be the cheapest: more than one value in two starts a run).
fn runs_size(vals: impl Iterator<Item = i64>, n: usize) -> Option<usize> {
    let (mut lens, mut values) = (Stats::new(), Stats::new());
    for_each_run(vals, |value, len| {
        lens.push(len);
        values.push(value);
    });
    let starts = values.n.max(1);
    if starts * 2 > n {
        return None;
    }
    Some(len_i(starts as i64) + 2 + lens.plain_size().0 + values.plain_size().0)
}

/// Append a column of `vals`, the cheapest way.
fn column(out: &mut Vec<u8>, vals: &[i64]) {
    let head_len = vals.first().copied().map_or(0, len_i);
    let (plain_len, _) = plain_size(vals);
    let by_value = runs_size(vals.iter().copied(), vals.len());
    let diffs = vals.windows(2).map(|w| w[1].wrapping_sub(w[0]));
    let by_delta = runs_size(diffs, vals.len().saturating_sub(1)).map(|n| n + head_len);
    match (by_value, by_delta) {
        (Some(v), dl) if v < plain_len && dl.is_none_or(|dl| v <= dl) => runs(out, 0, None, vals),
        (_, Some(dl)) if dl < plain_len => {
            let (head, d) = deltas(vals);
            runs(out, DELTA, head, &d)
        }
        _ => plain(out, vals),
    }
}

/// A link summary's fields: minutes, sent, lost, RTTs, bytes.
type Minute = (u32, u32, u32, [Option<f64>; 3], u64);

/// Encode entries (in order) in this format.
pub(super) fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 8);
    out.push(FORMAT);
    put(&mut out, entries.len() as u64);
    if entries.is_empty() {
        return out;
    }
    let col = |out: &mut Vec<u8>, f: &dyn Fn(&Entry) -> i64| {
        let vals: Vec<i64> = entries.iter().map(f).collect();
        column(out, &vals);
    };
    col(&mut out, &|e| e.seq);
    col(&mut out, &|e| e.at_ms);
    col(&mut out, &|e| e.mono_ms.wrapping_sub(e.at_ms));
    col(&mut out, &|e| e.received_ms);
    let minutes: Vec<Minute> = entries
        .iter()
        .filter_map(|e| match &e.data {
            Data::Minutes {
                minutes,
                sent,
                lost,
                rtt,
                bytes,
            } => Some((*minutes, *sent, *lost, *rtt, *bytes)),
            Data::Heartbeat { .. } => None,
        })
        .collect();
    if minutes.len() != entries.len() {
        // Heartbeats (a pack holds one kind).
        col(&mut out, &|e| {
            i64::from(matches!(e.data, Data::Heartbeat { online: true }))
        });
        return out;
    }
    let mcol = |out: &mut Vec<u8>, f: &dyn Fn(&Minute) -> i64| {
        let vals: Vec<i64> = minutes.iter().map(f).collect();
        column(out, &vals);
    };
    mcol(&mut out, &|m| i64::from(m.0));
    mcol(&mut out, &|m| i64::from(m.1));
    mcol(&mut out, &|m| i64::from(m.2));
    mcol(&mut out, &|m| {
        m.3.iter()
            .enumerate()
            .map(|(i, v)| i64::from(v.is_some()) << i)
            .sum()
    });
    let exact = minutes
        .iter()
        .flat_map(|m| m.3.into_iter().flatten())
        .all(|v| centi(v).is_some());
    out.push(if exact { CENTIS } else { RAW });
    let mut rtt = [
        Vec::with_capacity(minutes.len()),
        Vec::with_capacity(minutes.len()),
        Vec::with_capacity(minutes.len()),
    ];
    for m in &minutes {
        let mut base = 0_i64;
        for (i, v) in m.3.iter().enumerate() {
            rtt[i].push(match (v, exact) {
                (None, _) => 0,
                (Some(v), true) => {
                    let c = centi(*v).unwrap_or(0);
                    let d = c.wrapping_sub(base);
                    base = c;
                    d
                }
                (Some(v), false) => v.to_bits() as i64,
            });
        }
    }
    for r in &rtt {
        column(&mut out, r);
    }
    mcol(&mut out, &|m| m.4 as i64);
    out
}

impl Reader<'_> {
    /// `n` values of a frame of `width` bits over `min`.
    fn frame(&mut self, n: usize, width: u32, min: i64) -> Result<Vec<i64>, Corrupt> {
        let bytes = (n * width as usize).div_ceil(8);
        let b = self
            .b
            .get(self.at..self.at + bytes)
            .ok_or(Corrupt("truncated"))?;
        self.at += bytes;
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1_u64 << width) - 1
        };
        let (mut acc, mut have, mut next) = (0_u128, 0_u32, 0_usize);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            while have < width {
                acc |= u128::from(b[next]) << have;
                next += 1;
                have += 8;
            }
            out.push(min.wrapping_add((acc as u64 & mask) as i64));
            acc >>= width;
            have -= width;
        }
        Ok(out)
    }

    fn runs(&mut self, n: usize) -> Result<Vec<i64>, Corrupt> {
        let count = self.u()?;
        if count > n as u64 {
            return Err(Corrupt("runs do not add up"));
        }
        let lens = self.plain(count as usize)?;
        let values = self.plain(count as usize)?;
        let mut out = Vec::with_capacity(n);
        for (len, v) in lens.into_iter().zip(values) {
            if len < 1 || len > (n - out.len()) as i64 {
                return Err(Corrupt("runs do not add up"));
            }
            out.extend(std::iter::repeat_n(v, len as usize));
        }
        if out.len() != n {
            return Err(Corrupt("runs do not add up"));
        }
        Ok(out)
    }

    /// A column of `n` values without runs.
    fn plain(&mut self, n: usize) -> Result<Vec<i64>, Corrupt> {
        match self.b.get(self.at) {
            Some(&tag) if tag & !DELTA == RUNS => Err(Corrupt("runs inside runs")),
            _ => self.column(n),
        }
    }

    /// A column of `n` values.
    fn column(&mut self, n: usize) -> Result<Vec<i64>, Corrupt> {
        let tag = self.byte()?;
        let delta = tag & DELTA != 0;
        let first = if delta && n > 0 {
            Some(self.i()?)
        } else {
            None
        };
        let m = if first.is_some() { n - 1 } else { n };
        let vals = match tag & !DELTA {
            RUNS => self.runs(m)?,
            width @ 0..=64 => {
                let min = self.i()?;
                self.frame(m, u32::from(width), min)?
            }
            _ => return Err(Corrupt("unknown column")),
        };
        Ok(match first {
            Some(first) => {
                let mut out = Vec::with_capacity(n);
                out.push(first);
                for d in vals {
                    let v = out[out.len() - 1].wrapping_add(d);
                    out.push(v);
                }
                out
            }
            None => vals,
        })
    }
}

fn u32_of(v: i64) -> Result<u32, Corrupt> {
    u32::try_from(v).map_err(|_| Corrupt("count out of range"))
}

/// Decode a body of this format (of link summaries or heartbeats): its
/// segments one after the other.
pub(super) fn decode(minutes_kind: bool, body: &[u8]) -> Result<Vec<Entry>, Corrupt> {
    let mut r = Reader { b: body, at: 0 };
    let mut out = Vec::new();
    loop {
        segment(minutes_kind, &mut r, &mut out)?;
        // A pack spans at most MAX_SPAN sequence numbers.
        if out.len() > MAX_SPAN as usize + 1 {
            return Err(Corrupt("too many entries"));
        }
        if r.at == body.len() {
            return Ok(out);
        }
    }
}

/// Decode one segment at `r` onto `out`.
fn segment(minutes_kind: bool, r: &mut Reader, out: &mut Vec<Entry>) -> Result<(), Corrupt> {
    if r.byte()? != FORMAT {
        return Err(Corrupt("unknown format"));
    }
    let n = r.u()?;
    if n > MAX_SPAN as u64 + 1 {
        return Err(Corrupt("too many entries"));
    }
    let n = n as usize;
    if n == 0 {
        return Ok(());
    }
    let seq = r.column(n)?;
    let at = r.column(n)?;
    let mono = r.column(n)?;
    let received = r.column(n)?;
    let data: Vec<Data> = if minutes_kind {
        let minutes = r.column(n)?;
        let sent = r.column(n)?;
        let lost = r.column(n)?;
        let mask = r.column(n)?;
        let raw = match r.byte()? {
            CENTIS => false,
            RAW => true,
            _ => return Err(Corrupt("unknown RTT encoding")),
        };
        let rtt = [r.column(n)?, r.column(n)?, r.column(n)?];
        let bytes = r.column(n)?;
        (0..n)
            .map(|k| {
                let mut out = [None; 3];
                let mut base = 0_i64;
                for (i, v) in out.iter_mut().enumerate() {
                    if mask[k] & (1 << i) == 0 {
                        continue;
                    }
                    *v = Some(if raw {
                        f64::from_bits(rtt[i][k] as u64)
                    } else {
                        base = base.wrapping_add(rtt[i][k]);
                        base as f64 / 100.0
                    });
                }
                Ok(Data::Minutes {
                    minutes: u32_of(minutes[k])?,
                    sent: u32_of(sent[k])?,
                    lost: u32_of(lost[k])?,
                    rtt: out,
                    bytes: bytes[k] as u64,
                })
            })
            .collect::<Result<_, Corrupt>>()?
    } else {
        r.column(n)?
            .into_iter()
            .map(|v| Data::Heartbeat { online: v != 0 })
            .collect()
    };
    out.extend(data.into_iter().enumerate().map(|(k, data)| Entry {
        seq: seq[k],
        at_ms: at[k],
        mono_ms: mono[k].wrapping_add(at[k]),
        received_ms: received[k],
        data,
    }));
    Ok(())
}
