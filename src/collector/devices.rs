//! Device registry: bearer tokens (made here, stored only as SHA-256 hashes),
//! device names, and the import of the administrative hierarchy (offices) from
//! CSV or TOML files into the store. API tokens for the read API are made
//! here too ([`add_api_token`]), the same way.

use super::access::{self, BranchError, Level, Role};
use super::store::{ApiToken, Device, Office, Store, StoreError};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Every token this collector makes starts with this (version 1 of the format).
pub const TOKEN_PREFIX: &str = "lw1_";
/// Longest office field accepted.
pub const MAX_FIELD: usize = 128;
/// The CSV header, in this order.
pub const CSV_HEADER: [&str; 5] = ["code", "name", "division", "district", "upazila"];
/// The optional column (and TOML key) after [`CSV_HEADER`]: the office's own
/// hours, spelled as a report's `schedule`; empty for the circular's defaults.
pub const CSV_HOURS: &str = "hours";

/// A new device token: 32 random bytes from the operating system,
/// base64url without padding, prefixed [`TOKEN_PREFIX`] (47 characters).
pub fn new_token() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a token: SHA-256 of its text, lowercase hex.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// A device name the agent can send: 1 to 128 characters of letters, digits,
/// `.`, `_` and `-` (a host name fits).
pub fn check_device_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > crate::wire::v1::MAX_NAME {
        return Err(format!(
            "device name must be 1 to {} characters",
            crate::wire::v1::MAX_NAME
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "device name `{name}` contains {c:?}: use letters, digits, `.`, `_` and `-` (the agent's host name fits)"
        ));
    }
    Ok(())
}

/// Register a device with a fresh token. Returns the device and the token,
/// which exists nowhere else afterwards: show it once.
pub async fn add_device(
    store: &dyn Store,
    name: &str,
    office: Option<&str>,
    now_ms: i64,
) -> Result<(Device, String), AddDeviceError> {
    check_device_name(name).map_err(AddDeviceError::Name)?;
    let token = new_token();
    let device = store
        .add_device(name, office, &token_hash(&token), now_ms)
        .await?;
    Ok((device, token))
}

/// Issue a new token to the existing device `name`; the old one is refused
/// from now on. `None` when there is no such device.
pub async fn rotate_device(store: &dyn Store, name: &str) -> Result<Option<String>, StoreError> {
    let token = new_token();
    Ok(store
        .rotate_device_token(name, &token_hash(&token))
        .await?
        .then_some(token))
}

