//! The import of the administrative hierarchy (divisions, districts,
//! upazilas, offices and their own hours) from CSV or TOML files into the
//! store: strict parsing with errors that name the file, the line and the
//! column or field.

use crate::collector::store::{Office, Store, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Longest office field accepted.
pub const MAX_FIELD: usize = 128;
/// The CSV header, in this order.
pub const CSV_HEADER: [&str; 5] = ["code", "name", "division", "district", "upazila"];
/// The optional column (and TOML key) after [`CSV_HEADER`]: the office's own
/// hours, spelled as a report's `schedule`; empty for the circular's defaults.
pub const CSV_HOURS: &str = "hours";

/// A hierarchy file that could not be imported. Names the file and, where
/// known, the line and the column or field.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {field}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        /// `column 3 (division)`, or `header`.
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot store the offices of {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
}

/// Read a hierarchy file, CSV (`.csv`) or TOML (`.toml`, `[[office]]` tables).
pub fn load_offices(path: &Path) -> Result<Vec<Office>, ImportError> {
    load_by_extension(
        path,
        parse_offices_csv,
        parse_offices_toml,
        "header code,name,division,district,upazila",
        "[[office]] tables",
    )
}

/// Read an import file and parse it by its extension, `.csv` or `.toml`
/// (any case); another extension is an error naming both forms.
pub(crate) fn load_by_extension<T>(
    path: &Path,
    csv: fn(&str, &Path) -> Result<T, ImportError>,
    toml: fn(&str, &Path) -> Result<T, ImportError>,
    csv_form: &str,
    toml_form: &str,
) -> Result<T, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("csv") => csv(&text, path),
        Some("toml") => toml(&text, path),
        _ => Err(ImportError::File {
            path: path.to_path_buf(),
            message: format!("unknown file type: name it .csv ({csv_form}) or .toml ({toml_form})"),
        }),
    }
}

/// Read a hierarchy file and write its offices into the store (insert or
/// update by code). Returns how many offices were written.
pub async fn import_offices(store: &dyn Store, path: &Path) -> Result<usize, ImportError> {
    let offices = load_offices(path)?;
    store
        .upsert_offices(&offices)
        .await
        .map_err(|source| ImportError::Store {
            path: path.to_path_buf(),
            source,
        })
}

/// A CSV header that names a column twice, or one not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    Twice(String),
    /// The column's number (from 1) and name.
    Unknown(usize, String),
}

impl HeaderError {
    /// (the field, the message) of an import error; `known` says which
    /// columns there are.
    pub(crate) fn words(&self, known: &str) -> (String, String) {
        match self {
            HeaderError::Twice(name) => ("header".into(), format!("column `{name}` appears twice")),
            HeaderError::Unknown(col, name) => (
                format!("header column {col}"),
                format!("unknown column `{name}`: {known}"),
            ),
        }
    }
}

/// Where each of `columns` stands in a CSV header (`usize::MAX`: not
/// there), the header's names trimmed and compared without case.
pub(crate) fn header_columns<'a, const N: usize>(
    header: impl IntoIterator<Item = &'a str>,
    columns: [&str; N],
) -> Result<[usize; N], HeaderError> {
    let mut index = [usize::MAX; N];
    for (col, name) in header.into_iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        match columns.iter().position(|c| *c == name) {
            Some(k) if index[k] == usize::MAX => index[k] = col,
            Some(_) => return Err(HeaderError::Twice(name)),
            None => return Err(HeaderError::Unknown(col + 1, name)),
        }
    }
    Ok(index)
}

