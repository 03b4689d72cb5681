use super::*;
use jiff::civil::date;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Unix ms of a local time in Asia/Dhaka.
fn dhaka(y: i16, m: i8, d: i8, h: i8, min: i8) -> i64 {
    local("Asia/Dhaka", (y, m, d), (h, min))
}

fn local(tz: &str, (y, m, d): (i16, i8, i8), (h, min): (i8, i8)) -> i64 {
    time_zone(tz)
        .unwrap()
        .to_timestamp(date(y, m, d).at(h, min, 0, 0))
        .unwrap()
        .as_millisecond()
}

#[test]
fn always_and_the_office_defaults() {
    assert_eq!(parse_schedule("always").unwrap(), Schedule::Always);
    assert_eq!(parse_schedule(" Always ").unwrap(), Schedule::Always);
    // `office` alone: each office's own hours, the circular's by default.
    let each = parse_schedule(" Office ").unwrap();
    assert_eq!(each.to_string(), "office");
    assert_eq!(parse_schedule(&each.to_string()).unwrap(), each);
    let Schedule::EachOffice(s) = &each else {
        panic!("{each:?}")
    };
    assert_eq!(s.to_string(), "office:Asia/Dhaka:sun-thu:09:00-17:00");
    assert_eq!(
        **s,
        parse_schedule("office:Asia/Dhaka:sun-thu:09:00-17:00").unwrap()
    );
    assert_eq!(parse_schedule(&s.to_string()).unwrap(), **s);
    let day = dhaka(2026, 11, 29, 0, 0);
    assert_eq!(each.mask(day, day + DAY), s.mask(day, day + DAY));
    assert_eq!(Schedule::Always.mask(5, 10), vec![(5, 10)]);
    assert!(Schedule::Always.mask(10, 10).is_empty());
}

#[test]
fn each_office_resolves_to_its_own_hours_with_the_holidays() {
    let holidays = parse_holidays("2026-11-30").unwrap();
    let each = parse_schedule("office")
        .unwrap()
        .with_holidays(holidays.clone());
    let hours = each.office_hours([
        ("early", "office:Asia/Dhaka:sun-sat:07:00-15:00"),
        ("plain", "office"),
        ("broken", "office:Nowhere/City"),
    ]);
    assert_eq!(hours.len(), 2, "the broken one keeps the defaults");
    let early = each.for_office(&hours, Some("early"));
    assert_eq!(early.to_string(), "office:Asia/Dhaka:sun-sat:07:00-15:00");
    assert_eq!(early.holidays(), holidays);
    // Sunday 29 Nov: 07:00-15:00; Monday 30 Nov is a holiday.
    let day = dhaka(2026, 11, 29, 0, 0);
    assert_eq!(
        early.mask(day, day + 2 * DAY),
        vec![(dhaka(2026, 11, 29, 7, 0), dhaka(2026, 11, 29, 15, 0))]
    );
    let defaults = "office:Asia/Dhaka:sun-thu:09:00-17:00";
    for office in [Some("plain"), Some("broken"), Some("unknown"), None] {
        let s = each.for_office(&hours, office);
        assert_eq!(s.to_string(), defaults, "{office:?}");
        assert_eq!(s.holidays(), holidays);
    }
    // Any other schedule applies to every office alike.
    let spelled = parse_schedule(defaults).unwrap();
    assert!(spelled.office_hours([("early", "always")]).is_empty());
    assert_eq!(*spelled.for_office(&hours, Some("early")), spelled);
}

#[test]
fn the_bundled_database_knows_dhaka() {
    // What the collector uses on a machine without /usr/share/zoneinfo.
    let tz = TimeZoneDatabase::bundled().get("Asia/Dhaka").unwrap();
    let ts = Timestamp::from_millisecond(dhaka(2026, 11, 29, 9, 0)).unwrap();
    assert_eq!(tz.to_offset(ts).seconds(), 6 * 3600);
    let s = parse_schedule("office:UTC:fri,sat:10:00-11:00").unwrap();
    assert_eq!(s.to_string(), "office:UTC:fri,sat:10:00-11:00");
    let s = parse_schedule("office:UTC:mon-wed,fri,sat:10:00-11:00").unwrap();
    assert_eq!(s.to_string(), "office:UTC:mon-wed,fri,sat:10:00-11:00");
}

#[test]
fn dhaka_is_utc_plus_six() {
    let tz = time_zone("Asia/Dhaka").unwrap();
    let ts = Timestamp::from_millisecond(dhaka(2026, 11, 29, 9, 0)).unwrap();
    assert_eq!(ts.to_zoned_datetime(tz).offset().seconds(), 6 * 3600);
    // 09:00 in Dhaka is 03:00 UTC.
    assert_eq!(ts.to_string(), "2026-11-29T03:00:00Z");
}

#[test]
fn sunday_to_thursday_mask_over_a_week() {
    let s = parse_schedule("office").unwrap();
    // Saturday 2026-11-28 00:00 to Saturday 2026-12-05 00:00, Dhaka.
    let from = dhaka(2026, 11, 28, 0, 0);
    let to = from + 7 * DAY;
    let m = s.mask(from, to);
    let expect: Vec<(i64, i64)> = (29..=30)
        .map(|d| (dhaka(2026, 11, d, 9, 0), dhaka(2026, 11, d, 17, 0)))
        .chain((1..=3).map(|d| (dhaka(2026, 12, d, 9, 0), dhaka(2026, 12, d, 17, 0))))
        .collect();
    assert_eq!(m, expect);
    let total: i64 = m.iter().map(|(a, b)| b - a).sum();
    assert_eq!(total, 5 * 8 * HOUR);
    // Clamped to the window: from 10:00 Sunday to 12:00 Monday.
    let m = s.mask(dhaka(2026, 11, 29, 10, 0), dhaka(2026, 11, 30, 12, 0));
    assert_eq!(
        m,
        vec![
            (dhaka(2026, 11, 29, 10, 0), dhaka(2026, 11, 29, 17, 0)),
            (dhaka(2026, 11, 30, 9, 0), dhaka(2026, 11, 30, 12, 0)),
        ]
    );
    // Friday and Saturday only: nothing.
    assert!(
        s.mask(dhaka(2026, 12, 4, 0, 0), dhaka(2026, 12, 6, 0, 0))
            .is_empty()
    );
}

