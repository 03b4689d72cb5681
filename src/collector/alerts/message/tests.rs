use super::*;
use crate::collector::alerts::model::AlertKey;

fn dhaka() -> TimeZone {
    TimeZone::get("Asia/Dhaka").unwrap()
}

/// Sunday 29 November 2026, Dhaka.
fn sun(h: i8, m: i8) -> i64 {
    dhaka()
        .to_timestamp(jiff::civil::date(2026, 11, 29).at(h, m, 0, 0))
        .unwrap()
        .as_millisecond()
}

fn savar() -> Office {
    Office {
        code: "dhk-savar-uno".into(),
        name: "Savar UNO office".into(),
        division: "Dhaka".into(),
        district: "Dhaka".into(),
        upazila: "Savar".into(),
        hours: None,
    }
}

fn view(kind: AlertKind, subject: Subject) -> AlertView {
    AlertView {
        key: AlertKey {
            rule: "unreachable".into(),
            subject,
        },
        kind,
        office: Some("dhk-savar-uno".into()),
        since_ms: sun(10, 2),
        at_ms: sun(10, 9),
        links: vec!["eth0".into(), "wwan0".into()],
        members: Vec::new(),
        came_back: Vec::new(),
        still_silent: Vec::new(),
        annotation: None,
        level: RouteLevel::Office,
        escalated_from: None,
    }
}

#[test]
fn short_messages_in_english_and_bangla() {
    let t = Templates::default();
    let v = view(AlertKind::Unreachable, Subject::device("uno-laptop"));
    let ack = Some("https://lw.example.gov.bd/ack?t=1.2.x");
    let en = t.render(
        Language::En,
        Event::Opened,
        &v,
        Some(&savar()),
        &dhaka(),
        ack,
    );
    assert_eq!(en.subject, "[linkwatch] Unreachable: uno-laptop");
    assert_eq!(
        en.text,
        "Unreachable: uno-laptop, Savar UNO office, Savar, Dhaka\n\
         Since 10:02.\n\
         Links down: eth0, wwan0\n\
         Acknowledge: https://lw.example.gov.bd/ack?t=1.2.x"
    );
    let bn = t.render(
        Language::Bn,
        Event::Opened,
        &v,
        Some(&savar()),
        &dhaka(),
        None,
    );
    assert_eq!(bn.subject, "[linkwatch] যোগাযোগ বিচ্ছিন্ন: uno-laptop");
    assert_eq!(
        bn.text,
        "যোগাযোগ বিচ্ছিন্ন: uno-laptop, Savar UNO office, Savar, Dhaka\n\
         ১০:০২ থেকে।\n\
         বন্ধ লিংক: eth0, wwan0"
    );
    // An SMS-sized message: well under 300 characters.
    assert!(bn.text.chars().count() < 120, "{}", bn.text.chars().count());
}

#[test]
fn office_alerts_list_members_and_recoveries_who_came_back() {
    let t = Templates::default();
    let mut v = view(AlertKind::OfficeOffline, Subject::office("dhk-savar-uno"));
    v.links.clear();
    v.members = (1..=8).map(|k| format!("pc-{k}")).collect();
    let en = t.render(
        Language::En,
        Event::Opened,
        &v,
        Some(&savar()),
        &dhaka(),
        None,
    );
    assert_eq!(
        en.text,
        "Office offline: Savar UNO office, Savar, Dhaka\nSince 10:02.\n\
         Devices: 8 (pc-1, pc-2, pc-3, pc-4, pc-5, pc-6 and 2 more)"
    );
    let bn = t.render(
        Language::Bn,
        Event::Opened,
        &v,
        Some(&savar()),
        &dhaka(),
        None,
    );
    assert!(
        bn.text
            .ends_with("ডিভাইস: ৮টি (pc-1, pc-2, pc-3, pc-4, pc-5, pc-6 ও আরও ২টি)"),
        "{}",
        bn.text
    );
    v.came_back = vec!["pc-1".into(), "pc-2".into()];
    v.still_silent = vec!["pc-3".into()];
    v.at_ms = sun(12, 32);
    let en = t.render(
        Language::En,
        Event::Recovered,
        &v,
        Some(&savar()),
        &dhaka(),
        None,
    );
    assert_eq!(
        en.text,
        "Resolved: Office offline: Savar UNO office, Savar, Dhaka\n\
         From 10:02 to 12:32 (2 h 30 min).\n\
         Back: pc-1, pc-2\n\
         Still silent: pc-3"
    );
    let bn = t.render(
        Language::Bn,
        Event::Recovered,
        &v,
        Some(&savar()),
        &dhaka(),
        None,
    );
    assert!(
        bn.text.contains("১০:০২ থেকে ১২:৩২ পর্যন্ত (২ ঘণ্টা ৩০ মিনিট)"),
        "{}",
        bn.text
    );
}

