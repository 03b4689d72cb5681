//! Traffic as evidence on a metered active link: the kernel's per-interface
//! packet counters in (`/sys/class/net/IF/statistics/{rx,tx}_packets`, less
//! the multicast ones: multicast received (`statistics/multicast`) and IPv6
//! multicast sent (`Ip6OutMcastPkts` in `/proc/net/dev_snmp6/IF`: router
//! solicitations, MLD reports) neither prove the link nor await an answer;
//! read through [`CounterSource`] so tests can feed their own), a verdict
//! out. The watch itself is pure: readings with timestamps in, never a clock.
//!
//! Verdicts, one per reading:
//! - [`Verdict::Alive`]: packets arrived since the last reading. The link
//!   works; no probe is needed.
//! - [`Verdict::Unanswered`]: the link sent packets and nothing has arrived
//!   for `quiet` (the link's probe timeout) since the reading that first saw
//!   them: probe now, with every target.
//! - [`Verdict::Waiting`]: sent, not yet overdue.
//! - [`Verdict::Idle`]: nothing sent, nothing received: the slow rounds do.
//!
//! A link that only sends (a one-way stream: nothing ever answers, yet the
//! link is fine) would ask for a round every `quiet`: after each clean round
//! it asked for, the watch waits twice as long before asking again (from one
//! second up to `backoff_max`), until packets arrive that were not the answers
//! to our own probes.

use crate::shared::time::Millis;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Packets through an interface since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub rx_packets: u64,
    pub tx_packets: u64,
}

/// Errors reading counters.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("cannot read traffic counter {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("traffic counter {path} does not hold a number: {text:?}")]
    Parse { path: PathBuf, text: String },
}

/// Where counters come from.
pub trait CounterSource: Send + Sync {
    fn read(&self, iface: &str) -> Result<Counters, TrafficError>;
}

/// The kernel's counters under a sysfs root (normally `/sys/class/net`) and
/// the per-interface IPv6 figures (normally `/proc/net/dev_snmp6`).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
    snmp6: PathBuf,
}

impl Sysfs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysfs::with_snmp6(root, "/proc/net/dev_snmp6")
    }

    pub fn with_snmp6(root: impl Into<PathBuf>, snmp6: impl Into<PathBuf>) -> Self {
        Sysfs {
            root: root.into(),
            snmp6: snmp6.into(),
        }
    }

    /// IPv6 multicast packets sent (0 without IPv6 on the interface).
    fn ipv6_multicast_out(&self, iface: &str) -> Result<u64, TrafficError> {
        let path = self.snmp6.join(iface);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(0);
        };
        let Some(v) = text.lines().find_map(|l| l.strip_prefix("Ip6OutMcastPkts")) else {
            return Ok(0);
        };
        v.trim().parse().map_err(|_| TrafficError::Parse {
            path,
            text: v.trim().to_string(),
        })
    }
}

fn read_number(path: &Path) -> Result<u64, TrafficError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrafficError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim().parse().map_err(|_| TrafficError::Parse {
        path: path.to_path_buf(),
        text: text.trim().to_string(),
    })
}

impl CounterSource for Sysfs {
    fn read(&self, iface: &str) -> Result<Counters, TrafficError> {
        let dir = self.root.join(iface).join("statistics");
        let rx = read_number(&dir.join("rx_packets"))?;
        let tx = read_number(&dir.join("tx_packets"))?;
        // Not every driver counts multicast received.
        let rx_multicast = read_number(&dir.join("multicast")).unwrap_or(0);
        Ok(Counters {
            rx_packets: rx.saturating_sub(rx_multicast),
            tx_packets: tx.saturating_sub(self.ipv6_multicast_out(iface)?),
        })
    }
}

/// What one reading says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Alive,
    Waiting,
    Unanswered,
    Idle,
}

/// The first wait after a clean round the watch asked for.
const BACKOFF_MIN: Duration = Duration::from_secs(1);

/// The traffic watch of one link.
#[derive(Debug, Clone)]
pub struct TrafficWatch {
    backoff_max: Duration,
    last: Option<Counters>,
    /// The reading that first saw packets sent with nothing received since.
    unanswered_since: Option<Millis>,
    /// When the watch last asked for a round, and the wait before the next.
    asked: Option<Millis>,
    backoff: Duration,
}

impl TrafficWatch {
    /// A watch that backs off up to `backoff_max` (the slow round interval).
    pub fn new(backoff_max: Duration) -> Self {
        TrafficWatch {
            backoff_max: backoff_max.max(BACKOFF_MIN),
            last: None,
            unanswered_since: None,
            asked: None,
            backoff: Duration::ZERO,
        }
    }

    /// A reading taken at `at`. `quiet`: how long sent packets may go
    /// unanswered (the link's probe timeout). `probing`: one of our own probes
    /// was in flight since the previous reading (its answers are not the
    /// traffic of others).
    pub fn sample(&mut self, at: Millis, c: Counters, quiet: Duration, probing: bool) -> Verdict {
        let Some(prev) = self.last.replace(c) else {
            return Verdict::Idle;
        };
        if c.rx_packets < prev.rx_packets || c.tx_packets < prev.tx_packets {
            // The interface was re-created: a new baseline.
            self.unanswered_since = None;
            return Verdict::Idle;
        }
        if c.rx_packets > prev.rx_packets {
            self.unanswered_since = None;
            if !probing {
                self.backoff = Duration::ZERO;
            }
            return Verdict::Alive;
        }
        if c.tx_packets > prev.tx_packets && self.unanswered_since.is_none() {
            self.unanswered_since = Some(at);
        }
        let Some(since) = self.unanswered_since else {
            return Verdict::Idle;
        };
        let overdue = at.saturating_sub(since) >= quiet;
        let allowed = self
            .asked
            .is_none_or(|a| at.saturating_sub(a) >= self.backoff);
        if overdue && allowed {
            self.asked = Some(at);
            self.unanswered_since = None;
            return Verdict::Unanswered;
        }
        Verdict::Waiting
    }

    /// The round asked for by the last [`Verdict::Unanswered`] came back.
    pub fn round_done(&mut self, clean: bool) {
        self.backoff = if clean {
            (self.backoff * 2).clamp(BACKOFF_MIN, self.backoff_max)
        } else {
            Duration::ZERO
        };
    }

    /// Forget the baseline (the watch was paused: the link was not active).
    pub fn reset(&mut self) {
        self.last = None;
        self.unanswered_since = None;
    }
}

#[cfg(test)]
mod tests;
