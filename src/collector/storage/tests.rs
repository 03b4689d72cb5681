//! Tests of the storage view's grouping and rendering.

use super::*;

fn t(table: &str, rows: i64, table_bytes: i64, index_bytes: i64) -> TableSize {
    TableSize {
        table: table.into(),
        rows,
        table_bytes,
        index_bytes,
    }
}

fn facts(tables: Vec<TableSize>) -> StorageFacts {
    StorageFacts {
        backend: "sqlite",
        tables,
        database_bytes: 1 << 20,
        free_bytes: 4096,
        oldest_raw_ms: Some(1_796_083_200_000),
    }
}

#[test]
fn every_table_of_the_schema_has_its_kind() {
    let expect = [
        ("records", "records"),
        ("minute_packs", "minute_packs"),
        ("rollup_days", "rollups"),
        ("rollup_timelines", "rollups"),
        ("rollup_dirty", "rollups"),
        ("alerts", "alerts"),
        ("alert_outbox", "alerts"),
        ("alert_silences", "alerts"),
        ("alert_contacts", "alerts"),
        ("devices", "fleet"),
        ("offices", "fleet"),
        ("api_tokens", "fleet"),
        ("web_users", "fleet"),
        ("web_sessions", "fleet"),
        ("_sqlx_migrations", "other"),
    ];
    for (table, kind) in expect {
        assert_eq!(kind_of(table), kind, "{table}");
        assert!(KINDS.contains(&kind));
    }
}

#[test]
fn the_view_sums_each_kind_and_leaves_out_empty_kinds() {
    let v = view(
        &facts(vec![
            t("rollup_timelines", 10, 4096, 0),
            t("records", 100, 8192, 4096),
            t("rollup_days", 5, 4096, 8192),
            t("devices", 3, 4096, 4096),
        ]),
        Some(14),
    );
    let kinds: Vec<&str> = v.kinds.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, ["records", "rollups", "fleet"]);
    let rollups = &v.kinds[1];
    assert_eq!(rollups.tables, ["rollup_days", "rollup_timelines"]);
    assert_eq!(
        (
            rollups.rows,
            rollups.table_bytes,
            rollups.index_bytes,
            rollups.bytes
        ),
        (15, 8192, 8192, 16384)
    );
    assert_eq!(v.kinds[0].bytes, 12288);
    assert_eq!(v.oldest_raw_minute.as_deref(), Some("2026-12-01T00:00:00Z"));
    assert_eq!(v.raw_retention_days, Some(14));
}

#[test]
fn sizes_read_in_binary_units() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    assert_eq!(human_bytes(-3), "-3 B");
}

#[test]
fn the_table_names_each_kind_the_database_and_the_oldest_minute() {
    let v = view(&facts(vec![t("minute_packs", 24, 65536, 8192)]), None);
    let text = render_table(&v, &|ms| format!("<{ms}>"));
    assert!(text.contains("minute_packs"), "{text}");
    assert!(text.contains("64.0 KiB"), "{text}");
    assert!(text.contains("72.0 KiB"), "{text}");
    assert!(
        text.contains("database (sqlite): 1.0 MiB, of which 4.0 KiB free"),
        "{text}"
    );
    assert!(
        text.contains("oldest raw minute: <1796083200000>; kept for ever"),
        "{text}"
    );
    let none = StorageFacts {
        oldest_raw_ms: None,
        ..facts(vec![])
    };
    let text = render_table(&view(&none, Some(90)), &|ms| ms.to_string());
    assert!(
        text.contains("oldest raw minute: none stored; kept 90 days"),
        "{text}"
    );
}