#[test]
fn escalations_name_the_level_in_the_reader_s_language() {
    let t = Templates::default();
    let mut v = view(AlertKind::Unreachable, Subject::device("uno-laptop"));
    v.escalated_from = Some(RouteLevel::Office);
    v.level = RouteLevel::District;
    let en = t.render(
        Language::En,
        Event::Escalated,
        &v,
        Some(&savar()),
        &dhaka(),
        None,
    );
    assert!(
        en.text
            .starts_with("Not acknowledged, sent up to the district: Unreachable: uno-laptop"),
        "{}",
        en.text
    );
    let bn = t.render(
        Language::Bn,
        Event::Escalated,
        &v,
        Some(&savar()),
        &dhaka(),
        None,
    );
    assert!(
        bn.text.starts_with("স্বীকার করা হয়নি, জেলা পর্যায়ে"),
        "{}",
        bn.text
    );
}

#[test]
fn local_times_days_and_zones() {
    let tz = dhaka();
    // 03:00 UTC is 09:00 in Dhaka.
    assert_eq!(local_time(sun(9, 0), sun(9, 0), &tz, Language::En), "09:00");
    // Another day: with the date.
    assert_eq!(
        local_time(sun(9, 5) - 24 * 3_600_000, sun(9, 0), &tz, Language::En),
        "28 Nov 09:05"
    );
    assert_eq!(
        local_time(sun(9, 5) - 24 * 3_600_000, sun(9, 0), &tz, Language::Bn),
        "২৮/১১ ০৯:০৫"
    );
    // An office with hours in another zone is told in its own.
    let mut o = savar();
    o.hours = Some("office:Asia/Kathmandu:sun-thu:09:00-17:00".into());
    let z = office_zone(Some(&o)).unwrap();
    assert_eq!(local_time(sun(9, 0), sun(9, 0), &z, Language::En), "08:45");
    assert!(office_zone(Some(&savar())).is_none());
    let v = view(AlertKind::Unreachable, Subject::device("pc"));
    let en = Templates::default().render(Language::En, Event::Opened, &v, Some(&o), &dhaka(), None);
    assert!(en.text.contains("Since 09:47."), "{}", en.text);
    assert_eq!(
        bangla_digits("10:02, 2026-11-29 x9"),
        "১০:০২, ২০২৬-১১-২৯ x৯"
    );
    assert_eq!(duration(59_999, Language::En), "0 min");
    assert_eq!(
        duration(3 * 86_400_000 + 4 * 3_600_000 + 60_000, Language::En),
        "3 d 4 h"
    );
    assert_eq!(duration(61 * 60_000, Language::Bn), "১ ঘণ্টা ১ মিনিট");
}

#[test]
fn configured_templates_replace_the_built_in_ones() {
    let texts = TemplateTexts {
        opened: Some("{who} অফলাইন ({since})".into()),
        ..TemplateTexts::default()
    };
    let t = Templates {
        bn: TemplateSet::build(Language::Bn, &texts).unwrap(),
        en: TemplateSet::build(Language::En, &TemplateTexts::default()).unwrap(),
    };
    let v = view(AlertKind::Unreachable, Subject::device("pc-7"));
    let bn = t.render(Language::Bn, Event::Opened, &v, None, &dhaka(), None);
    assert_eq!(bn.text, "pc-7 অফলাইন (১০:০২)");
    // The subject keeps the built-in one.
    assert_eq!(bn.subject, "[linkwatch] যোগাযোগ বিচ্ছিন্ন: pc-7");
    let bad = TemplateTexts {
        recovered: Some("back: {device}".into()),
        ..TemplateTexts::default()
    };
    let (field, m) = TemplateSet::build(Language::En, &bad).unwrap_err();
    assert_eq!(field, "recovered");
    assert!(
        m.contains("unknown placeholder `{device}`") && m.contains("{who}"),
        "{m}"
    );
    let empty = TemplateTexts {
        subject: Some("  ".into()),
        ..TemplateTexts::default()
    };
    assert_eq!(
        TemplateSet::build(Language::En, &empty).unwrap_err().0,
        "subject"
    );
}
