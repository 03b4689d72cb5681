//! Reading the collector's answers for messages and timing: an error and
//! its causes on one line, the collector's error body, `Retry-After`.

use super::{MESSAGE_MAX, RETRY_AFTER_MAX};
use std::time::Duration;

/// An error and its causes, one line (reqwest's own message is vague).
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

pub(super) fn shorten(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MESSAGE_MAX {
        return s.to_string();
    }
    let mut end = MESSAGE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The collector's error answer, `{"error": "...", "field": "..."}`, as
/// `field: error`; any other body as text.
pub(super) fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        field: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error,
            field: Some(f),
        }) => shorten(&format!("{f}: {error}")),
        Ok(ErrorBody { error, field: None }) => shorten(&error),
        Err(_) => shorten(&String::from_utf8_lossy(body)),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not understood and ignored).
pub(super) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: u64 = v.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(RETRY_AFTER_MAX))
}
