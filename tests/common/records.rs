//! One device's records for the collector tests, built in time order:
//! sequence numbers count up, each boot's monotonic clock starts an hour
//! before the boot is first seen.

use linkwatch::wire::v1::{Body, LifecycleEvent, Record};
use linkwatch::wire::{LinkKind, LinkState};

const HOUR: i64 = 3_600_000;

pub struct Recs {
    seq: u64,
    boot: String,
    boot_start: i64,
    pub out: Vec<Record>,
}

impl Recs {
    pub fn new() -> Recs {
        Recs {
            seq: 0,
            boot: String::new(),
            boot_start: 0,
            out: vec![],
        }
    }

    pub fn push(&mut self, t: i64, body: Body) {
        self.seq += 1;
        self.out.push(Record {
            seq: self.seq,
            seq_end: None,
            at: t,
            mono_ms: (t - self.boot_start + HOUR) as u64,
            boot_id: self.boot.clone(),
            body,
        });
    }

    fn lifecycle(&mut self, t: i64, event: LifecycleEvent) {
        self.push(
            t,
            Body::Lifecycle {
                event,
                boot_time: None,
                detail: None,
            },
        );
    }

    /// A new boot `boot` and the agent's start in it.
    pub fn start(&mut self, t: i64, boot: &str) {
        self.boot = boot.into();
        self.boot_start = t;
        self.lifecycle(t, LifecycleEvent::Start);
    }

    /// A clean stop.
    pub fn stop(&mut self, t: i64) {
        self.lifecycle(t, LifecycleEvent::Stop);
    }

    pub fn link(&mut self, t: i64, link: &str, kind: LinkKind, from: LinkState, to: LinkState) {
        self.push(
            t,
            Body::LinkState {
                link: link.into(),
                kind,
                from,
                to,
                reason: (to == LinkState::Down).then(|| "no reply".into()),
            },
        );
    }

    pub fn failover(&mut self, t: i64, from: Option<&str>, to: Option<&str>) {
        self.push(
            t,
            Body::Failover {
                from: from.map(String::from),
                to: to.map(String::from),
                cause: "test".into(),
                reason: String::new(),
            },
        );
    }

    /// A summary of `minutes` minutes ending at `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn minutes(
        &mut self,
        t: i64,
        link: &str,
        kind: LinkKind,
        minutes: u32,
        sent: u32,
        lost: u32,
        rtt: Option<f64>,
    ) {
        self.push(
            t,
            Body::LinkMinutes {
                link: link.into(),
                kind,
                minutes,
                sent,
                lost,
                rtt_p50_ms: rtt,
                rtt_p95_ms: None,
                rtt_max_ms: None,
                bytes: 0,
            },
        );
    }

    pub fn heartbeat(&mut self, t: i64, online: bool) {
        self.push(t, Body::Heartbeat { online, count: 1 });
    }
}
