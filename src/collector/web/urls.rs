//! The dashboard's own links: a fleet page's address (branch and page), a
//! search's (query and page), a device page's path segment, and the reports
//! page's paths and its address at its defaults.

use crate::collector::model::Branch;
use jiff::civil::Date;

/// The reports page.
pub const REPORTS_PATH: &str = "/reports";
/// The reports page's table as CSV.
pub const REPORTS_CSV_PATH: &str = "/reports/csv";

/// The reports page's days by default: the last 7 whole days before
/// `today` (Asia/Dhaka), the last one included.
pub fn default_days(today: Date) -> (Date, Date) {
    let until = today.yesterday().unwrap_or(today);
    let from = until
        .checked_sub(jiff::Span::new().days(6))
        .unwrap_or(until);
    (from, until)
}

/// The reports page's address for `branch` at its defaults (the last 7
/// whole days, by office, in office hours), as the page itself writes it.
pub fn reports_url(branch: Option<&Branch>, today: Date) -> String {
    let (from, until) = default_days(today);
    let mut q: Vec<(&str, String)> = vec![
        ("from", from.to_string()),
        ("until", until.to_string()),
        ("by", "office".into()),
        ("schedule", "office".into()),
    ];
    if let Some(b) = branch {
        q.push(("level", b.level.as_str().to_string()));
        q.push(("name", b.name.clone()));
    }
    format!(
        "{REPORTS_PATH}?{}",
        serde_urlencoded::to_string(&q).unwrap_or_default()
    )
}

/// `/fleet?level=..&name=..&page=..` (a parameter value url-encoded).
pub fn fleet_url(branch: Option<&Branch>, page: usize) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(b) = branch {
        q.push(("level", b.level.as_str().to_string()));
        q.push(("name", b.name.clone()));
    }
    if page > 1 {
        q.push(("page", page.to_string()));
    }
    let qs = serde_urlencoded::to_string(&q).unwrap_or_default();
    if qs.is_empty() {
        "/fleet".into()
    } else {
        format!("/fleet?{qs}")
    }
}

/// `/search?q=..&page=..` (the query url-encoded, trimmed).
pub fn search_url(q: &str, page: usize) -> String {
    let mut pairs: Vec<(&str, String)> = vec![("q", q.trim().to_string())];
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    format!(
        "/search?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

/// A path segment, percent-encoded (device names are plain, but be safe).
pub fn urlencode_path(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
