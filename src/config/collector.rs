//! The collector's configuration: where it listens, which database it uses,
//! TLS, request limits and logging. One `[collector]` table; unknown keys are
//! rejected and every error names the file, the key and the fix.
//!
//! ```toml
//! [collector]
//! listen = "0.0.0.0:8443"
//! database = "sqlite:///var/lib/linkwatch/collector.db"   # or postgres://user@host/db
//! tls_cert = "/etc/linkwatch/collector.crt"                # PEM; both or neither
//! tls_key = "/etc/linkwatch/collector.key"
//! max_body_bytes = 4194304
//! max_inflight = 256
//! max_inflight_per_device = 2            # one device's uploads at once; more get 429
//! min_body_rate = 1024                   # bytes/s over each body_rate_window, or 408
//! body_rate_window = "10s"
//! header_timeout = "10s"                 # a request's head must arrive within this
//! idle_timeout = "30s"                   # a kept connection with nothing sent is closed
//! max_connections = 10000                # lowered to fit the open-file limit
//! log_format = "auto"
//! log_level = "info"
//! rollup_interval = "1m"                  # how often roll-ups are brought up to date
//! rollup_schedules = ["always", "office"] # schedules whose days and hours reports read from roll-ups ("office": each office's own hours)
//! raw_retention_days = 14                 # minute summaries kept this long; 0 keeps them for ever
//! hour_retention_days = 90                # hour rows kept this long (day rows for ever); 0 keeps them for ever
//! holidays_file = "/etc/linkwatch/holidays.txt"  # optional: one YYYY-MM-DD per line
//! ```
//!
//! Without a file, [`CollectorConfig::embedded`] is the one-command start:
//! `sqlite://linkwatch-collector.db` in the current directory, plain HTTP on
//! `127.0.0.1:8080`.

use super::{ConfigError, read_file};
use crate::shared::logging::LogFormat;
use crate::shared::schedule::{Schedule, parse_holidays, parse_schedule};
use crate::wire::v1::{MAX_BODY, MAX_BODY_DECOMPRESSED};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Database of the embedded default (relative: the current directory).
pub const EMBEDDED_DATABASE: &str = "sqlite://linkwatch-collector.db";
/// Listener of the embedded default.
pub const EMBEDDED_LISTEN: &str = "127.0.0.1:8080";
/// Most concurrent ingest requests a config may allow.
pub const MAX_INFLIGHT_LIMIT: usize = 100_000;
/// Most open connections a config may allow.
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

/// `[collector]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSection {
    /// Address and port of the ingest API.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (`sqlite:///abs/path`) or `postgres://...`.
    pub database: String,
    /// PEM certificate chain; with `tls_key`, the API is served over HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted, as sent (compressed or not), in bytes.
    pub max_body_bytes: usize,
    /// Ingest requests handled at once; more are answered 429.
    pub max_inflight: usize,
    /// Ingest requests of one device handled at once; more are answered 429.
    pub max_inflight_per_device: usize,
    /// Slowest accepted request body, bytes per second over each
    /// `body_rate_window`; slower bodies are cut with 408.
    pub min_body_rate: u64,
    #[serde(with = "humantime_serde")]
    pub body_rate_window: Duration,
    /// A connection's request head (request line and headers) must arrive
    /// within this of its first byte, and a new connection's first request
    /// head (TLS handshake included) within this of the connection.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A kept connection on which nothing arrives for this long after an
    /// answer is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Client connections open at once (lowered at start to fit the
    /// process's open-file limit). A new one beyond it closes the longest
    /// idle connection, or is closed at once when none is idle.
    pub max_connections: usize,
    pub log_format: LogFormat,
    pub log_level: String,
    /// How often the roll-ups are brought up to date.
    #[serde(with = "humantime_serde")]
    pub rollup_interval: Duration,
    /// Schedules rolled up per day and per hour (spelled as the report's
    /// `schedule`).
    pub rollup_schedules: Vec<String>,
    /// Raw minute summaries older than this many days are deleted (and
    /// days older are not recomputed); 0 keeps them for ever.
    pub raw_retention_days: u32,
    /// Hour rows older than this many days are deleted (day rows are kept
    /// for ever); 0 keeps them for ever. At least `raw_retention_days`.
    pub hour_retention_days: u32,
    /// Public holidays (one `YYYY-MM-DD` per line, `#` comments): no office
    /// hours on those days, in reports and roll-ups alike.
    pub holidays_file: Option<PathBuf>,
}

