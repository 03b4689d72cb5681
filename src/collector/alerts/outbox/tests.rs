use super::*;
use crate::collector::alerts::ack::{AckKey, AckLinks};
use crate::collector::alerts::contacts::{Contact, Language};
use crate::collector::alerts::model::{
    AlertKey, AlertKind, AlertRef, AlertView, RouteLevel, Subject,
};
use crate::collector::alerts::rules::BranchSpec;
use proptest::prelude::*;

const S: i64 = 1_000;
const T0: i64 = 1_796_000_000_000;

fn contact(name: &str, branch: &str, lang: Language, channels: &[&str]) -> Contact {
    Contact {
        name: name.into(),
        branch: BranchSpec::parse(branch).unwrap(),
        language: lang,
        email: Some(format!("{name}@example.gov.bd")),
        phone: (name != "no-phone").then(|| "+8801711000000".into()),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        origin: "test".into(),
    }
}

fn office() -> Office {
    Office {
        code: "savar-uno".into(),
        name: "Savar UNO office".into(),
        division: "Dhaka".into(),
        district: "Dhaka".into(),
        upazila: "Savar".into(),
        hours: None,
    }
}

fn notification(event: Event, levels: Vec<RouteLevel>) -> Notification {
    Notification {
        alert: AlertRef::Id(7),
        event,
        levels: levels.clone(),
        view: AlertView {
            key: AlertKey {
                rule: "unreachable".into(),
                subject: Subject::device("pc-1"),
            },
            kind: AlertKind::Unreachable,
            office: Some("savar-uno".into()),
            since_ms: T0,
            at_ms: T0 + 7 * 60 * S,
            links: vec![],
            members: vec![],
            came_back: vec![],
            still_silent: vec![],
            annotation: None,
            level: levels[0],
            escalated_from: None,
        },
    }
}

#[test]
fn a_notification_becomes_one_row_per_contact_and_channel() {
    let routing = Routing::new(vec![
        contact("uno", "office:savar-uno", Language::Bn, &["mail", "sms"]),
        contact(
            "no-phone",
            "office:savar-uno",
            Language::En,
            &["sms", "slack", "gone"],
        ),
        contact("dc", "district:Dhaka / Dhaka", Language::En, &["mail"]),
    ]);
    let channels: BTreeMap<String, Needs> = [
        ("mail".to_string(), Needs::Email),
        ("sms".to_string(), Needs::Phone),
        ("slack".to_string(), Needs::Nothing),
    ]
    .into();
    let templates = Templates::default();
    let zone = TimeZone::get("Asia/Dhaka").unwrap();
    let ack = AckLinks {
        key: AckKey::new([7u8; 32]).unwrap(),
        base_url: "https://lw.example.gov.bd/ack".into(),
        ttl_ms: 3_600_000,
    };
    let planner = Planner {
        routing: &routing,
        channels: &channels,
        templates: &templates,
        zone: &zone,
        ack: Some(&ack),
        policy: OutboxPolicy::default(),
    };
    let rows = planner.plan(
        &notification(Event::Opened, vec![RouteLevel::Office]),
        7,
        Some(&office()),
        T0,
    );
    let keys: Vec<&str> = rows.iter().map(|r| r.dedupe_key.as_str()).collect();
    // no-phone has no number for SMS and `gone` is no channel: skipped.
    assert_eq!(
        keys,
        [
            "7/opened/office/uno/mail",
            "7/opened/office/uno/sms",
            "7/opened/office/no-phone/slack"
        ]
    );
    assert_eq!(rows[0].address, "uno@example.gov.bd");
    assert_eq!(rows[1].address, "+8801711000000");
    assert_eq!(rows[2].address, "");
    assert_eq!(rows[0].message.language, Language::Bn);
    assert!(rows[0].message.rendered.text.starts_with("যোগাযোগ বিচ্ছিন্ন"));
    assert!(rows[2].message.rendered.text.starts_with("Unreachable"));
    let url = rows[0].message.ack_url.clone().unwrap();
    let token = url
        .strip_prefix("https://lw.example.gov.bd/ack?t=")
        .unwrap();
    assert_eq!(ack.key.verify(token, T0), Ok(7));
    assert!(rows[0].message.rendered.text.contains(&url));
    assert!(rows.iter().all(|r| r.state == RowState::Pending
        && r.next_attempt_ms == T0
        && r.expires_ms == T0 + OutboxPolicy::default().expire_after_ms));
    // The same notice planned again has the same keys (the store's unique
    // key makes re-applying it harmless); a recovery has its own, no link.
    let again = planner.plan(
        &notification(Event::Opened, vec![RouteLevel::Office]),
        7,
        Some(&office()),
        T0 + 5 * S,
    );
    assert_eq!(
        again.iter().map(|r| &r.dedupe_key).collect::<Vec<_>>(),
        rows.iter().map(|r| &r.dedupe_key).collect::<Vec<_>>()
    );
    let rec = planner.plan(
        &notification(
            Event::Recovered,
            vec![RouteLevel::Office, RouteLevel::District],
        ),
        7,
        Some(&office()),
        T0,
    );
    assert_eq!(rec.len(), 4);
    assert!(rec.iter().all(|r| r.message.ack_url.is_none()));
    assert_eq!(rec[3].dedupe_key, "7/recovered/office/dc/mail");
}

