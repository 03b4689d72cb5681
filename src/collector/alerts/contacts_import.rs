//! Reading the contacts file (`[alerts] contacts_file`, CSV or TOML) into
//! [`Contact`]s, with errors that name the file, the line and the column.
//! Apart from `contacts.rs` so that the routing types do not depend on the
//! import machinery they share with the office hierarchy.

use crate::collector::alerts::contacts::{CSV_COLUMNS, Contact, ContactEntry, check_entries};
use crate::collector::devices::{ImportError, header_columns, load_by_extension};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Read a contacts file: CSV (`.csv`, header [`CSV_COLUMNS`], channels
/// separated by `;`) or TOML (`.toml`, `[[contact]]` tables).
pub fn load_contacts(path: &Path) -> Result<Vec<Contact>, ImportError> {
    load_by_extension(
        path,
        parse_contacts_csv,
        parse_contacts_toml,
        &format!("header {}", CSV_COLUMNS.join(",")),
        "[[contact]] tables",
    )
}

/// Parse contacts CSV; errors name the line and the column.
pub fn parse_contacts_csv(text: &str, path: &Path) -> Result<Vec<Contact>, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let line_err = |line: u64, field: String, message: String| ImportError::Line {
        path: path.to_path_buf(),
        line: line as usize,
        field,
        message,
    };
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = rd
        .headers()
        .map_err(|e| line_err(1, "header".into(), e.to_string()))?
        .clone();
    if header.iter().all(str::is_empty) {
        return Err(ImportError::File {
            path: path.to_path_buf(),
            message: format!(
                "empty file: the first line must be {}",
                CSV_COLUMNS.join(",")
            ),
        });
    }
    let hline = header.position().map_or(1, |p| line_of(text, p.byte()));
    let index = header_columns(header.iter(), CSV_COLUMNS).map_err(|h| {
        let (field, message) = h.words(&format!("the columns are {}", CSV_COLUMNS.join(",")));
        line_err(hline, field, message)
    })?;
    for required in [0, 1, 5] {
        if index[required] == usize::MAX {
            return Err(line_err(
                hline,
                "header".into(),
                format!(
                    "column `{}` is missing: the columns are {} (language, email and phone may be left out)",
                    CSV_COLUMNS[required],
                    CSV_COLUMNS.join(",")
                ),
            ));
        }
    }
    let mut out = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| line_of(text, p.byte()));
            line_err(line, "csv".into(), e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| line_of(text, p.byte()));
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != header.len() {
            return Err(line_err(
                line,
                format!("column {}", rec.len().min(header.len()) + 1),
                format!(
                    "{} fields where the header has {}: quote fields that contain commas",
                    rec.len(),
                    header.len()
                ),
            ));
        }
        let get = |k: usize| (index[k] != usize::MAX).then(|| rec[index[k]].to_string());
        let entry = ContactEntry {
            name: get(0).unwrap_or_default(),
            branch: get(1).unwrap_or_default(),
            language: get(2),
            email: get(3),
            phone: get(4),
            channels: get(5)
                .unwrap_or_default()
                .split([';', ' '])
                .map(str::to_string)
                .collect(),
        };
        let origin = format!("{}:{line}", path.display());
        let contact = entry.check(origin).map_err(|(field, m)| {
            let k = CSV_COLUMNS.iter().position(|c| *c == field).unwrap_or(0);
            line_err(line, format!("column {} ({field})", index[k] + 1), m)
        })?;
        if let Some(first) = seen.insert(contact.name.to_lowercase(), line) {
            return Err(line_err(
                line,
                format!("column {} (name)", index[0] + 1),
                format!("contact `{}` already on line {first}", contact.name),
            ));
        }
        out.push(contact);
    }
    Ok(out)
}

/// The 1-based line of byte offset `byte` (the first line with content
/// after it, since a record's position may point at the previous end).
fn line_of(text: &str, byte: u64) -> u64 {
    let byte = (byte as usize).min(text.len());
    let skipped = text.as_bytes()[byte..]
        .iter()
        .take_while(|c| **c == b'\r' || **c == b'\n')
        .filter(|c| **c == b'\n')
        .count();
    (text.as_bytes()[..byte]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + skipped
        + 1) as u64
}

/// Parse `[[contact]]` tables; errors name the line (syntax) or the key
/// (`contact[2].email`).
pub fn parse_contacts_toml(text: &str, path: &Path) -> Result<Vec<Contact>, ImportError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        contact: Vec<ContactEntry>,
    }
    let file: File = toml::from_str(text).map_err(|e| {
        match e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
        {
            Some(line) => ImportError::Line {
                path: path.to_path_buf(),
                line,
                field: "toml".into(),
                message: e.message().to_string(),
            },
            None => ImportError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            },
        }
    })?;
    check_entries(&file.contact, "contact", &format!("{}: ", path.display())).map_err(
        |(key, message)| ImportError::File {
            path: path.to_path_buf(),
            message: format!("{key}: {message}"),
        },
    )
}
