//! Time as the pure code sees it: milliseconds on a monotonic axis, chosen by the
//! caller, so tests drive hours of simulated time without a clock.

use std::time::{Duration, SystemTime};

/// A point on a monotonic time axis, in milliseconds from an arbitrary origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    pub fn saturating_sub(self, other: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(other.0))
    }
    pub fn plus(self, d: Duration) -> Millis {
        Millis(self.0 + d.as_millis() as u64)
    }
}

/// Maps the runtime's monotonic clock onto [`Millis`] and wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: tokio::time::Instant,
    origin_wall: SystemTime,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            origin: tokio::time::Instant::now(),
            origin_wall: SystemTime::now(),
        }
    }
    pub fn now(&self) -> Millis {
        Millis(self.origin.elapsed().as_millis() as u64)
    }
    /// Wall-clock time of a monotonic point (good enough for display).
    pub fn wall(&self, at: Millis) -> SystemTime {
        self.origin_wall + Duration::from_millis(at.0)
    }
}

/// RFC 3339 in UTC, seconds precision with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Wall-clock time as Unix milliseconds (0 before 1970, saturating far in
/// the future): the one reading of "now" for stamps the collector and the
/// CLI store or compare.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A calendar date written strictly `YYYY-MM-DD` (jiff alone would also take
/// other ISO 8601 forms).
pub fn parse_date(s: &str) -> Option<jiff::civil::Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    jiff::civil::Date::new(
        s[0..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..10].parse().ok()?,
    )
    .ok()
}
