//! Silence requests: targets, times and bounds, and what a token limited
//! to a branch may silence (exhaustively over a small hierarchy, and as a
//! property over random branches).

use super::*;
use crate::collector::alerts::tests::{office, offices};
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000_000;
const H: i64 = 3_600_000;

fn known() -> (BTreeMap<String, Option<String>>, BTreeMap<String, Office>) {
    let offices: BTreeMap<String, Office> =
        offices().into_iter().map(|o| (o.code.clone(), o)).collect();
    let devices = [
        ("laptop-1", Some("keraniganj")),
        ("laptop-2", Some("savar-uno")),
        ("gw-pirganj", Some("pirganj")),
        ("lost", None),
    ]
    .into_iter()
    .map(|(d, o)| (d.to_string(), o.map(str::to_string)))
    .collect();
    (devices, offices)
}

fn req(target: &str, end: Option<&str>, duration: Option<&str>) -> SilenceRequest {
    SilenceRequest {
        target: target.into(),
        end: end.map(str::to_string),
        duration: duration.map(str::to_string),
        ..SilenceRequest::default()
    }
}

fn rfc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

#[test]
fn targets_are_read_and_written_back() {
    for (text, want) in [
        ("device:laptop-1", Target::Device("laptop-1".into())),
        (" office: keraniganj ", Target::Office("keraniganj".into())),
        ("OFFICE:Keraniganj", Target::Office("Keraniganj".into())),
        (
            "district:Dhaka/Dhaka",
            Target::Branch(BranchSpec::parse("district:Dhaka / Dhaka").unwrap()),
        ),
        (
            "ministry",
            Target::Branch(BranchSpec::parse("ministry").unwrap()),
        ),
    ] {
        let t = parse_target(text).unwrap();
        assert_eq!(t, want, "{text}");
        assert_eq!(parse_target(&target_text(&t)).unwrap(), t);
    }
    for bad in [
        "",
        "device:",
        "office:  ",
        "laptop-1",
        "planet:earth",
        "district:Dhaka",
        "device:a\nb",
        &format!("device:{}", "x".repeat(300)),
    ] {
        let e = parse_target(bad).unwrap_err();
        assert_eq!(e.field, "target", "{bad:?}");
    }
}

#[test]
fn a_request_is_checked_against_the_clock_and_what_is_known() {
    let (devices, offices) = known();
    let k = Known {
        devices: &devices,
        offices: &offices,
    };
    // Now until two hours from now.
    let s = req("device:laptop-1", None, Some("2h"))
        .check(NOW, &k)
        .unwrap();
    assert_eq!((s.start_ms, s.end_ms), (NOW, NOW + 2 * H));
    // A planned window: from tomorrow, until an end.
    let mut r = req("office:KERANIGANJ", Some(&rfc(NOW + 26 * H)), None);
    r.start = Some(rfc(NOW + 24 * H));
    r.reason = Some("  power works  ".into());
    let s = r.check(NOW, &k).unwrap();
    assert_eq!(
        s.target,
        Target::Office("keraniganj".into()),
        "canonical code"
    );
    assert_eq!((s.start_ms, s.end_ms), (NOW + 24 * H, NOW + 26 * H));
    assert_eq!(s.reason, "power works");
    // A start in the past is now.
    let mut r = req("device:laptop-1", Some(&rfc(NOW + H)), None);
    r.start = Some(rfc(NOW - 5 * H));
    assert_eq!(r.check(NOW, &k).unwrap().start_ms, NOW);

    let field = |r: SilenceRequest| {
        let e = r.check(NOW, &k).unwrap_err();
        (e.field, e.not_found)
    };
    assert_eq!(
        field(req("device:nobody", None, Some("1h"))),
        ("target", true)
    );
    assert_eq!(
        field(req("office:nowhere", None, Some("1h"))),
        ("target", true)
    );
    assert_eq!(
        field(req("division:Khulna", None, Some("1h"))),
        ("target", true)
    );
    assert_eq!(field(req("device:laptop-1", None, None)), ("end", false));
    assert_eq!(
        field(req("device:laptop-1", Some(&rfc(NOW + H)), Some("1h"))),
        ("duration", false)
    );
    assert_eq!(
        field(req("device:laptop-1", Some(&rfc(NOW - H)), None)),
        ("end", false)
    );
    assert_eq!(
        field(req("device:laptop-1", Some("tomorrow"), None)),
        ("end", false)
    );
    assert_eq!(
        field(req("device:laptop-1", None, Some("forever"))),
        ("duration", false)
    );
    assert_eq!(
        field(req("device:laptop-1", None, Some("91days"))),
        ("end", false)
    );
    assert_eq!(
        field(req("device:laptop-1", None, Some("10s"))),
        ("end", false)
    );
    assert_eq!(
        field(req("device:laptop-1", None, Some("99999999999999999999h"))),
        ("duration", false)
    );
    let mut r = req("device:laptop-1", None, Some("1h"));
    r.start = Some(rfc(NOW + 400 * 24 * H));
    assert_eq!(field(r), ("start", false));
    let mut r = req("device:laptop-1", None, Some("1h"));
    r.reason = Some("x".repeat(201));
    assert_eq!(field(r), ("reason", false));
    let mut r = req("device:laptop-1", None, Some("1h"));
    r.reason = Some("a\u{0}b".into());
    assert_eq!(field(r), ("reason", false));
}

