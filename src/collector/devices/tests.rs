use super::*;
use std::path::Path;

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