/// Parse CSV with the header `code,name,division,district,upazila` and
/// optionally `hours` (any column order). Fields may be quoted (`"Savar, Dhaka"`, `""` for a quote); a UTF-8
/// byte-order mark, CRLF line ends, blank lines and spaces around fields are
/// accepted. Errors name the line and the column.
pub fn parse_offices_csv(text: &str, path: &Path) -> Result<Vec<Office>, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let err = |line: usize, field: String, message: String| ImportError::Line {
        path: path.to_path_buf(),
        line,
        field,
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((hline, header)) = lines.next() else {
        return Err(ImportError::File {
            path: path.to_path_buf(),
            message: format!(
                "empty file: the first line must be {}",
                CSV_HEADER.join(",")
            ),
        });
    };
    let names =
        split_csv_line(header).map_err(|(col, m)| err(hline, format!("column {col}"), m))?;
    // For each of CSV_HEADER and then CSV_HOURS, its column index.
    let [a, b, c, d, e] = CSV_HEADER;
    let index = header_columns(names.iter().map(String::as_str), [a, b, c, d, e, CSV_HOURS])
        .map_err(|h| {
            let (field, message) = h.words(&format!(
                "the header must be {} (and optionally {CSV_HOURS})",
                CSV_HEADER.join(",")
            ));
            err(hline, field, message)
        })?;
    if let Some(k) = index[..5].iter().position(|i| *i == usize::MAX) {
        return Err(err(
            hline,
            "header".into(),
            format!(
                "column `{}` is missing: the header must be {}",
                CSV_HEADER[k],
                CSV_HEADER.join(",")
            ),
        ));
    }
    let mut out: Vec<Office> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, l) in lines {
        let fields = split_csv_line(l).map_err(|(col, m)| err(line, format!("column {col}"), m))?;
        if fields.len() != names.len() {
            return Err(err(
                line,
                format!("column {}", fields.len().min(names.len()) + 1),
                format!(
                    "{} fields where the header has {}: quote fields that contain commas",
                    fields.len(),
                    names.len()
                ),
            ));
        }
        let get = |k: usize| fields[index[k]].clone();
        let office = Office {
            code: get(0),
            name: get(1),
            division: get(2),
            district: get(3),
            upazila: get(4),
            hours: (index[5] != usize::MAX)
                .then(|| get(5))
                .filter(|h| !h.is_empty()),
        };
        if let Err((k, m)) = check_office(&office) {
            let column = CSV_HEADER.get(k).copied().unwrap_or(CSV_HOURS);
            return Err(err(line, format!("column {} ({column})", index[k] + 1), m));
        }
        if let Some(first) = seen.insert(office.code.clone(), line) {
            return Err(err(
                line,
                format!("column {} (code)", index[0] + 1),
                format!("code `{}` already used on line {first}", office.code),
            ));
        }
        out.push(office);
    }
    Ok(out)
}

/// Split one CSV line into trimmed fields. The error is the 1-based column
/// and what is wrong.
fn split_csv_line(line: &str) -> Result<Vec<String>, (usize, String)> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let col = fields.len() + 1;
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err((
                            col,
                            "unterminated quoted field: close it with `\"` (a field cannot span lines)"
                                .into(),
                        ));
                    }
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => {
                    return Err((
                        col,
                        format!(
                            "unexpected {c:?} after a quoted field: put a comma between fields"
                        ),
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err((
                            col,
                            "a quote inside an unquoted field: quote the whole field and double the quote (\"\")"
                                .into(),
                        ));
                    }
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

/// Check one office; the error is the index in [`CSV_HEADER`] (5: the
/// hours) and the message.
fn check_office(o: &Office) -> Result<(), (usize, String)> {
    if let Some(h) = &o.hours
        && let Err(e) = crate::shared::schedule::parse_schedule(h)
    {
        return Err((5, e.to_string()));
    }
    let values = [&o.code, &o.name, &o.division, &o.district, &o.upazila];
    for (k, v) in values.iter().enumerate() {
        if v.is_empty() {
            return Err((k, "must not be empty".into()));
        }
        if v.chars().count() > MAX_FIELD || v.chars().any(char::is_control) {
            return Err((k, format!("must be 1 to {MAX_FIELD} printable characters")));
        }
    }
    if let Some(c) = o
        .code
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err((
            0,
            format!(
                "code `{}` contains {c:?}: use letters, digits, `.`, `_` and `-` (e.g. dhk-savar-uno)",
                o.code
            ),
        ));
    }
    Ok(())
}

/// Parse TOML `[[office]]` tables with the keys code, name, division,
/// district, upazila and optionally hours. Errors name the line (syntax) or the field (`office[2].code`).
pub fn parse_offices_toml(text: &str, path: &Path) -> Result<Vec<Office>, ImportError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        office: Vec<Office>,
    }
    let file: File = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        match line {
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
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, o) in file.office.iter().enumerate() {
        let fail = |field: &str, message: String| ImportError::File {
            path: path.to_path_buf(),
            message: format!("office[{i}].{field}: {message}"),
        };
        if let Err((k, m)) = check_office(o) {
            return Err(fail(CSV_HEADER.get(k).copied().unwrap_or(CSV_HOURS), m));
        }
        if let Some(first) = seen.insert(&o.code, i) {
            return Err(fail(
                "code",
                format!("code `{}` already used by office[{first}]", o.code),
            ));
        }
    }
    Ok(file.office)
}