#[test]
fn backoff_doubles_within_its_jitter_bounds() {
    let p = OutboxPolicy {
        first_retry_ms: 30 * S,
        max_retry_ms: 30 * 60 * S,
        jitter: 0.2,
        ..OutboxPolicy::default()
    };
    let mut prev_hi = 0;
    for n in 1..=70 {
        let (lo, hi) = p.backoff_bounds(n);
        assert!(
            hi == (prev_hi * 2).clamp(30 * S, 30 * 60 * S),
            "n={n}: {hi}"
        );
        assert_eq!(lo, (hi as f64 * 0.8).floor() as i64);
        for k in 0..=100 {
            let w = p.backoff(n, k as f64 / 100.0);
            assert!(lo <= w && w <= hi, "n={n} u={k}: {w} not in [{lo}, {hi}]");
        }
        assert_eq!(p.backoff(n, 0.0), hi);
        assert_eq!(p.backoff(n, f64::NAN), hi);
        prev_hi = hi;
    }
}

/// What the simulated receiver does on each attempt of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Transient,
    Permanent,
    /// The collector dies mid-send: no outcome recorded.
    Crash,
}

fn row(key: &str, to: &str, created: i64, p: &OutboxPolicy) -> OutboxRow {
    let n = notification(Event::Opened, vec![RouteLevel::Office]);
    OutboxRow {
        dedupe_key: key.into(),
        alert_id: 7,
        channel: "sms".into(),
        recipient: to.into(),
        address: to.into(),
        message: Message {
            dedupe_key: key.into(),
            event: Event::Opened,
            language: Language::En,
            rendered: crate::collector::alerts::message::Rendered {
                subject: "s".into(),
                text: "t".into(),
            },
            ack_url: None,
            alert: n.view,
        },
        state: RowState::Pending,
        attempts: 0,
        created_ms: created,
        next_attempt_ms: created,
        expires_ms: created + p.expire_after_ms,
        last_error: None,
        done_ms: None,
    }
}

/// Drive the outbox over simulated time (a tick every `step`), each
/// attempt answered by `answer(row, attempt)`; the attempts made, with
/// their times, by row.
fn simulate(
    rows: &mut [OutboxRow],
    p: &OutboxPolicy,
    until: i64,
    step: i64,
    answer: impl Fn(&OutboxRow, u32) -> Answer,
) -> BTreeMap<String, Vec<(i64, Answer)>> {
    let mut log: BTreeMap<String, Vec<(i64, Answer)>> = BTreeMap::new();
    let mut now = rows.iter().map(|r| r.created_ms).min().unwrap_or(T0);
    let mut k = 0u64;
    while now < until {
        let live: Vec<OutboxRow> = rows
            .iter()
            .filter(|r| r.created_ms <= now)
            .cloned()
            .collect();
        let plan = due(&live, now, p);
        for u in plan.expire.iter().chain(&plan.defer) {
            let r = rows
                .iter_mut()
                .find(|r| r.dedupe_key == u.dedupe_key)
                .unwrap();
            r.apply(u);
        }
        for u in &plan.send {
            let r = rows
                .iter_mut()
                .find(|r| r.dedupe_key == u.dedupe_key)
                .unwrap();
            r.apply(u);
            let a = answer(r, r.attempts);
            log.entry(r.dedupe_key.clone()).or_default().push((now, a));
            k += 1;
            let unit = ((k * 7919) % 1000) as f64 / 1000.0;
            let outcome = match a {
                Answer::Ok => Ok(()),
                Answer::Transient => Err(SendError::transient("sms", "answered 500")),
                Answer::Permanent => Err(SendError::permanent("sms", "answered 400")),
                Answer::Crash => continue,
            };
            let u = settle(r, outcome.as_ref().map(|_| ()), now, p, unit);
            r.apply(&u);
        }
        now += step;
    }
    log
}

