//! A read request's query string, checked: unknown and repeated parameters
//! refused by name (a misspelt `divison` must not widen a report silently),
//! `format` (json or csv), bounded whole numbers; and the CSV answer.

use super::error::ReadError;
use axum::extract::Query;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// The query string as a map; unknown and repeated parameters are refused,
/// naming them.
pub fn query_params(
    uri: &Uri,
    allowed: &[&'static str],
) -> Result<HashMap<String, String>, ReadError> {
    let Query(pairs): Query<Vec<(String, String)>> =
        Query::try_from_uri(uri).map_err(|e| ReadError::param("query", e.body_text()))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        let Some(field) = allowed.iter().find(|a| **a == k) else {
            return Err(ReadError::param(
                "query",
                if allowed.is_empty() {
                    format!("unknown parameter `{k}`: this endpoint takes no parameters")
                } else {
                    format!(
                        "unknown parameter `{k}`: this endpoint takes {}",
                        allowed.join(", ")
                    )
                },
            ));
        };
        if out.insert(k, v).is_some() {
            return Err(ReadError::param(
                field,
                format!("`{field}` is given more than once"),
            ));
        }
    }
    Ok(out)
}

/// `format`: json (default) or csv.
pub fn wants_csv(params: &HashMap<String, String>) -> Result<bool, ReadError> {
    match params.get("format").map(|s| s.trim()) {
        None | Some("") | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(f) => Err(ReadError::param(
            "format",
            format!("unknown `format` = `{f}`: use json or csv"),
        )),
    }
}

/// The whole number `field`, from `lo` to `hi`; `None` when not given.
pub fn int_param(
    params: &HashMap<String, String>,
    field: &'static str,
    lo: i64,
    hi: i64,
) -> Result<Option<i64>, ReadError> {
    let Some(v) = params.get(field) else {
        return Ok(None);
    };
    match v.trim().parse::<i64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
        _ => Err(ReadError::param(
            field,
            format!("`{field}` must be a whole number from {lo} to {hi}"),
        )),
    }
}

/// A CSV answer.
pub fn csv(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let uri: Uri = "/x?from=a&divison=Dhaka".parse().unwrap();
        match query_params(&uri, &["from", "division"]).unwrap_err() {
            ReadError::Param(p) => assert!(p.message.contains("`divison`"), "{}", p.message),
            e => panic!("{e:?}"),
        }
        let uri: Uri = "/x?from=a&from=b".parse().unwrap();
        match query_params(&uri, &["from"]).unwrap_err() {
            ReadError::Param(p) => assert_eq!(p.field, "from"),
            e => panic!("{e:?}"),
        }
        let uri: Uri = "/x?from=2026-11-29%2B06".parse().unwrap();
        assert_eq!(
            query_params(&uri, &["from"]).unwrap()["from"],
            "2026-11-29+06"
        );
    }
}
