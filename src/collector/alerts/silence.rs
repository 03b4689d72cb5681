//! Silences and maintenance windows as people ask for them (API, CLI): the
//! target written as text (`device:NAME`, `office:CODE`, a branch
//! `upazila:A / B / C`, `ministry`), the request checked and bounded, and
//! whether an API token limited to a branch may set or see one. Pure: the
//! clock, the devices and offices are given. What a silence does to alerts
//! is the evaluator's (`evaluate`, `unreachable`): nothing new is told while
//! it lasts; a subject still down at its end is told then.

use crate::collector::alerts::branch::{BranchSpec, RouteLevel};
use crate::collector::alerts::model::{Silence, Target};
use crate::collector::model::{Branch, Level, Office};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Longest target and reason, in characters.
pub const MAX_TEXT: usize = 200;
/// Longest silence: 90 days.
pub const MAX_SPAN_MS: i64 = 90 * 86_400_000;
/// Latest start of a planned window: a year ahead.
pub const MAX_LEAD_MS: i64 = 366 * 86_400_000;
/// Shortest silence: one minute.
pub const MIN_SPAN_MS: i64 = 60_000;

/// A request that cannot be used: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SilenceError {
    pub field: &'static str,
    pub message: String,
    /// The target names nothing this caller may see (404 rather than 400).
    pub not_found: bool,
}

fn bad(field: &'static str, message: impl Into<String>) -> SilenceError {
    SilenceError {
        field,
        message: message.into(),
        not_found: false,
    }
}

/// A silence as asked for: by the API (JSON body) or the CLI (flags).
/// `end` or `duration` (one of them) says when it ends; `start` (RFC 3339)
/// makes it a planned maintenance window (default: now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    pub target: String,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    /// `2h`, `90m`, `3days` (from the start).
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a silence may name: the devices (name → office) and offices known.
pub struct Known<'a> {
    pub devices: &'a BTreeMap<String, Option<String>>,
    pub offices: &'a BTreeMap<String, Office>,
}

/// Parse a target as written: `device:NAME`, `office:CODE` or a branch
/// (`upazila:Division / District / Upazila`, `district:...`,
/// `division:...`, `ministry`).
pub fn parse_target(text: &str) -> Result<Target, SilenceError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT || text.chars().any(char::is_control) {
        return Err(bad(
            "target",
            format!("must be 1 to {MAX_TEXT} printable characters"),
        ));
    }
    let (level, rest) = text.split_once(':').unwrap_or((text, ""));
    let rest = rest.trim();
    match level.trim().to_ascii_lowercase().as_str() {
        "device" if !rest.is_empty() => Ok(Target::Device(rest.to_string())),
        "office" if !rest.is_empty() => Ok(Target::Office(rest.to_string())),
        "device" | "office" => Err(bad("target", format!("`{text}` names no {level}"))),
        _ => BranchSpec::parse(text)
            .map(Target::Branch)
            .map_err(|m| bad("target", format!("{m}; or `device:<name>` for one device"))),
    }
}

/// A target as written (what [`parse_target`] reads back).
pub fn target_text(t: &Target) -> String {
    match t {
        Target::Device(n) => format!("device:{n}"),
        Target::Office(c) => format!("office:{c}"),
        Target::Branch(b) => b.to_string(),
    }
}

/// An instant: RFC 3339 (`2026-12-07T18:00:00+06:00`).
fn instant(field: &'static str, text: &str) -> Result<i64, SilenceError> {
    let t = text.trim();
    if t.len() > 64 {
        return Err(bad(field, "too long for a time"));
    }
    t.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            bad(
                field,
                format!("`{t}` is not an RFC 3339 time (2026-12-07T18:00:00+06:00)"),
            )
        })
}