#[test]
fn retried_with_back_off_until_delivered() {
    let p = OutboxPolicy::default();
    let mut rows = vec![row("a", "+880171", T0, &p)];
    let log = simulate(&mut rows, &p, T0 + 3_600 * S, S, |_, n| {
        if n <= 4 {
            Answer::Transient
        } else {
            Answer::Ok
        }
    });
    let tries = &log["a"];
    assert_eq!(tries.len(), 5);
    assert_eq!(rows[0].state, RowState::Delivered);
    assert_eq!(rows[0].attempts, 5);
    for (n, w) in tries.windows(2).enumerate() {
        let (lo, hi) = p.backoff_bounds(n as u32 + 1);
        let gap = w[1].0 - w[0].0;
        // Ticks are a second apart: the wait rounds up to the next tick.
        assert!(
            lo <= gap && gap <= hi + S,
            "attempt {}: {gap} not in [{lo}, {hi}]",
            n + 2
        );
    }
    // Delivered, with the last error kept (why it was late).
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("answered 500")
    );
}

#[test]
fn refused_for_good_is_not_retried_and_expired_is_given_up() {
    let p = OutboxPolicy::default();
    let mut rows = vec![row("a", "x", T0, &p), row("b", "y", T0, &p)];
    let log = simulate(&mut rows, &p, T0 + 30 * 3_600 * S, 10 * S, |r, _| {
        if r.dedupe_key == "a" {
            Answer::Permanent
        } else {
            Answer::Transient
        }
    });
    assert_eq!(log["a"].len(), 1);
    assert_eq!(rows[0].state, RowState::Failed);
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("answered 400")
    );
    assert_eq!(rows[1].state, RowState::Expired);
    assert!(log["b"].iter().all(|(t, _)| *t < rows[1].expires_ms));
    assert!(
        rows[1]
            .last_error
            .as_deref()
            .unwrap()
            .contains("answered 500")
    );
    // 30 s, 1, 2, 4, 8, 16 min, then every 30 min for the rest of the day.
    assert!((45..=70).contains(&log["b"].len()), "{}", log["b"].len());
}

#[test]
fn a_send_cut_short_by_a_crash_is_sent_again_after_the_lease() {
    let p = OutboxPolicy::default();
    let mut rows = vec![row("a", "x", T0, &p)];
    let log = simulate(&mut rows, &p, T0 + 600 * S, S, |_, n| {
        if n == 1 { Answer::Crash } else { Answer::Ok }
    });
    let tries = &log["a"];
    assert_eq!(tries.len(), 2, "at least once: once more after the crash");
    assert_eq!(tries[1].0 - tries[0].0, p.lease_ms);
    assert_eq!(rows[0].state, RowState::Delivered);
}

