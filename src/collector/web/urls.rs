//! The dashboard's own links: a fleet page's address (branch and page), a
//! search's (query and page) and a device page's path segment.

use crate::collector::model::Branch;

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
