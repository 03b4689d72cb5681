//! Unit tests of report parameters, grouping and rendering (`super`).

use super::*;

fn raw<'a>(from: &'a str, to: &'a str) -> RawQuery<'a> {
    RawQuery {
        from: Some(from),
        to: Some(to),
        ..Default::default()
    }
}

#[test]
fn dates_are_dhaka_midnight_and_rfc3339_is_taken() {
    let q = ReportQuery::parse(&raw("2026-11-29", "2026-11-30")).unwrap();
    assert_eq!(ts(q.from_ms), "2026-11-28T18:00:00Z");
    assert_eq!(q.to_ms - q.from_ms, DAY_MS);
    assert_eq!(q.by, GroupBy::Office);
    let q = ReportQuery::parse(&raw("2026-11-29T09:00:00+06:00", "2026-11-29T17:00:00Z")).unwrap();
    assert_eq!(ts(q.from_ms), "2026-11-29T03:00:00Z");
    for bad in [
        "2026-11-31",
        "29/11/2026",
        "2026-11-29T09:00",
        "yesterday",
        "",
    ] {
        let e = ReportQuery::parse(&raw(bad, "2026-12-01")).unwrap_err();
        assert_eq!(e.field, "from", "{bad}: {e}");
    }
}

#[test]
fn errors_name_the_parameter() {
    let e = ReportQuery::parse(&raw("2026-11-30", "2026-11-29")).unwrap_err();
    assert_eq!(
        (e.field, e.message.as_str()),
        ("to", "`to` must be after `from`")
    );
    let e = ReportQuery::parse(&raw("2026-11-29", "2026-11-29")).unwrap_err();
    assert_eq!(e.field, "to");
    let e = ReportQuery::parse(&raw("2025-01-01", "2026-11-29")).unwrap_err();
    assert_eq!(e.field, "to");
    assert!(e.message.contains("400 days"), "{e}");
    let mut r = raw("2026-11-29", "2026-11-30");
    r.by = Some("ward");
    let e = ReportQuery::parse(&r).unwrap_err();
    assert_eq!(e.field, "by");
    assert!(e.message.contains(GroupBy::VALID), "{e}");
    r.by = Some("district");
    r.schedule = Some("office:Asia/Dhakka");
    let e = ReportQuery::parse(&r).unwrap_err();
    assert_eq!(e.field, "schedule");
    assert!(e.message.contains("Asia/Dhakka"), "{e}");
    r.schedule = Some("always");
    r.target = Some("101");
    assert_eq!(ReportQuery::parse(&r).unwrap_err().field, "target");
    r.target = Some("99.5");
    let q = ReportQuery::parse(&r).unwrap();
    assert_eq!(
        (q.by, q.schedule, q.target_pct),
        (GroupBy::District, Schedule::Always, Some(99.5))
    );
    let e = ReportQuery::parse(&RawQuery::default()).unwrap_err();
    assert_eq!(e.field, "from");
}

fn dev(id: i64, name: &str, office: Option<&str>) -> Device {
    Device {
        id,
        name: name.into(),
        office: office.map(String::from),
        revoked: false,
        acked: 0,
        created_at_ms: 0,
        seen: Default::default(),
    }
}

fn fig(online: i64, offline: i64) -> Figures {
    Figures {
        online_ms: online,
        offline_ms: offline,
        ..Default::default()
    }
}

#[test]
fn groups_sum_time_and_sort_worst_first() {
    let offices = vec![Office {
        code: "o1".into(),
        name: "Office 1".into(),
        division: "Dhaka".into(),
        district: "Dhaka".into(),
        upazila: "Savar".into(),
        hours: None,
    }];
    let per = vec![
        (dev(1, "a", Some("o1")), fig(90, 10)),
        (dev(2, "b", Some("o1")), fig(10, 90)),
        (dev(3, "c", None), fig(0, 0)),
        (dev(4, "d", None), fig(50, 0)),
    ];
    let rows = build_rows(GroupBy::Office, Some(90.0), &per, &offices);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].group, "o1");
    assert_eq!(rows[0].uptime_pct, Some(50.0));
    assert_eq!(rows[0].compliant, Some(false));
    assert_eq!(rows[1].group, NO_OFFICE);
    assert_eq!(rows[1].uptime, "100.0%");
    let rows = build_rows(GroupBy::Device, None, &per, &offices);
    let names: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(names, ["b", "a", "d", "c"]);
    assert_eq!(rows[3].uptime, "no data");
    assert_eq!(rows[3].compliant, None);
    let rows = build_rows(GroupBy::Upazila, None, &per, &offices);
    assert_eq!(rows[0].group, "Dhaka / Dhaka / Savar");
}