#[test]
fn a_branch_token_silences_only_inside_its_branch() {
    let (devices, offices) = known();
    let k = Known {
        devices: &devices,
        offices: &offices,
    };
    let district = Branch {
        level: Level::District,
        name: "Dhaka / Dhaka".into(),
    };
    let upazila = Branch {
        level: Level::Upazila,
        name: "Dhaka / Dhaka / Savar".into(),
    };
    let t = |s: &str| parse_target(s).unwrap();
    for (target, d, u) in [
        ("device:laptop-1", true, false),
        ("device:laptop-2", true, true),
        ("device:gw-pirganj", false, false),
        ("device:lost", false, false),
        ("device:nobody", false, false),
        ("office:keraniganj", true, false),
        ("office:savar-ac", true, true),
        ("office:pirganj", false, false),
        ("upazila:Dhaka / Dhaka / Savar", true, true),
        ("district:Dhaka / Dhaka", true, false),
        ("division:Dhaka", false, false),
        ("district:Rangpur / Rangpur", false, false),
        ("ministry", false, false),
    ] {
        assert!(within(&t(target), None, &k), "{target}");
        assert_eq!(
            within(&t(target), Some(&district), &k),
            d,
            "{target} / district"
        );
        assert_eq!(
            within(&t(target), Some(&upazila), &k),
            u,
            "{target} / upazila"
        );
    }
}

fn arb_office() -> impl Strategy<Value = Office> {
    (0..2usize, 0..2usize, 0..2usize, 0..3usize).prop_map(|(dv, ds, up, n)| {
        let div = ["Dhaka", "Rangpur"][dv];
        let dis = format!("{div}-d{ds}");
        let upa = format!("{dis}-u{up}");
        office(&format!("{upa}-o{n}"), &upa, &dis, div)
    })
}

proptest! {
    /// Whatever the hierarchy and the branch asked for: a target a scoped
    /// token may silence covers no office outside its branch, and the
    /// token's own branch is always allowed.
    #[test]
    fn what_a_scoped_token_silences_stays_in_its_branch(
        list in proptest::collection::vec(arb_office(), 1..12),
        pick_scope in 0..12usize,
        scope_level in 0..4usize,
        pick_target in 0..12usize,
        target_level in 0..5usize,
    ) {
        let offices: BTreeMap<String, Office> =
            list.iter().map(|o| (o.code.clone(), o.clone())).collect();
        let devices = BTreeMap::new();
        let k = Known { devices: &devices, offices: &offices };
        let so = &list[pick_scope % list.len()];
        let level = Level::ALL[scope_level];
        let scope = Branch { level, name: level.name_of(so) };
        let to = &list[pick_target % list.len()];
        let rl = RouteLevel::ALL[target_level];
        let spec = match rl {
            RouteLevel::Ministry => BranchSpec::parse("ministry").unwrap(),
            RouteLevel::Office => BranchSpec::parse(&format!("office:{}", to.code)).unwrap(),
            RouteLevel::Upazila => BranchSpec::parse(&format!("upazila:{}", Level::Upazila.name_of(to))).unwrap(),
            RouteLevel::District => BranchSpec::parse(&format!("district:{}", Level::District.name_of(to))).unwrap(),
            RouteLevel::Division => BranchSpec::parse(&format!("division:{}", to.division)).unwrap(),
        };
        let target = Target::Branch(spec.clone());
        if within(&target, Some(&scope), &k) {
            for o in offices.values() {
                prop_assert!(!spec.contains(Some(o)) || scope.contains(o), "{spec} reaches {}", o.code);
            }
        }
        let own = match level {
            Level::Office => Target::Office(so.code.clone()),
            l => Target::Branch(BranchSpec::parse(&format!("{l}:{}", l.name_of(so))).unwrap()),
        };
        prop_assert!(within(&own, Some(&scope), &k));
    }
}