#[test]
fn holidays_are_removed() {
    let h = parse_holidays("# Victory Day\n2026-12-16\n\n2026-12-01  # made up\n").unwrap();
    assert_eq!(h.len(), 2);
    let s = parse_schedule("office:Asia/Dhaka")
        .unwrap()
        .with_holidays(h);
    let from = dhaka(2026, 11, 29, 0, 0);
    let m = s.mask(from, from + 7 * DAY);
    // Sun, Mon, (Tue 1 Dec is a holiday), Wed, Thu.
    assert_eq!(m.len(), 4);
    assert!(!m.contains(&(dhaka(2026, 12, 1, 9, 0), dhaka(2026, 12, 1, 17, 0))));
    // Victory Day 2026 is a Wednesday.
    let m = s.mask(dhaka(2026, 12, 16, 0, 0), dhaka(2026, 12, 17, 0, 0));
    assert!(m.is_empty());
    // `always` ignores holidays.
    let a = Schedule::Always.with_holidays(parse_holidays("2026-12-16").unwrap());
    assert_eq!(a.mask(0, 10), vec![(0, 10)]);
}

#[test]
fn other_zones_days_and_hours() {
    let s = parse_schedule("office:Europe/Berlin:mon-fri:08:30-24:00").unwrap();
    let Schedule::OfficeHours {
        days, open, close, ..
    } = &s
    else {
        panic!("{s:?}")
    };
    assert_eq!(*days, [false, true, true, true, true, true, false]);
    assert_eq!((*open, *close), ((8, 30), (24, 0)));
    // Wrapping range and lists.
    let s = parse_schedule("office:UTC:fri-sun,Wednesday:00:00-24:00").unwrap();
    let Schedule::OfficeHours { days, .. } = &s else {
        panic!()
    };
    assert_eq!(*days, [true, false, false, true, false, true, true]);
    // Fri 00:00 to Mon 00:00 UTC is one merged interval.
    let fri = local("UTC", (2026, 11, 20), (0, 0));
    assert_eq!(s.mask(fri, fri + 3 * DAY), vec![(fri, fri + 3 * DAY)]);
    // Summer in Berlin: 08:30 local is 06:30 UTC.
    let s = parse_schedule("office:Europe/Berlin:mon-fri:08:30-17:00").unwrap();
    let sun = local("UTC", (2026, 6, 21), (0, 0));
    let m = s.mask(sun, sun + 2 * DAY);
    assert_eq!(m.len(), 1);
    assert_eq!(
        Timestamp::from_millisecond(m[0].0).unwrap().to_string(),
        "2026-06-22T06:30:00Z"
    );
    // Spring forward (Sunday 2026-03-29, 02:00 -> 03:00): 01:00-04:00 local is 2 h.
    let s = parse_schedule("office:Europe/Berlin:sun:01:00-04:00").unwrap();
    let day = local("UTC", (2026, 3, 29), (0, 0));
    let m = s.mask(day - DAY, day + DAY);
    assert_eq!(m, vec![(day, day + 2 * HOUR)]);
}

#[test]
fn errors_name_the_bad_part() {
    let e = parse_schedule("office:Asia/Dhakka").unwrap_err();
    assert_eq!(e, ScheduleError::UnknownTimeZone("Asia/Dhakka".into()));
    assert!(e.to_string().contains("`Asia/Dhakka`"), "{e}");
    assert!(e.to_string().contains("Asia/Dhaka"), "{e}");
    let e = parse_schedule("sometimes").unwrap_err();
    assert!(e.to_string().contains("`sometimes`"), "{e}");
    assert!(
        e.to_string()
            .contains("office:Asia/Dhaka:sun-thu:09:00-17:00"),
        "{e}"
    );
    let e = parse_schedule("office:Asia/Dhaka:sun-thr").unwrap_err();
    assert!(e.to_string().contains("`thr` is not a day"), "{e}");
    for hours in [
        "17:00-09:00",
        "9-17",
        "09:00-25:00",
        "24:00-24:00",
        "09:0-17:00",
    ] {
        let e = parse_schedule(&format!("office:Asia/Dhaka:sun-thu:{hours}")).unwrap_err();
        assert!(
            matches!(&e, ScheduleError::BadHours { hours: h, .. } if h == hours),
            "{hours}: {e}"
        );
    }
}

#[test]
fn a_bad_holiday_line_is_named() {
    let e = parse_holidays("2026-12-16\n# ok\n2026-02-30\n").unwrap_err();
    assert_eq!(
        e,
        ScheduleError::BadHoliday {
            line: 3,
            text: "2026-02-30".into()
        }
    );
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = parse_holidays("\n\n\n16/12/2026").unwrap_err();
    assert!(e.to_string().starts_with("holiday file, line 4:"), "{e}");
    let e = parse_holidays("2026-12-16T00:00").unwrap_err();
    assert!(matches!(e, ScheduleError::BadHoliday { line: 1, .. }));
    assert!(parse_holidays("").unwrap().is_empty());
}