#[test]
fn a_recipient_over_its_rate_limit_waits_but_loses_nothing() {
    let p = OutboxPolicy {
        rate_limit: 30,
        rate_window_ms: 3_600 * S,
        ..OutboxPolicy::default()
    };
    let mut rows: Vec<OutboxRow> = (0..40)
        .map(|k| row(&format!("m{k:02}"), "+8801711", T0 + k * S, &p))
        .collect();
    // Someone else is not held up by it.
    rows.push(row("other", "+8801999", T0 + 50 * S, &p));
    simulate(&mut rows, &p, T0 + 2 * 3_600 * S + 60 * S, S, |_, _| {
        Answer::Ok
    });
    assert!(rows.iter().all(|r| r.state == RowState::Delivered));
    let mut times: Vec<i64> = rows[..40].iter().map(|r| r.done_ms.unwrap()).collect();
    times.sort();
    assert_eq!(times[29], T0 + 29 * S);
    // The 31st waits for the 1st to leave the window.
    assert_eq!(times[30], T0 + 3_600 * S);
    assert_eq!(rows[40].done_ms, Some(T0 + 50 * S));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the receivers answer: every row ends delivered, refused or
    /// expired; delivered only after a successful attempt; never attempted
    /// after it is done or expired; waits respect the back-off's lower
    /// bound; at most `rate_limit` deliveries per recipient in any window.
    #[test]
    fn the_outbox_always_settles(
        created in prop::collection::vec((0i64..7_200, 0usize..3), 1..25),
        answers in prop::collection::vec(0u8..10, 0..200),
        limit in 1u32..6,
    ) {
        let p = OutboxPolicy {
            first_retry_ms: 10 * S,
            max_retry_ms: 600 * S,
            expire_after_ms: 4 * 3_600 * S,
            rate_limit: limit,
            rate_window_ms: 600 * S,
            lease_ms: 60 * S,
            jitter: 0.5,
        };
        let mut rows: Vec<OutboxRow> = created
            .iter()
            .enumerate()
            .map(|(k, (t, to))| row(&format!("r{k}"), &format!("to{to}"), T0 + t * S, &p))
            .collect();
        let answer = |r: &OutboxRow, n: u32| {
            let k: usize = r.dedupe_key[1..].parse().unwrap();
            match answers.get((k * 7 + n as usize) % answers.len().max(1)).copied().unwrap_or(0) {
                0..=4 => Answer::Ok,
                5..=7 => Answer::Transient,
                8 => Answer::Crash,
                _ => Answer::Permanent,
            }
        };
        let log = simulate(&mut rows, &p, T0 + 6 * 3_600 * S + 60 * S, 10 * S, answer);
        let mut delivered: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for r in &rows {
            prop_assert!(r.state != RowState::Pending, "{} still pending", r.dedupe_key);
            let tries = log.get(&r.dedupe_key).cloned().unwrap_or_default();
            match r.state {
                RowState::Delivered => {
                    prop_assert_eq!(tries.last().map(|t| t.1), Some(Answer::Ok));
                    delivered.entry(r.address.as_str()).or_default().push(r.done_ms.unwrap());
                }
                RowState::Failed => prop_assert_eq!(tries.last().map(|t| t.1), Some(Answer::Permanent)),
                _ => prop_assert!(tries.iter().all(|t| t.0 < r.expires_ms)),
            }
            prop_assert_eq!(tries.iter().filter(|t| t.1 == Answer::Ok).count(), usize::from(r.state == RowState::Delivered));
            for (n, w) in tries.windows(2).enumerate() {
                let gap = w[1].0 - w[0].0;
                let min = if w[0].1 == Answer::Crash { p.lease_ms } else { p.backoff_bounds(n as u32 + 1).0 };
                prop_assert!(gap >= min, "{}: attempt {} after {gap} ms < {min}", r.dedupe_key, n + 2);
            }
        }
        for times in delivered.values_mut() {
            times.sort();
            for w in times.windows(limit as usize + 1) {
                prop_assert!(w[limit as usize] - w[0] >= p.rate_window_ms, "rate limit broken: {w:?}");
            }
        }
    }
}

#[test]
fn the_outbox_wakes_at_the_next_attempt_or_expiry() {
    use crate::collector::alerts::wake::outbox_wake;
    let p = OutboxPolicy::default();
    let mut a = row("a", "x", 1_000, &p);
    a.next_attempt_ms = 5_000;
    let mut b = row("b", "y", 1_000, &p);
    b.next_attempt_ms = 3_000;
    let mut c = row("c", "z", 1_000, &p);
    c.state = RowState::Delivered;
    c.next_attempt_ms = 2_000;
    assert_eq!(outbox_wake(&[], 0), None);
    assert_eq!(
        outbox_wake(&[a.clone(), b.clone(), c.clone()], 1_000),
        Some(3_000)
    );
    assert_eq!(outbox_wake(&[a.clone(), b, c], 3_000), Some(5_000));
    // Its attempt past: its expiry.
    assert_eq!(outbox_wake(&[a.clone()], 6_000), Some(a.expires_ms));
}
