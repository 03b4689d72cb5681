//! The agent's record of what it learned: a cheap handle the workers and the
//! main loop use to hand protocol-v1 bodies to the spool writer, and the
//! stamping of each record with wall-clock time, monotonic time since boot
//! and the boot id (so the collector can order records and tell reboots).

use crate::wire::v1::Body;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// What the spool writer receives, in order.
#[derive(Debug)]
pub enum ToSpool {
    /// A record: wall-clock ms, monotonic ms since boot, body.
    Record(i64, u64, Body),
    /// Answer once everything sent before is on disk.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Hands bodies to the spool writer. Cloning is cheap; recording never blocks.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: Option<mpsc::UnboundedSender<ToSpool>>,
    stamp: Stamp,
}

impl Recorder {
    /// A recorder and the receiving end the spool writer drains.
    pub fn new(stamp: Stamp) -> (Self, mpsc::UnboundedReceiver<ToSpool>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Recorder {
                tx: Some(tx),
                stamp,
            },
            rx,
        )
    }
    /// A recorder that records nothing (tests, `check`).
    pub fn disabled() -> Self {
        Recorder {
            tx: None,
            stamp: Stamp::now(),
        }
    }
    /// Does this recorder hand records to a spool?
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }
    /// Record `body`, stamped now.
    pub fn record(&self, body: Body) {
        if let Some(tx) = &self.tx {
            let (at, mono) = self.stamp.now_pair();
            let _ = tx.send(ToSpool::Record(at, mono, body));
        }
    }
    /// Wait until everything recorded so far is on disk.
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(ToSpool::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }
    pub fn stamp(&self) -> &Stamp {
        &self.stamp
    }
}

/// Clock readings for records: the wall clock, and milliseconds since boot
/// from CLOCK_BOOTTIME, which keeps counting while the machine is suspended
/// (std's `Instant` is CLOCK_MONOTONIC, which stops: a laptop that slept
/// would look as if its wall clock had stepped).
#[derive(Clone, Debug)]
pub struct Stamp {
    pub boot_id: String,
}

/// CLOCK_BOOTTIME in milliseconds (the kernel has it since Linux 2.6.39).
fn boottime_ms() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    match clock_gettime(ClockId::CLOCK_BOOTTIME) {
        Ok(ts) => (ts.tv_sec().max(0) as u64) * 1000 + (ts.tv_nsec().max(0) as u64) / 1_000_000,
        // Not on any kernel the agent supports; /proc/uptime is the same clock.
        Err(_) => std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .map(|s| (s * 1000.0) as u64)
            .unwrap_or(0),
    }
}

impl Stamp {
    /// Read the boot id from /proc.
    pub fn now() -> Self {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Stamp { boot_id }
    }
    /// (wall-clock Unix ms, CLOCK_BOOTTIME ms).
    pub fn now_pair(&self) -> (i64, u64) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        (wall, boottime_ms())
    }
    /// Boot time of the machine, Unix seconds.
    pub fn boot_time(&self) -> i64 {
        let (wall, mono) = self.now_pair();
        (wall - mono as i64) / 1000
    }
}

/// Watches the wall clock against the monotonic one and reports steps.
#[derive(Debug, Clone)]
pub struct ClockWatch {
    last: Option<(i64, u64)>,
    /// Steps smaller than this are drift or NTP slewing, not worth a record.
    pub threshold_ms: i64,
}

impl Default for ClockWatch {
    fn default() -> Self {
        ClockWatch {
            last: None,
            threshold_ms: 5_000,
        }
    }
}

impl ClockWatch {
    /// Feed a (wall, mono) reading; returns the step in ms when the wall clock
    /// moved differently from the monotonic clock by more than the threshold.
    pub fn check(&mut self, wall: i64, mono: u64) -> Option<i64> {
        let step = self
            .last
            .map(|(w0, m0)| (wall - w0) - (mono as i64 - m0 as i64))
            .filter(|s| s.abs() > self.threshold_ms);
        self.last = Some((wall, mono));
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stamp's monotonic reading is time since boot (what /proc/uptime
    /// says, to the rounding of that file) and never goes back.
    #[test]
    fn monotonic_stamps_count_from_boot() {
        let s = Stamp::now();
        let (_, a) = s.now_pair();
        let uptime_ms = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .map(|v| (v * 1000.0) as u64)
            .expect("/proc/uptime");
        let (_, b) = s.now_pair();
        assert!(
            a <= uptime_ms + 20 && uptime_ms <= b + 20,
            "{a} {uptime_ms} {b}"
        );
        assert!(a <= b);
    }

    #[test]
    fn clock_steps_are_seen_both_ways_and_drift_is_not() {
        let mut w = ClockWatch::default();
        // (wall, mono) one minute apart; `offset` is what the wall clock did extra.
        let mut offset = 0i64;
        let mut at = |w: &mut ClockWatch, minute: i64, extra: i64| {
            offset += extra;
            w.check(
                1_000_000 + minute * 60_000 + offset,
                (10_000 + minute * 60_000) as u64,
            )
        };
        assert_eq!(at(&mut w, 0, 0), None);
        assert_eq!(at(&mut w, 1, 0), None);
        assert_eq!(at(&mut w, 2, 2_000), None, "2 s of drift is not a step");
        assert_eq!(at(&mut w, 3, -3_600_000), Some(-3_600_000));
        assert_eq!(at(&mut w, 4, 0), None);
        assert_eq!(at(&mut w, 5, 86_400_000), Some(86_400_000));
    }

    #[test]
    fn stamps_are_monotonic_and_boot_id_is_read() {
        let s = Stamp::now();
        assert!(!s.boot_id.is_empty());
        let (w1, m1) = s.now_pair();
        let (w2, m2) = s.now_pair();
        assert!(m2 >= m1 && w2 >= w1 - 1000);
        assert!(s.boot_time() > 1_600_000_000);
    }
}
