//! What the subcommands share: the async runtime, the clock, and how times
//! are printed in tables (the machine's local zone unless `--utc`; JSON keeps
//! RFC 3339).

pub mod agent;
#[cfg(feature = "collector")]
pub mod alerts;
#[cfg(feature = "collector")]
pub mod collector;
#[cfg(feature = "collector")]
pub mod contacts;
pub mod docs;
#[cfg(feature = "collector")]
pub mod silences;
#[cfg(feature = "collector")]
pub mod storage;
#[cfg(feature = "collector")]
pub mod tables;
#[cfg(feature = "collector")]
pub mod users;

use anyhow::{Context, Result};

/// A small multi-threaded runtime for one-shot commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(feature = "collector")]
pub use linkwatch::shared::time::now_ms;

/// How tables print instants: in the machine's zone (`TZ`, else
/// /etc/localtime), or in UTC with `--utc`.
pub struct Times {
    tz: jiff::tz::TimeZone,
}

impl Times {
    pub fn new(utc: bool) -> Self {
        Times {
            tz: if utc {
                jiff::tz::TimeZone::UTC
            } else {
                jiff::tz::TimeZone::system()
            },
        }
    }

    #[cfg_attr(not(feature = "collector"), allow(dead_code))]
    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.tz
    }

    /// `2026-12-06 09:15:00 +06` (Unix milliseconds in).
    #[cfg_attr(not(feature = "collector"), allow(dead_code))]
    pub fn ms(&self, ms: i64) -> String {
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(t) => self.format(t),
            Err(_) => ms.to_string(),
        }
    }

    /// An RFC 3339 instant from a status document, in this zone; other text as it is.
    pub fn rfc3339(&self, text: &str) -> String {
        match text.parse::<jiff::Timestamp>() {
            Ok(t) => self.format(t),
            Err(_) => text.to_string(),
        }
    }

    fn format(&self, t: jiff::Timestamp) -> String {
        t.to_zoned_datetime(self.tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::Times;

    #[test]
    fn instants_are_shown_in_the_chosen_zone() {
        let dhaka = Times {
            tz: jiff::tz::TimeZone::get("Asia/Dhaka").unwrap(),
        };
        assert_eq!(dhaka.ms(1_764_979_200_000), "2025-12-06 06:00:00 +06");
        assert_eq!(
            dhaka.rfc3339("2025-12-06T00:00:00Z"),
            "2025-12-06 06:00:00 +06"
        );
        assert_eq!(dhaka.rfc3339("not a time"), "not a time");
        let utc = Times::new(true);
        assert_eq!(utc.ms(1_764_979_200_000), "2025-12-06 00:00:00 UTC");
    }
}
