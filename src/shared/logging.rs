//! Tracing set-up: plain text on a terminal, journald under systemd, JSON on request.

use std::str::FromStr;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// journald when started by systemd (`JOURNAL_STREAM` set), plain text otherwise.
    #[default]
    Auto,
    Text,
    Json,
    Journald,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            "journald" => Ok(LogFormat::Journald),
            other => Err(format!(
                "unknown log format `{other}`: use auto, text, json or journald"
            )),
        }
    }
}

/// The level filter: `RUST_LOG` when set, `default_level` otherwise. Both take
/// `tracing-subscriber` directives (`info`, `warn,linkwatch::agent=debug`).
/// With the collector built in this is an `EnvFilter` (span and field filters
/// too); the agent-only build takes `target=level` directives only
/// (`filter::Targets`), which saves it the regular-expression engine.
#[cfg(feature = "collector")]
fn level_filter(default_level: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level))
}

#[cfg(not(feature = "collector"))]
fn level_filter(default_level: &str) -> tracing_subscriber::filter::Targets {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| v.parse().ok());
    from_env
        .or_else(|| default_level.parse().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing::level_filters::LevelFilter::INFO)
        })
}

/// Install the global subscriber. `RUST_LOG` overrides `default_level`.
pub fn init(format: LogFormat, default_level: &str) {
    use tracing_subscriber::{fmt, prelude::*};
    let filter = level_filter(default_level);
    let format = match format {
        LogFormat::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        f => f,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => registry.with(layer).try_init(),
            Err(_) => registry
                .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
                .try_init(),
        },
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        _ => registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init(),
    };
    // A second init (tests) is harmless.
    let _ = result;
}