#[test]
fn groups_weight_kinds_by_time_and_loss_by_probes() {
    let mut a = fig(600, 0);
    a.per_kind_ms = [(LinkKind::Broadband, 600)].into_iter().collect();
    a.probes_sent = 100.0;
    a.probes_lost = 50.0;
    a.loss_pct = Some(50.0);
    a.rtt_p50_ms = Some(100.0);
    a.failovers = 2;
    let mut b = fig(200, 200);
    b.per_kind_ms = [(LinkKind::Mobile, 150)].into_iter().collect();
    b.probes_sent = 900.0;
    b.probes_lost = 0.0;
    b.loss_pct = Some(0.0);
    b.rtt_p50_ms = Some(30.0);
    b.failovers = 1;
    let per = vec![(dev(1, "a", None), a), (dev(2, "b", None), b)];
    let rows = build_rows(GroupBy::Office, None, &per, &[]);
    let r = &rows[0];
    assert_eq!((r.online_ms, r.offline_ms), (800, 200));
    assert_eq!(r.uptime_pct, Some(80.0));
    assert_eq!((r.broadband_ms, r.wifi_ms, r.mobile_ms), (600, 0, 150));
    assert_eq!(r.broadband_pct, Some(75.0));
    assert_eq!(r.mobile_pct, Some(18.75));
    assert_eq!(r.wifi_pct, Some(0.0));
    // 50 of 1000 probes, not the mean of 50 % and 0 %.
    assert_eq!(r.loss_pct, Some(5.0));
    // 50 answered at 100 ms, 900 at 30 ms.
    assert_eq!(r.rtt_p50_ms, Some(30.0));
    assert_eq!(r.failovers, 3);
    let none = build_rows(
        GroupBy::Device,
        None,
        &[(dev(3, "c", None), fig(0, 0))],
        &[],
    );
    assert_eq!(
        (none[0].broadband_pct, none[0].loss_pct, none[0].rtt_p50_ms),
        (None, None, None)
    );
    assert_eq!(weighted_median(vec![]), None);
    assert_eq!(
        weighted_median(vec![(5.0, 1.0), (1.0, 1.0), (9.0, 3.0)]),
        Some(9.0)
    );
}

#[test]
fn limit_and_branch_are_parsed_and_named() {
    let mut r = raw("2026-11-29", "2026-11-30");
    r.limit = Some("5");
    r.upazila = Some("Savar");
    let q = ReportQuery::parse(&r).unwrap();
    assert_eq!(q.limit, Some(5));
    assert_eq!(q.branch, Some((Level::Upazila, "Savar".to_string())));
    for bad in ["0", "-1", "x", "100001"] {
        r.limit = Some(bad);
        assert_eq!(ReportQuery::parse(&r).unwrap_err().field, "limit", "{bad}");
    }
    r.limit = None;
    r.division = Some("Dhaka");
    let e = ReportQuery::parse(&r).unwrap_err();
    assert_eq!(e.field, "upazila");
    let offices = vec![Office {
        code: "o1".into(),
        name: "O".into(),
        division: "Dhaka".into(),
        district: "Dhaka".into(),
        upazila: "Savar".into(),
        hours: None,
    }];
    let devices = vec![dev(1, "a", Some("o1")), dev(2, "b", None)];
    let (sel, b) = select_devices(
        devices.clone(),
        &offices,
        None,
        Some(&(Level::Office, "o1".into())),
    )
    .unwrap();
    assert_eq!(sel.len(), 1);
    assert_eq!(b.unwrap().name, "o1");
    let e = select_devices(
        devices,
        &offices,
        None,
        Some(&(Level::District, "Khulna".into())),
    )
    .unwrap_err();
    assert_eq!(e.field, "district");
}

#[test]
fn csv_quotes_and_table_aligns() {
    assert_eq!(CSV_COLUMNS.join(","), CSV_HEADER);
    assert_eq!(human_ms(23_400_000), "6h 30m");
    assert_eq!(human_ms(1_800_000), "30m");
    assert_eq!(human_ms(3_600_000), "1h");
    assert_eq!(human_ms(0), "0m");
    let r = Report {
        from_ms: 0,
        to_ms: DAY_MS,
        by: GroupBy::Device,
        schedule: "always".into(),
        target_pct: None,
        limit: None,
        branch: None,
        token_branch: None,
        rows: build_rows(
            GroupBy::Device,
            None,
            &[(dev(1, "x,y", None), fig(1, 0))],
            &[],
        ),
    };
    let csv = render_csv(&r);
    assert!(csv.starts_with(CSV_HEADER), "{csv}");
    assert!(
        csv.contains("\r\n\"x,y\",1,1,0,0,0,100.000,100.0%,,0,,,0,0,0,0.000,0.000,0.000,0,,\r\n"),
        "{csv}"
    );
    let t = render_table(&r);
    assert!(t.contains("100.0%"), "{t}");
}