impl SilenceRequest {
    /// Check against the clock and what is known; the silence to store
    /// (id 0), its target in canonical spelling.
    pub fn check(&self, now_ms: i64, known: &Known<'_>) -> Result<Silence, SilenceError> {
        let target = match parse_target(&self.target)? {
            Target::Device(name) => {
                if !known.devices.contains_key(&name) {
                    return Err(not_found(format!("no device named `{name}`")));
                }
                Target::Device(name)
            }
            Target::Office(code) => {
                let found = known
                    .offices
                    .keys()
                    .find(|c| c.eq_ignore_ascii_case(&code))
                    .ok_or_else(|| not_found(format!("no office `{code}`")))?;
                Target::Office(found.clone())
            }
            Target::Branch(b) => {
                if b.level != RouteLevel::Ministry
                    && !known.offices.values().any(|o| b.contains(Some(o)))
                {
                    return Err(not_found(format!("no office lies in `{b}`")));
                }
                Target::Branch(b)
            }
        };
        let start_ms = match &self.start {
            None => now_ms,
            // Silences do not rewrite the past: a start before now is now.
            Some(s) => instant("start", s)?.max(now_ms),
        };
        if start_ms > now_ms.saturating_add(MAX_LEAD_MS) {
            return Err(bad("start", "a window may start at most a year ahead"));
        }
        let end_ms = match (&self.end, &self.duration) {
            (Some(e), None) => instant("end", e)?,
            (None, Some(d)) => {
                let d = d.trim();
                if d.len() > 32 {
                    return Err(bad("duration", "too long for a duration"));
                }
                let d = humantime::parse_duration(d).map_err(|e| {
                    bad(
                        "duration",
                        format!("`{d}` is not a duration (2h, 90m, 3days): {e}"),
                    )
                })?;
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                start_ms.saturating_add(ms)
            }
            (Some(_), Some(_)) => {
                return Err(bad("duration", "give `end` or `duration`, not both"));
            }
            (None, None) => {
                return Err(bad(
                    "end",
                    "a silence needs an end: give `end` (RFC 3339) or `duration` (2h)",
                ));
            }
        };
        if end_ms <= now_ms {
            return Err(bad("end", "the end is not in the future"));
        }
        if end_ms - start_ms < MIN_SPAN_MS {
            return Err(bad(
                "end",
                "the end must be at least a minute after the start",
            ));
        }
        if end_ms - start_ms > MAX_SPAN_MS {
            return Err(bad("end", "a silence lasts at most 90 days"));
        }
        let reason = self.reason.as_deref().unwrap_or("").trim().to_string();
        if reason.chars().count() > MAX_TEXT || reason.chars().any(char::is_control) {
            return Err(bad(
                "reason",
                format!("at most {MAX_TEXT} printable characters"),
            ));
        }
        Ok(Silence {
            id: 0,
            target,
            start_ms,
            end_ms,
            reason,
        })
    }
}

fn not_found(message: String) -> SilenceError {
    SilenceError {
        field: "target",
        message,
        not_found: true,
    }
}

/// How deep a level cuts (division 1 .. office 4; the ministry 0).
fn depth_route(l: RouteLevel) -> u8 {
    match l {
        RouteLevel::Ministry => 0,
        RouteLevel::Division => 1,
        RouteLevel::District => 2,
        RouteLevel::Upazila => 3,
        RouteLevel::Office => 4,
    }
}

fn depth_level(l: Level) -> u8 {
    match l {
        Level::Division => 1,
        Level::District => 2,
        Level::Upazila => 3,
        Level::Office => 4,
    }
}

/// Does `target` lie wholly inside `scope` (an API token's branch; `None`:
/// the whole hierarchy)? A device of no office, the ministry, or a branch
/// wider than the scope does not.
pub fn within(target: &Target, scope: Option<&Branch>, known: &Known<'_>) -> bool {
    let Some(scope) = scope else {
        return true;
    };
    let office_in = |code: &str| known.offices.get(code).is_some_and(|o| scope.contains(o));
    match target {
        Target::Device(name) => known
            .devices
            .get(name)
            .and_then(|o| o.as_deref())
            .is_some_and(office_in),
        Target::Office(code) => office_in(code),
        Target::Branch(b) => {
            let mut covered = known.offices.values().filter(|o| b.contains(Some(o)));
            depth_route(b.level) >= depth_level(scope.level)
                && b.level != RouteLevel::Ministry
                && covered.clone().next().is_some()
                && covered.all(|o| scope.contains(o))
        }
    }
}

/// A silence as the API and `alerts silence list --json` show it: times in
/// RFC 3339 and in Unix ms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SilenceView {
    pub id: i64,
    pub target: String,
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
    pub created_by: String,
    pub created_ms: i64,
    /// In force now (otherwise planned, or over).
    pub active: bool,
}

impl SilenceView {
    pub fn new(s: &Silence, created_by: &str, created_ms: i64, now_ms: i64) -> SilenceView {
        let ts = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| ms.to_string())
        };
        SilenceView {
            id: s.id,
            target: target_text(&s.target),
            start: ts(s.start_ms),
            end: ts(s.end_ms),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            reason: s.reason.clone(),
            created_by: created_by.to_string(),
            created_ms,
            active: s.active(now_ms),
        }
    }
}

#[cfg(test)]
mod tests;
