use super::*;

fn parse(text: &str) -> Result<CollectorConfig, ConfigError> {
    CollectorConfig::parse(text, Path::new("/etc/linkwatch/collector.toml"))
}

fn key_of(e: ConfigError) -> (String, String) {
    match e {
        ConfigError::Invalid { key, message, .. } => (key, message),
        other => panic!("expected an Invalid error, got {other}"),
    }
}

#[test]
fn empty_file_gets_the_production_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.collector, CollectorSection::default());
    assert_eq!(c.collector.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(c.collector.max_body_bytes, MAX_BODY);
    assert_eq!(c.collector.max_inflight, 256);
    assert!(c.tls().is_none());
}

#[test]
fn embedded_default_is_local_sqlite_on_8080() {
    let c = CollectorConfig::embedded();
    c.validate().unwrap();
    assert_eq!(c.collector.database, "sqlite://linkwatch-collector.db");
    assert_eq!(c.collector.listen.to_string(), "127.0.0.1:8080");
    assert!(c.plain_http_warning().unwrap().contains("loopback"));
}

#[test]
fn full_file_parses() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    std::fs::write(&cert, "x").unwrap();
    crate::shared::files::write_new_private(&key, b"x").unwrap();
    let c = parse(&format!(
        "[collector]\nlisten = \"0.0.0.0:9443\"\ndatabase = \"postgres://lw@db/lw\"\n\
             tls_cert = {:?}\ntls_key = {:?}\nmax_body_bytes = 2048\nmax_inflight = 8\n\
             log_format = \"json\"\nlog_level = \"debug\"\n",
        cert, key
    ))
    .unwrap();
    assert_eq!(c.collector.max_inflight, 8);
    assert_eq!(c.collector.log_format, LogFormat::Json);
    assert!(c.tls().is_some());
    assert!(c.plain_http_warning().is_none());
}

#[test]
fn unknown_key_names_the_key() {
    let e = parse("[collector]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err();
    let s = e.to_string();
    assert!(s.contains("collector.toml"), "{s}");
    assert!(s.contains("listen_addr"), "{s}");
}

#[test]
fn tls_needs_both_files() {
    let (k, m) = key_of(parse("[collector]\ntls_cert = \"/x.pem\"\n").unwrap_err());
    assert_eq!(k, "collector.tls_key");
    assert!(m.contains("both"), "{m}");
    let (k, _) = key_of(parse("[collector]\ntls_key = \"/x.pem\"\n").unwrap_err());
    assert_eq!(k, "collector.tls_cert");
    let (k, m) = key_of(
        parse("[collector]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n")
            .unwrap_err(),
    );
    assert_eq!(k, "collector.tls_cert");
    assert!(m.contains("/nonexistent/c.pem"), "{m}");
}

#[test]
fn bad_values_name_key_and_fix() {
    let cases = [
        (
            "database = \"mysql://x\"",
            "collector.database",
            "postgres://",
        ),
        (
            "database = \"sqlite://\"",
            "collector.database",
            "sqlite:///",
        ),
        ("database = \"postgres://\"", "collector.database", "HOST"),
        ("max_body_bytes = 10", "collector.max_body_bytes", "1024"),
        ("max_inflight = 0", "collector.max_inflight", "between 1"),
        (
            "max_inflight_per_device = 0",
            "collector.max_inflight_per_device",
            "between 1",
        ),
        (
            "max_inflight = 4\nmax_inflight_per_device = 5",
            "collector.max_inflight_per_device",
            "max_inflight (4)",
        ),
        ("min_body_rate = 0", "collector.min_body_rate", "1024"),
        (
            "header_timeout = \"0s\"",
            "collector.header_timeout",
            "between 1s",
        ),
        ("idle_timeout = \"2h\"", "collector.idle_timeout", "3600s"),
        (
            "body_rate_window = \"500ms\"",
            "collector.body_rate_window",
            "10s",
        ),
        ("max_connections = 2", "collector.max_connections", "16"),
        ("log_level = \"loud[\"", "collector.log_level", "info"),
    ];
    for (line, key, fix) in cases {
        let (k, m) = key_of(parse(&format!("[collector]\n{line}\n")).unwrap_err());
        assert_eq!(k, key, "{line}");
        assert!(m.contains(fix), "{line}: {m}");
    }
}

/// A TLS key others can read is refused, naming the key, the file and
/// the fix; a group-readable one (a unit's group) is taken.
#[test]
fn a_tls_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    std::fs::write(&cert, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    let text = format!("[collector]\ntls_cert = {cert:?}\ntls_key = {key:?}\n");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (k, m) = key_of(parse(&text).unwrap_err());
    assert_eq!(k, "collector.tls_key");
    assert!(m.contains(&format!("chmod 600 {}", key.display())), "{m}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    parse(&text).unwrap();
    // The certificate is public: any mode.
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    parse(&text).unwrap();
}

#[test]
fn non_loopback_plain_http_gets_the_strong_warning() {
    let c = parse("[collector]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
    assert!(c.plain_http_warning().unwrap().contains("NOT a loopback"));
}

#[test]
fn holiday_file_errors_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("holidays.txt");
    std::fs::write(&f, "# national\n2026-12-16\n2026-13-01\n").unwrap();
    let text = format!(
        "[collector]\nholidays_file = {:?}\n",
        f.display().to_string()
    );
    let (key, message) = key_of(parse(&text).unwrap_err());
    assert_eq!(key, "collector.holidays_file");
    assert!(message.contains("line 3"), "{message}");
    std::fs::write(&f, "2026-12-16 # Victory Day\n").unwrap();
    let cfg = parse(&text).unwrap();
    assert_eq!(cfg.holidays.len(), 1);
    let office = &cfg.rollup_settings().schedules[1];
    assert!(
        crate::collector::rollup::schedule_key(office).contains("+holidays:"),
        "{office:?}"
    );
    let (key, _) =
        key_of(parse("[collector]\nholidays_file = \"/nonexistent/holidays.txt\"\n").unwrap_err());
    assert_eq!(key, "collector.holidays_file");
    let (key, _) =
        key_of(parse("[collector]\nrollup_schedules = [\"always\", \"weekly\"]\n").unwrap_err());
    assert_eq!(key, "collector.rollup_schedules[1]");
    let (key, _) = key_of(parse("[collector]\nraw_retention_days = 3\n").unwrap_err());
    assert_eq!(key, "collector.raw_retention_days");
    // Hour rows: for ever, or at least as long as the raw data.
    for bad in [
        "hour_retention_days = 10\n",
        "raw_retention_days = 0\nhour_retention_days = 90\n",
    ] {
        let (key, msg) = key_of(parse(&format!("[collector]\n{bad}")).unwrap_err());
        assert_eq!(key, "collector.hour_retention_days", "{bad}");
        assert!(msg.contains("at least raw_retention_days"), "{msg}");
    }
    for good in [
        "hour_retention_days = 0\n",
        "hour_retention_days = 14\n",
        "raw_retention_days = 0\nhour_retention_days = 0\n",
        "raw_retention_days = 30\nhour_retention_days = 730\n",
    ] {
        parse(&format!("[collector]\n{good}")).unwrap();
    }
    let s = parse("[collector]\n").unwrap().rollup_settings();
    assert_eq!(s.hour_retention_days, Some(90));
}