impl Default for CollectorSection {
    fn default() -> Self {
        CollectorSection {
            listen: "127.0.0.1:8443".parse().expect("static address"),
            database: "sqlite:///var/lib/linkwatch/collector.db".into(),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: MAX_BODY,
            max_inflight: 256,
            max_inflight_per_device: 2,
            min_body_rate: 1024,
            body_rate_window: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            log_format: LogFormat::Auto,
            log_level: "info".into(),
            rollup_interval: Duration::from_secs(60),
            rollup_schedules: vec!["always".into(), "office".into()],
            raw_retention_days: 14,
            hour_retention_days: DEFAULT_HOUR_RETENTION_DAYS,
            holidays_file: None,
        }
    }
}

/// The whole collector configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    #[serde(default)]
    pub collector: CollectorSection,
    /// `[alerts]` (see `docs/alerts.md`) as written; compiled and checked by
    /// `collector::alerts::setup` when the collector or `validate` loads the file.
    #[serde(default)]
    pub alerts: Option<crate::config::alerts::AlertsSection>,
    /// Where this configuration was read from (not a key); empty for the
    /// embedded default.
    #[serde(skip)]
    pub path: PathBuf,
    /// The holidays of `holidays_file` (not a key), read when the file is loaded.
    #[serde(skip)]
    pub holidays: BTreeSet<jiff::civil::Date>,
    /// `collector.rollup_schedules` parsed (not a key; holidays not yet
    /// applied), when the file is loaded.
    #[serde(skip)]
    pub rollup_schedules: Vec<Schedule>,
}

/// The limits of one ingest request's body (from `[collector]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestLimits {
    /// Uploads of one device handled at once; more are answered 429.
    pub max_inflight_per_device: usize,
    /// Slowest accepted body, bytes per second, averaged over each
    /// `body_rate_window`: slower bodies are cut with 408.
    pub min_body_rate: u64,
    pub body_rate_window: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_inflight_per_device: 2,
            min_body_rate: 1024,
            body_rate_window: Duration::from_secs(10),
        }
    }
}

/// What the roll-up maintainer does (from `[collector]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RollupSettings {
    /// The schedules rolled up (holidays applied), stored under the
    /// roll-ups' schedule key: a report uses them when its schedule, with
    /// the collector's holidays, is the same.
    pub schedules: Vec<Schedule>,
    /// Days before this many are never (re)computed; raw minute summaries
    /// older are deleted. `None`: keep raw data for ever, back-fill at most
    /// the longest report range.
    pub raw_retention_days: Option<i64>,
    /// Hour rows older than this many days are deleted (day rows are kept
    /// for ever). `None`: kept for ever.
    pub hour_retention_days: Option<i64>,
    pub interval: Duration,
}

/// `collector.hour_retention_days` by default: the last three months hour
/// by hour. Hour rows cost about 5.6 KB a device-day on SQLite and 24 KB
/// on PostgreSQL (`cargo bench --bench storage`), so keeping them for years
/// is left to the operator's choice.
pub const DEFAULT_HOUR_RETENTION_DAYS: u32 = 90;

impl Default for RollupSettings {
    fn default() -> Self {
        RollupSettings {
            schedules: default_rollup_schedules(),
            raw_retention_days: Some(14),
            hour_retention_days: Some(i64::from(DEFAULT_HOUR_RETENTION_DAYS)),
            interval: Duration::from_secs(60),
        }
    }
}

/// `always` and `office`, the default `rollup_schedules`.
fn default_rollup_schedules() -> Vec<Schedule> {
    vec![
        Schedule::Always,
        parse_schedule("office").expect("built-in schedule"),
    ]
}