/// Why a device could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddDeviceError {
    #[error("{0}")]
    Name(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an API token could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddApiTokenError {
    #[error("{0}")]
    Name(String),
    /// The branch named for `--division`, `--district`, `--upazila` or `--office`.
    #[error("--{}: {}", .0.level, .0.message)]
    Branch(BranchError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Register an API token with `role`, limited to the branch `branch` names
/// (checked against the imported offices) when given. Returns the token as
/// stored and the token itself, which exists nowhere else afterwards: show
/// it once.
pub async fn add_api_token(
    store: &dyn Store,
    name: &str,
    role: Role,
    branch: Option<(Level, &str)>,
    now_ms: i64,
) -> Result<(ApiToken, String), AddApiTokenError> {
    access::check_token_name(name).map_err(AddApiTokenError::Name)?;
    let branch = match branch {
        None => None,
        Some((level, text)) => {
            let offices = store.list_offices().await?;
            Some(access::resolve_branch(level, text, &offices).map_err(AddApiTokenError::Branch)?)
        }
    };
    let token = new_token();
    let t = store
        .add_api_token(name, role, branch.as_ref(), &token_hash(&token), now_ms)
        .await?;
    Ok((t, token))
}

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
        Some("csv") => parse_offices_csv(&text, path),
        Some("toml") => parse_offices_toml(&text, path),
        _ => Err(ImportError::File {
            path: path.to_path_buf(),
            message:
                "unknown file type: name it .csv (header code,name,division,district,upazila) \
                      or .toml ([[office]] tables)"
                    .into(),
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
    let mut index = [usize::MAX; 6];
    for (col, name) in names.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        let known = CSV_HEADER
            .iter()
            .chain([&CSV_HOURS])
            .position(|h| *h == name);
        match known {
            Some(k) if index[k] == usize::MAX => index[k] = col,
            Some(_) => {
                return Err(err(
                    hline,
                    "header".into(),
                    format!("column `{name}` appears twice"),
                ));
            }
            None => {
                return Err(err(
                    hline,
                    format!("header column {}", col + 1),
                    format!(
                        "unknown column `{name}`: the header must be {} (and optionally {CSV_HOURS})",
                        CSV_HEADER.join(",")
                    ),
                ));
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("offices.csv")
    }

    #[test]
    fn tokens_are_prefixed_random_base64url() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert!(
            a[TOKEN_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(token_hash("").len(), 64);
    }

    #[test]
    fn device_names_are_host_name_like() {
        check_device_name("dhaka-gw1.savar_2").unwrap();
        assert!(check_device_name("").is_err());
        assert!(check_device_name("a b").unwrap_err().contains("' '"));
        assert!(check_device_name(&"x".repeat(129)).is_err());
    }

    #[test]
    fn csv_with_quotes_bom_crlf_and_any_column_order() {
        let text = "\u{feff}name,code,division,district,upazila\r\n\
                    \"Savar UNO Office, Dhaka\",dhk-savar-uno,Dhaka,Dhaka,Savar\r\n\
                    \r\n\
                    \"The \"\"Old\"\" Office\" , dhk-old ,Dhaka,Dhaka,Dhamrai\n";
        let v = parse_offices_csv(text, p()).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].code, "dhk-savar-uno");
        assert_eq!(v[0].name, "Savar UNO Office, Dhaka");
        assert_eq!(v[1].name, "The \"Old\" Office");
        assert_eq!(v[1].code, "dhk-old");
        assert_eq!(v[1].upazila, "Dhamrai");
    }

    #[test]
    fn office_hours_column_and_key_are_optional_and_checked() {
        let text = "code,hours,name,division,district,upazila\n\
                    a,office:Asia/Dhaka:sun-sat:08:00-16:00,A,D,D,U\n\
                    b,,B,D,D,U\n";
        let v = parse_offices_csv(text, p()).unwrap();
        assert_eq!(
            v[0].hours.as_deref(),
            Some("office:Asia/Dhaka:sun-sat:08:00-16:00")
        );
        assert_eq!(v[1].hours, None, "empty: the circular's defaults");
        let bad = "code,name,division,district,upazila,hours\nc,C,D,D,U,office:Asia/Dhaka:sun-thu:17:00-09:00\n";
        let (line, field, message) = line_err(parse_offices_csv(bad, p()).unwrap_err());
        assert_eq!((line, field.as_str()), (2, "column 6 (hours)"));
        assert!(message.contains("17:00-09:00"), "{message}");
        let toml = "[[office]]\ncode = \"a\"\nname = \"A\"\ndivision = \"D\"\ndistrict = \"D\"\n\
                    upazila = \"U\"\nhours = \"office:Asia/Dhakka\"\n";
        let e = parse_offices_toml(toml, Path::new("offices.toml")).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("office[0].hours") && shown.contains("Asia/Dhakka"),
            "{shown}"
        );
        let ok = toml.replace("Dhakka", "Dhaka");
        let v = parse_offices_toml(&ok, Path::new("offices.toml")).unwrap();
        assert_eq!(v[0].hours.as_deref(), Some("office:Asia/Dhaka"));
    }

    fn line_err(e: ImportError) -> (usize, String, String) {
        match e {
            ImportError::Line {
                line,
                field,
                message,
                ..
            } => (line, field, message),
            other => panic!("expected a line error, got {other}"),
        }
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let h = "code,name,division,district,upazila\n";
        let ok = "a,A,D,D,U\n";
        let cases: [(&str, usize, &str, &str); 7] = [
            (
                "code,name,division,district\n",
                1,
                "header",
                "`upazila` is missing",
            ),
            (
                "code,name,division,district,upazila,x\n",
                1,
                "header column 6",
                "unknown column",
            ),
            ("a,A,D,D\n", 3, "column 5", "4 fields"),
            ("b,,D,D,U\n", 3, "column 2 (name)", "must not be empty"),
            ("b,\"A,D,D,U\n", 3, "column 2", "unterminated"),
            (
                "a,A2,D,D,U\n",
                3,
                "column 1 (code)",
                "already used on line 2",
            ),
            ("b c,A,D,D,U\n", 3, "column 1 (code)", "contains ' '"),
        ];
        for (bad, line, field, msg) in cases {
            let text = if bad.starts_with("code") {
                bad.to_string()
            } else {
                format!("{h}{ok}{bad}")
            };
            let e = parse_offices_csv(&text, p()).unwrap_err();
            let shown = e.to_string();
            assert!(shown.starts_with("offices.csv:"), "{shown}");
            let (l, f, m) = line_err(e);
            assert_eq!((l, f.as_str()), (line, field), "{bad}: {m}");
            assert!(m.contains(msg), "{bad}: {m}");
        }
        assert!(matches!(
            parse_offices_csv("\n\n", p()),
            Err(ImportError::File { .. })
        ));
    }

    #[test]
    fn toml_offices_parse_and_errors_name_line_or_field() {
        let t = Path::new("offices.toml");
        let text = "[[office]]\ncode = \"dhk-savar-uno\"\nname = \"Savar UNO\"\ndivision = \"Dhaka\"\ndistrict = \"Dhaka\"\nupazila = \"Savar\"\n";
        let v = parse_offices_toml(text, t).unwrap();
        assert_eq!(v[0].upazila, "Savar");
        let e = parse_offices_toml(&text.replace("upazila", "thana"), t).unwrap_err();
        let (line, _, m) = line_err(e);
        assert!(m.contains("thana"), "{m}");
        assert!((1..=6).contains(&line), "{line}");
        let e = parse_offices_toml(&text.replace("\"Dhaka\"\nupazila", "\"\"\nupazila"), t)
            .unwrap_err()
            .to_string();
        assert!(e.contains("office[0].district"), "{e}");
    }

    #[test]
    fn unknown_extension_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("offices.xlsx");
        std::fs::write(&f, "x").unwrap();
        let e = load_offices(&f).unwrap_err().to_string();
        assert!(e.contains(".csv") && e.contains(".toml"), "{e}");
    }
}
