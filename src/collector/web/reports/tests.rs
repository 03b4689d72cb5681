//! Unit tests of the reports page: parameters, addresses, the kept
//! reports and the words and numbers of its table.

use super::*;
use std::collections::HashMap;

fn q(pairs: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn d(s: &str) -> Date {
    parse_date(s).unwrap()
}

fn err(r: Result<ReportParams, PageError>) -> String {
    match r {
        Err(PageError::BadRequest(m)) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_are_the_last_seven_whole_days_by_office_in_office_hours() {
    let p = ReportParams::parse(&q(&[]), d("2026-12-07")).unwrap();
    assert_eq!((p.from, p.until), (d("2026-11-30"), d("2026-12-06")));
    assert_eq!(p.by, GroupBy::Office);
    assert_eq!(p.schedule, "office");
    let raw = p.raw();
    assert_eq!((raw.from, raw.to), (Some("2026-11-30"), Some("2026-12-07")));
    assert_eq!(raw.by, Some("office"));
    assert_eq!(raw.schedule, Some("office"));
    assert!(raw.division.is_none() && raw.office.is_none());
}

#[test]
fn the_fleet_pages_link_is_the_pages_own_address_at_its_defaults() {
    let today = d("2026-12-07");
    let branch = Branch {
        level: Level::District,
        name: "Dhaka / Dhaka".into(),
    };
    let q = q(&[("level", "district"), ("name", "Dhaka / Dhaka")]);
    assert_eq!(
        super::super::urls::reports_url(Some(&branch), today),
        ReportParams::parse(&q, today).unwrap().url(PATH, 1)
    );
    assert_eq!(
        super::super::urls::reports_url(None, today),
        ReportParams::parse(&HashMap::new(), today)
            .unwrap()
            .url(PATH, 1)
    );
}

#[test]
fn until_is_included_and_the_api_gets_the_day_after() {
    let p = ReportParams::parse(
        &q(&[
            ("from", "2026-11-01"),
            ("until", "2026-11-30"),
            ("by", "district"),
            ("schedule", "always"),
            ("target", "95"),
            ("level", "division"),
            ("name", "Dhaka"),
        ]),
        d("2026-12-07"),
    )
    .unwrap();
    let raw = p.raw();
    assert_eq!((raw.from, raw.to), (Some("2026-11-01"), Some("2026-12-01")));
    assert_eq!(
        (raw.by, raw.schedule, raw.target),
        (Some("district"), Some("always"), Some("95"))
    );
    assert_eq!(raw.division, Some("Dhaka"));
    // One day: from and until the same.
    let one = ReportParams::parse(
        &q(&[("from", "2026-12-07"), ("until", "2026-12-07")]),
        d("2026-12-07"),
    )
    .unwrap();
    assert_eq!(one.raw().to, Some("2026-12-08"));
    // The address carries every parameter and round-trips.
    let url = p.url(CSV_PATH, 3);
    assert!(
        url.starts_with("/reports/csv?from=2026-11-01&until=2026-11-30&by=district"),
        "{url}"
    );
    let back: Vec<(String, String)> =
        serde_urlencoded::from_str(url.split_once('?').unwrap().1).unwrap();
    let back: HashMap<&'static str, String> = back
        .into_iter()
        .map(|(k, v)| (*PARAMS.iter().find(|p| **p == k).unwrap(), v))
        .collect();
    assert_eq!(back.get("page").map(String::as_str), Some("3"));
    assert_eq!(ReportParams::parse(&back, d("2026-12-07")).unwrap(), p);
}

#[test]
fn bad_parameters_are_refused_naming_the_field() {
    let today = d("2026-12-07");
    for (given, names) in [
        (&[("from", "yesterday")][..], "`from`"),
        (&[("until", "2026-13-01")], "`until`"),
        (
            &[("from", "2026-12-05"), ("until", "2026-12-04")],
            "before `from`",
        ),
        // 400 days are fine (below), 401 are not.
        (
            &[("from", "2025-11-02"), ("until", "2026-12-07")],
            "400 days",
        ),
        (&[("by", "village")], "`by`"),
        (&[("schedule", "nights")], "`schedule`"),
        (&[("target", "101")], "`target`"),
        (&[("target", "lots")], "`target`"),
        (&[("level", "village"), ("name", "x")], "`level`"),
        (&[("level", "district")], "both `level` and `name`"),
        (&[("until", "9999-12-31")], "`until` is too far ahead"),
    ] {
        let m = err(ReportParams::parse(&q(given), today));
        assert!(m.contains(names), "{given:?}: {m}");
    }
    let days400 = q(&[("from", "2025-11-03"), ("until", "2026-12-07")]);
    assert!(ReportParams::parse(&days400, today).is_ok());
}

fn report(rows: usize) -> Arc<Report> {
    let row = crate::collector::report::Row {
        group: "g".into(),
        devices: 1,
        online_ms: 0,
        offline_ms: 0,
        not_running_ms: 0,
        no_data_ms: 0,
        uptime_pct: None,
        uptime: "no data".into(),
        compliant: None,
        outages: 0,
        longest_outage_ms: None,
        mean_time_to_recover_ms: None,
        broadband_ms: 0,
        wifi_ms: 0,
        mobile_ms: 0,
        broadband_pct: None,
        wifi_pct: None,
        mobile_pct: None,
        failovers: 0,
        rtt_p50_ms: None,
        loss_pct: None,
    };
    Arc::new(Report {
        from_ms: 0,
        to_ms: 1,
        by: GroupBy::Office,
        schedule: "always".into(),
        target_pct: None,
        limit: None,
        branch: None,
        token_branch: None,
        rows: vec![row; rows],
    })
}

#[test]
fn reports_are_kept_five_minutes_by_key_a_few_and_not_the_largest() {
    let mut m = Made::default();
    m.put("a".into(), 1_000, report(3));
    assert_eq!(
        m.get("a", 1_000 + KEEP_MS - 1)
            .map(|(r, at)| (r.rows.len(), at)),
        Some((3, 1_000))
    );
    assert!(
        m.get("a", 1_000 + KEEP_MS).is_none(),
        "made anew after five minutes"
    );
    assert!(m.get("b", 1_000).is_none(), "another branch or parameters");
    assert!(
        m.get("a", 999).is_none(),
        "a clock stepped back is not trusted"
    );
    // Made again: the newer one is shown.
    m.put("a".into(), 2_000, report(4));
    assert_eq!(m.get("a", 2_000).unwrap().0.rows.len(), 4);
    // At most a few, the oldest going first.
    for k in 0..KEPT {
        m.put(format!("k{k}"), 3_000, report(1));
    }
    assert!(m.get("a", 3_000).is_none());
    assert!(m.get("k0", 3_000).is_some() && m.get(&format!("k{}", KEPT - 1), 3_000).is_some());
    // Too large to keep; large ones push the oldest out.
    m.put("big".into(), 3_000, report(MAX_KEPT_ROWS + 1));
    assert!(m.get("big", 3_000).is_none());
    m.put("half".into(), 3_000, report(MAX_KEPT_ROWS / 2));
    m.put("half2".into(), 3_000, report(MAX_KEPT_ROWS / 2));
    assert!(m.get("half", 3_000).is_some() && m.get("half2", 3_000).is_some());
    assert!(
        m.get(&format!("k{}", KEPT - 1), 3_000).is_none(),
        "rows bound"
    );
    // Expired ones are let go when looked at.
    assert!(m.get("half", 3_000 + KEEP_MS).is_none());
    assert!(m.kept.is_empty());
}

#[test]
fn durations_and_percentages_in_both_languages() {
    assert_eq!(duration(Lang::En, 0), "0m");
    assert_eq!(duration(Lang::En, 59_999), "0m");
    assert_eq!(duration(Lang::En, 45 * 60_000), "45m");
    assert_eq!(duration(Lang::En, (6 * 60 + 30) * 60_000), "6h 30m");
    assert_eq!(
        duration(Lang::En, (2 * 1440 + 3 * 60 + 59) * 60_000),
        "2d 3h"
    );
    assert_eq!(duration(Lang::Bn, (6 * 60 + 30) * 60_000), "৬ ঘ ৩০ মি");
    assert_eq!(percent(Lang::En, Some(92.94)), "92.9%");
    assert_eq!(percent(Lang::Bn, Some(100.0)), "১০০.০%");
    assert_eq!(percent(Lang::En, None), "–");
}

/// A dashboard state over an in-memory store with `users`.
async fn state_with(users: &[(&str, crate::collector::model::Role, Option<Branch>)]) -> WebState {
    use crate::collector::http::{ApiOptions, ApiState};
    use crate::config::collector::CollectorConfig;
    let store = crate::collector::store::open("sqlite::memory:")
        .await
        .unwrap();
    for (name, role, b) in users {
        store
            .add_user(name, *role, b.as_ref(), "not a hash", 0)
            .await
            .unwrap();
    }
    let cfg = CollectorConfig::embedded();
    let api = ApiState::new(
        store,
        ApiOptions {
            max_body_bytes: cfg.collector.max_body_bytes,
            max_inflight: cfg.collector.max_inflight,
            holidays: Default::default(),
        },
    );
    super::super::web_state(api, super::super::WebOptions::for_config(&cfg))
}

/// Two views asking for the same report at once: it is made once, and
/// both show that one; nothing is left in the making.
#[tokio::test]
async fn a_report_in_the_making_is_waited_for_not_made_again() {
    use crate::collector::model::Role;
    let ws = state_with(&[("admin", Role::Admin, None)]).await;
    let access = crate::collector::access::Access {
        token: "test".into(),
        role: Role::Admin,
        branch: None,
    };
    let p = ReportParams::parse(&q(&[]), today(now_ms())).unwrap();
    let (a, b) = tokio::join!(make(&ws, &access, &p), make(&ws, &access, &p));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(Arc::ptr_eq(&a.0, &b.0), "made twice");
    assert_eq!(a.1, b.1);
    assert!(ws.making.lock().unwrap().is_empty());
}

/// The default report is made ahead for the whole fleet (an admin exists)
/// and for each distinct branch of the viewers, at most [`PREMADE`] in all,
/// and kept under the key a first view of `/reports` looks up.
#[tokio::test]
async fn default_reports_are_made_ahead_for_the_users_branches() {
    use crate::collector::model::Role;
    let branch = |level, name: &str| Branch {
        level,
        name: name.into(),
    };
    let users = [
        ("admin", Role::Admin, None),
        (
            "dhaka-1",
            Role::Read,
            Some(branch(Level::District, "Dhaka / Dhaka")),
        ),
        (
            "dhaka-2",
            Role::Read,
            Some(branch(Level::District, "Dhaka / Dhaka")),
        ),
        (
            "savar",
            Role::Read,
            Some(branch(Level::Office, "dhk-savar")),
        ),
        (
            "ctg",
            Role::Read,
            Some(branch(Level::Division, "Chattogram")),
        ),
        (
            "rangpur",
            Role::Read,
            Some(branch(Level::Division, "Rangpur")),
        ),
    ];
    let ws = state_with(&users).await;
    premake(&ws).await;
    let p = ReportParams::parse(&q(&[]), today(now_ms())).unwrap();
    let key = |b: Option<Branch>| format!("{:?} {}", b, p.url(PATH, 1));
    let made = |b: Option<Branch>| kept(&ws, &key(b)).is_some();
    assert!(made(None), "the whole fleet's");
    assert!(
        made(users[1].2.clone()),
        "Dhaka district's: the most viewers"
    );
    let viewers = users[3..].iter().filter(|u| made(u.2.clone())).count();
    assert_eq!(viewers, PREMADE - 2, "at most {PREMADE} in all");
    // Another report is not among them.
    let other = ReportParams::parse(&q(&[("by", "district")]), today(now_ms())).unwrap();
    assert!(kept(&ws, &format!("{:?} {}", None::<Branch>, other.url(PATH, 1))).is_none());
}