impl CollectorConfig {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_file(path)?;
        Self::parse(&text, path)
    }

    /// Parse and validate config text; `path` is only used in messages (and
    /// to resolve nothing: relative paths stay relative to the working directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: CollectorConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.path = path.to_path_buf();
        cfg.validate()?;
        cfg.rollup_schedules = cfg.parse_rollup_schedules()?;
        if let Some(file) = &cfg.collector.holidays_file {
            let text = std::fs::read_to_string(file).map_err(|e| {
                cfg.invalid(
                    "collector.holidays_file",
                    format!(
                        "cannot read {}: {e}; give the path of a text file with one YYYY-MM-DD per line",
                        file.display()
                    ),
                )
            })?;
            cfg.holidays = parse_holidays(&text).map_err(|e| {
                cfg.invalid(
                    "collector.holidays_file",
                    format!("{}: {e}", file.display()),
                )
            })?;
        }
        // The `[alerts]` section means what the alert engine says:
        // `collector::alerts::setup::alerts_config` compiles it (the
        // collector and `validate` call it right after loading).
        Ok(cfg)
    }

    /// When a device counts as silent: (the upload interval assumed for
    /// agents that announce no deadline, the grace past the deadline), in
    /// ms, from `[alerts]` or its defaults.
    pub fn silence_ms(&self) -> (i64, i64) {
        let default = crate::config::alerts::AlertsSection::default();
        let a = self.alerts.as_ref().unwrap_or(&default);
        (
            a.upload_interval.as_millis() as i64,
            a.grace.as_millis() as i64,
        )
    }

    /// The configuration used when no file is given: SQLite in the current
    /// directory, plain HTTP on loopback port 8080.
    pub fn embedded() -> Self {
        CollectorConfig {
            collector: CollectorSection {
                listen: EMBEDDED_LISTEN.parse().expect("static address"),
                database: EMBEDDED_DATABASE.into(),
                ..CollectorSection::default()
            },
            path: PathBuf::from("(embedded default)"),
            holidays: BTreeSet::new(),
            rollup_schedules: default_rollup_schedules(),
            alerts: None,
        }
    }

    /// The (certificate, key) PEM paths when the API is served over TLS.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        match (&self.collector.tls_cert, &self.collector.tls_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        }
    }

    /// The limits of one ingest request's body.
    pub fn ingest_limits(&self) -> IngestLimits {
        let c = &self.collector;
        IngestLimits {
            max_inflight_per_device: c.max_inflight_per_device,
            min_body_rate: c.min_body_rate,
            body_rate_window: c.body_rate_window,
        }
    }

    /// What the roll-up maintainer does.
    pub fn rollup_settings(&self) -> RollupSettings {
        let c = &self.collector;
        RollupSettings {
            schedules: self
                .rollup_schedules
                .iter()
                .map(|s| s.clone().with_holidays(self.holidays.clone()))
                .collect(),
            raw_retention_days: (c.raw_retention_days > 0)
                .then_some(i64::from(c.raw_retention_days)),
            hour_retention_days: (c.hour_retention_days > 0)
                .then_some(i64::from(c.hour_retention_days)),
            interval: c.rollup_interval,
        }
    }

    /// The warning to log when the API is served without TLS, stronger when
    /// the listener is not on loopback. `None` with TLS.
    pub fn plain_http_warning(&self) -> Option<String> {
        if self.tls().is_some() {
            return None;
        }
        let listen = self.collector.listen;
        Some(if listen.ip().is_loopback() {
            format!(
                "serving plain HTTP on {listen} (no tls_cert/tls_key): bearer tokens travel unencrypted; \
                 keep it on loopback or behind a TLS-terminating proxy"
            )
        } else {
            format!(
                "serving plain HTTP on {listen}, which is NOT a loopback address: bearer tokens and \
                 records travel unencrypted. Set tls_cert and tls_key, or listen on 127.0.0.1 behind \
                 a TLS-terminating proxy"
            )
        })
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// `collector.rollup_schedules`, parsed; the error names the entry.
    fn parse_rollup_schedules(&self) -> Result<Vec<Schedule>, ConfigError> {
        self.collector
            .rollup_schedules
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                parse_schedule(spec).map_err(|e| {
                    self.invalid(format!("collector.rollup_schedules[{i}]"), e.to_string())
                })
            })
            .collect()
    }

    /// Check every rule the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.collector;
        check_database(&c.database).map_err(|m| self.invalid("collector.database", m))?;
        match (&c.tls_cert, &c.tls_key) {
            (Some(_), None) => {
                return Err(self.invalid(
                    "collector.tls_key",
                    "tls_cert is set but tls_key is not: set both (PEM files) or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(self.invalid(
                    "collector.tls_cert",
                    "tls_key is set but tls_cert is not: set both (PEM files) or neither",
                ));
            }
            (Some(cert), Some(key)) => {
                for (k, p) in [("collector.tls_cert", cert), ("collector.tls_key", key)] {
                    if !p.is_file() {
                        return Err(self.invalid(
                            k,
                            format!(
                                "{} is not a readable file: give the path of a PEM file",
                                p.display()
                            ),
                        ));
                    }
                }
                // The private key: refused when others can read it.
                crate::shared::files::check_private(key)
                    .map_err(|e| self.invalid("collector.tls_key", e.to_string()))?;
            }
            (None, None) => {}
        }
        if c.max_body_bytes < 1024 || c.max_body_bytes > MAX_BODY_DECOMPRESSED {
            return Err(self.invalid(
                "collector.max_body_bytes",
                format!(
                    "must be between 1024 and {MAX_BODY_DECOMPRESSED} bytes (default {MAX_BODY})"
                ),
            ));
        }
        if c.max_inflight == 0 || c.max_inflight > MAX_INFLIGHT_LIMIT {
            return Err(self.invalid(
                "collector.max_inflight",
                format!("must be between 1 and {MAX_INFLIGHT_LIMIT} (default 256)"),
            ));
        }
        if c.max_inflight_per_device == 0 || c.max_inflight_per_device > c.max_inflight {
            return Err(self.invalid(
                "collector.max_inflight_per_device",
                format!(
                    "must be between 1 and max_inflight ({}) (default 2)",
                    c.max_inflight
                ),
            ));
        }
        if c.min_body_rate == 0 || c.min_body_rate > 1 << 24 {
            return Err(self.invalid(
                "collector.min_body_rate",
                "must be between 1 and 16777216 bytes per second (default 1024)",
            ));
        }
        for (key, d, lo, hi, default) in [
            (
                "collector.body_rate_window",
                c.body_rate_window,
                1,
                300,
                "10s",
            ),
            ("collector.header_timeout", c.header_timeout, 1, 120, "10s"),
            ("collector.idle_timeout", c.idle_timeout, 1, 3600, "30s"),
        ] {
            if d < Duration::from_secs(lo) || d > Duration::from_secs(hi) {
                return Err(self.invalid(
                    key,
                    format!("must be between {lo}s and {hi}s (default \"{default}\")"),
                ));
            }
        }
        if c.max_connections < 16 || c.max_connections > MAX_CONNECTIONS_LIMIT {
            return Err(self.invalid(
                "collector.max_connections",
                format!("must be between 16 and {MAX_CONNECTIONS_LIMIT} (default 10000)"),
            ));
        }
        if c.rollup_interval < Duration::from_secs(1)
            || c.rollup_interval > Duration::from_secs(3600)
        {
            return Err(self.invalid(
                "collector.rollup_interval",
                "must be between 1s and 1h (default \"1m\")",
            ));
        }
        if c.raw_retention_days != 0 && c.raw_retention_days < 7 {
            return Err(self.invalid(
                "collector.raw_retention_days",
                "must be 0 (keep for ever) or at least 7 days (default 14): late data up to a week old is common",
            ));
        }
        if c.hour_retention_days != 0
            && (c.raw_retention_days == 0 || c.hour_retention_days < c.raw_retention_days)
        {
            return Err(self.invalid(
                "collector.hour_retention_days",
                format!(
                    "must be 0 (keep for ever) or at least raw_retention_days ({}): hour rows \
                     cannot be made again once the raw data is gone (default {DEFAULT_HOUR_RETENTION_DAYS})",
                    c.raw_retention_days
                ),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&c.log_level).is_err() {
            return Err(self.invalid(
                "collector.log_level",
                format!(
                    "`{}` is not a log level: use error, warn, info, debug or trace",
                    c.log_level
                ),
            ));
        }
        Ok(())
    }
}

/// `Ok` when `url` names a database the store can open; the message says how
/// to write one otherwise.
fn check_database(url: &str) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        if path.is_empty() {
            return Err(format!(
                "`{url}` names no file: use sqlite:///var/lib/linkwatch/collector.db (absolute) \
                 or sqlite://collector.db (relative to the working directory)"
            ));
        }
        return Ok(());
    }
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            if rest.is_empty() || rest.starts_with('/') && rest.len() == 1 {
                return Err(format!(
                    "`{url}` names no server: use postgres://USER:PASSWORD@HOST:5432/DATABASE"
                ));
            }
            return Ok(());
        }
    }
    Err(format!(
        "`{url}` is not a supported database URL: use sqlite:///PATH or postgres://USER@HOST/DATABASE"
    ))
}

#[cfg(test)]
mod tests;
