//! Folding, pure: which runs of spooled records fold together ([`chunks`])
//! and what they fold into ([`fold_chunk`]), as the spool's module
//! documentation describes under "Disk budget and folding".

use super::{FOLD_MAX_HEARTBEATS, FOLD_MAX_MINUTES};
use crate::wire::v1::{Body, Record};
use std::collections::HashMap;
use std::ops::Range;

/// What folds together, and how much of the cap a record uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Group {
    Minutes(String, crate::wire::LinkKind),
    Heartbeat(bool),
}

fn group_of(body: &Body) -> Option<(Group, u32)> {
    match body {
        Body::LinkMinutes {
            link,
            kind,
            minutes,
            ..
        } => Some((Group::Minutes(link.clone(), *kind), *minutes)),
        Body::Heartbeat { online, count } => Some((Group::Heartbeat(*online), *count)),
        _ => None,
    }
}

fn cap(g: &Group) -> u32 {
    match g {
        Group::Minutes(..) => FOLD_MAX_MINUTES,
        Group::Heartbeat(_) => FOLD_MAX_HEARTBEATS,
    }
}

fn span(r: &Record) -> u64 {
    r.seq_end.unwrap_or(r.seq) - r.seq + 1
}

/// Cut `recs` (in seq order) into chunks of foldable records: never across a
/// non-foldable record, a boot, or a gap in the sequence, and no group over
/// its cap. Chunks are returned as index ranges; non-foldable records are in
/// none.
pub(super) fn chunks(recs: &[Record]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut totals: HashMap<Group, u32> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        let Some((g, n)) = group_of(&r.body) else {
            if let Some(s) = start.take() {
                out.push(s..i);
            }
            totals.clear();
            continue;
        };
        if let Some(s) = start {
            let prev = &recs[i - 1];
            let contiguous = prev.seq_end.unwrap_or(prev.seq) + 1 == r.seq;
            let over = totals.get(&g).copied().unwrap_or(0).saturating_add(n) > cap(&g);
            if !contiguous || prev.boot_id != r.boot_id || over {
                out.push(s..i);
                totals.clear();
                start = Some(i);
            }
        } else {
            start = Some(i);
        }
        let t = totals.entry(g).or_insert(0);
        *t = t.saturating_add(n);
    }
    if let Some(s) = start {
        out.push(s..recs.len());
    }
    out
}

/// Fold one chunk (foldable, contiguous, one boot) into one record per group,
/// partitioning the chunk's sequence range among them.
pub(super) fn fold_chunk(members: &[Record]) -> Vec<Record> {
    let mut order: Vec<Group> = Vec::new();
    let mut parts: HashMap<Group, Vec<&Record>> = HashMap::new();
    for r in members {
        let Some((g, _)) = group_of(&r.body) else {
            continue;
        };
        if !parts.contains_key(&g) {
            order.push(g.clone());
        }
        parts.entry(g).or_default().push(r);
    }
    let mut next_seq = members.first().map(|r| r.seq).unwrap_or(0);
    let mut out = Vec::with_capacity(order.len());
    for g in order {
        let group = &parts[&g];
        let width: u64 = group.iter().map(|r| span(r)).sum();
        let last = group[group.len() - 1];
        let seq = next_seq;
        let seq_end = seq + width - 1;
        next_seq = seq_end + 1;
        out.push(Record {
            seq,
            seq_end: (seq_end != seq).then_some(seq_end),
            at: last.at,
            mono_ms: last.mono_ms,
            boot_id: last.boot_id.clone(),
            body: merge_bodies(group),
        });
    }
    out
}

/// Merge the bodies of one group (see the module documentation).
pub(super) fn merge_bodies(group: &[&Record]) -> Body {
    match &group[0].body {
        Body::Heartbeat { online, .. } => Body::Heartbeat {
            online: *online,
            count: group
                .iter()
                .map(|r| match r.body {
                    Body::Heartbeat { count, .. } => count,
                    _ => 0,
                })
                .fold(0u32, u32::saturating_add),
        },
        Body::LinkMinutes { link, kind, .. } => {
            let (mut minutes, mut sent, mut lost, mut bytes) = (0u32, 0u32, 0u32, 0u64);
            let mut max: Option<f64> = None;
            let mut p50 = WeightedMean::default();
            let mut p95 = WeightedMean::default();
            for r in group {
                if let Body::LinkMinutes {
                    minutes: m,
                    sent: s,
                    lost: l,
                    rtt_p50_ms,
                    rtt_p95_ms,
                    rtt_max_ms,
                    bytes: b,
                    ..
                } = &r.body
                {
                    minutes = minutes.saturating_add(*m);
                    sent = sent.saturating_add(*s);
                    lost = lost.saturating_add(*l);
                    bytes = bytes.saturating_add(*b);
                    if let Some(x) = rtt_max_ms {
                        max = Some(max.map_or(*x, |m: f64| m.max(*x)));
                    }
                    let w = f64::from(s.saturating_sub(*l));
                    p50.add(*rtt_p50_ms, w);
                    p95.add(*rtt_p95_ms, w);
                }
            }
            let mut rtt_p95_ms = p95.value();
            if let (Some(p), Some(m)) = (rtt_p95_ms, max) {
                rtt_p95_ms = Some(p.min(m));
            }
            Body::LinkMinutes {
                link: link.clone(),
                kind: *kind,
                minutes,
                sent,
                lost: lost.min(sent),
                rtt_p50_ms: p50.value(),
                rtt_p95_ms,
                rtt_max_ms: max,
                bytes,
            }
        }
        other => other.clone(),
    }
}

/// Mean weighted by answered probes, falling back to the plain mean.
#[derive(Default)]
struct WeightedMean {
    sum_w: f64,
    sum_wx: f64,
    sum_x: f64,
    n: u32,
}

impl WeightedMean {
    fn add(&mut self, x: Option<f64>, w: f64) {
        if let Some(x) = x {
            self.sum_w += w;
            self.sum_wx += w * x;
            self.sum_x += x;
            self.n += 1;
        }
    }
    fn value(&self) -> Option<f64> {
        if self.n == 0 {
            None
        } else if self.sum_w > 0.0 {
            Some(self.sum_wx / self.sum_w)
        } else {
            Some(self.sum_x / f64::from(self.n))
        }
    }
}
