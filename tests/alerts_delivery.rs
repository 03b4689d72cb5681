//! Alerts evaluated and delivered by the collector, with real parts: SQLite
//! and PostgreSQL (`LINKWATCH_TEST_PG_URL`), the collector's HTTP API on
//! loopback, and a webhook receiver on loopback (127.0.0.1 only).
//!
//! - a device that stops uploading: its unreachable alert reaches the
//!   webhook once; it uploads again: the recovery follows; a device whose
//!   agent announced a clean stop raises nothing;
//! - a webhook answering 500: retried after the back-off, then delivered;
//!   the failures are counted;
//! - a collector killed while a message is being sent (in-process, and the
//!   real binary SIGKILLed): after a restart the message is sent again
//!   (same dedupe key) once its lease ran out, and then never again;
//! - a gateway's posted records (its broadband down, its metered mobile
//!   link carrying the traffic): the three link warnings reach the webhook,
//!   and recover with the next batch;
//! - an evaluation interval of a minute: the alert still leaves at the
//!   deadline plus the grace (the round wakes at the next due time).

mod common;

use common::alerts::{
    BinCollector, Collector, Mode, Smtp, events, got, now_ms, receiver, wait_for,
};
use common::db::{TestDb, on_both};
use linkwatch::collector::alerts::AlertsConfig;
use linkwatch::collector::alerts::outbox::RowState;
use linkwatch::collector::alerts::run::{self, AlertMetrics, Engine};
use linkwatch::collector::devices;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

on_both!(
    silent_device_is_told_once_and_its_recovery_follows,
    failing_webhook_is_retried_then_delivered,
    killed_mid_delivery_is_sent_again_after_restart,
    collector_sigkilled_mid_delivery_delivers_once_after_restart,
    gateway_link_warnings_from_posted_records_reach_the_webhook,
    a_long_interval_still_tells_at_the_deadline,
);

// ---------------------------------------------------------------------------
// Configuration

/// `[alerts]` with one rule (unreachable, round the clock, no escalation),
/// one contact for the whole hierarchy and one webhook channel.
fn alerts_toml(hook_url: &str) -> String {
    alerts_toml_with_mail(hook_url, None)
}

/// [`alerts_toml`], and with `smtp_port` a mail channel to that SMTP server
/// on loopback (no TLS: a relay on this machine) the contact also uses.
fn alerts_toml_with_mail(hook_url: &str, smtp_port: Option<u16>) -> String {
    let (channels, mail) = match smtp_port {
        Some(port) => (
            r#"["hook", "mail"]"#,
            format!(
                "\n[alerts.channel.mail]\ntype = \"email\"\nserver = \"127.0.0.1\"\nport = {port}\n\
                 tls = \"none\"\nfrom = \"linkwatch <alerts@example.gov.bd>\"\ntimeout = \"5s\"\n"
            ),
        ),
        None => (r#"["hook"]"#, String::new()),
    };
    let text = format!(
        r#"[alerts]
interval = "1s"
grace = "1s"
upload_interval = "10s"
ack_key = "0123456789abcdef0123456789abcdef0123456789abcdef"
ack_url = "https://linkwatch.example.gov.bd/ack"

[alerts.delivery]
first_retry = "2s"
max_retry = "4s"
jitter = 0.0

[[alerts.rule]]
name = "unreachable"
kind = "unreachable"
schedule = "always"
escalate_after = "never"

[[alerts.contact]]
name = "ops"
branch = "ministry"
language = "en"
email = "ops@example.gov.bd"
channels = {channels}

[alerts.channel.hook]
type = "webhook"
format = "json"
url = "{hook_url}"
timeout = "2s"
"#
    );
    text + &mail
}

fn alerts_config(hook_url: &str) -> AlertsConfig {
    AlertsConfig::parse_toml(
        &alerts_toml(hook_url),
        Path::new("test.toml"),
        &BTreeSet::new(),
    )
    .unwrap()
}

fn engine(hook_url: &str) -> Engine {
    let mut registry = prometheus_client::registry::Registry::default();
    Engine::new(
        alerts_config(hook_url),
        AlertMetrics::register(&mut registry),
    )
    .unwrap()
}

/// A batch of `device`: heartbeats `seqs` placed now (or a clean stop last
/// when `stop`), announcing the next upload within `within_s`.
fn batch(device: &str, seqs: std::ops::RangeInclusive<u64>, within_s: u32, stop: bool) -> String {
    let t = now_ms();
    let last = *seqs.end();
    let records: Vec<String> = seqs
        .map(|s| {
            let body = if stop && s == last {
                r#"{"type":"lifecycle","event":"stop","detail":"clean stop"}"#
            } else {
                r#"{"type":"heartbeat","online":true}"#
            };
            format!(
                r#"{{"seq":{s},"at":{},"mono_ms":{},"boot_id":"b0f1","body":{body}}}"#,
                t - (last - s) as i64 * 1000,
                s * 1000
            )
        })
        .collect();
    format!(
        r#"{{"v":1,"device":"{device}","records":[{}],"next_upload_within_s":{within_s}}}"#,
        records.join(",")
    )
}

async fn upload(base: &str, token: &str, body: String) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

// ---------------------------------------------------------------------------
// Scenarios

async fn silent_device_is_told_once_and_its_recovery_follows(db: Arc<TestDb>) {
    let (hook_url, h) = receiver(Mode::Accept).await;
    let store = db.open().await;
    let (_, token) = devices::add_device(store.as_ref(), "laptop-7", None, now_ms())
        .await
        .unwrap();
    let (_, stopped_token) = devices::add_device(store.as_ref(), "laptop-8", None, now_ms())
        .await
        .unwrap();
    // A real SMTP server on loopback too, when aiosmtpd is at hand.
    let smtp = Smtp::try_start("the webhook alone");
    let toml = alerts_toml_with_mail(&hook_url, smtp.as_ref().map(|s| s.port));
    let c = Collector::start(&db, store.clone(), &toml).await;
    let base = c.base.clone();
    // Both announce their next upload within 1 s; one of them stops cleanly.
    // Silent (1 s deadline, 1 s grace) from 2 s after the upload at the
    // earliest.
    let earliest = now_ms() + 2_000;
    upload(&base, &token, batch("laptop-7", 1..=3, 1, false)).await;
    upload(&base, &stopped_token, batch("laptop-8", 1..=2, 1, true)).await;
    wait_for("the unreachable alert at the webhook", 30, || {
        !events(&got(&h), "opened", "laptop-7").is_empty()
    })
    .await;
    let told = now_ms();
    let all = got(&h);
    let opened = events(&all, "opened", "laptop-7");
    assert_eq!(opened[0]["kind"], "unreachable", "{:#}", opened[0]);
    assert!(
        opened[0]["text"].as_str().unwrap().contains("laptop-7"),
        "{:#}",
        opened[0]
    );
    assert!(
        opened[0]["ack_url"]
            .as_str()
            .unwrap()
            .starts_with("https://linkwatch.example.gov.bd/ack?t="),
        "{:#}",
        opened[0]
    );
    // Told after the deadline plus the grace, not before (how soon after
    // is measured in `cargo bench --bench alerts`, part `latency`).
    assert!(told >= earliest, "told {} ms too early", earliest - told);
    // A few more ticks: nothing told twice, nothing for the stopped device.
    let ticks = now_ms() + 3_000;
    wait_for("three more ticks", 10, || now_ms() > ticks).await;
    let all = got(&h);
    assert_eq!(events(&all, "opened", "laptop-7").len(), 1, "{all:#?}");
    assert!(
        all.iter()
            .all(|v| v["alert"]["key"]["subject"]["device"] != "laptop-8"),
        "a clean stop is never an alert: {all:#?}"
    );
    // It uploads again: the recovery follows, to the same contact.
    upload(&base, &token, batch("laptop-7", 4..=6, 300, false)).await;
    wait_for("the recovery at the webhook", 30, || {
        !events(&got(&h), "recovered", "laptop-7").is_empty()
    })
    .await;
    let all = got(&h);
    let rec = events(&all, "recovered", "laptop-7");
    assert_eq!(rec.len(), 1);
    assert_ne!(rec[0]["dedupe_key"], opened[0]["dedupe_key"]);
    // The late data says what happened: it ran, online, all along.
    assert!(
        rec[0]["alert"]["annotation"].is_object(),
        "recovery without annotation: {:#}",
        rec[0]
    );
    // The same two notices by mail, one message each.
    if let Some(smtp) = &smtp {
        let mut mails = Vec::new();
        while mails.len() < 2 {
            let m = smtp
                .next(Duration::from_secs(20))
                .expect("two mails within 20 s");
            mails.push(m);
        }
        assert!(
            smtp.next(Duration::from_millis(500)).is_none(),
            "no third mail"
        );
        let text = format!("{mails:?}");
        assert!(
            text.contains("ops@example.gov.bd") && text.contains("laptop-7"),
            "{text}"
        );
    }
    // The metrics say so (once the round that sent them has settled them).
    let want = [
        "linkwatch_collector_alerts_opened_total{label=\"unreachable\"} 1".to_string(),
        "linkwatch_collector_alert_notices_total{label=\"recovered\"} 1".to_string(),
        "linkwatch_collector_alert_messages_delivered_total{label=\"hook\"} 2".to_string(),
        format!(
            "linkwatch_collector_alert_delivery_seconds_count {}",
            if smtp.is_some() { 4 } else { 2 }
        ),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if want.iter().all(|l| text.contains(l.as_str())) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing some of {want:?} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stored: closed, with both messages delivered.
    let list = store
        .list_alerts(&linkwatch::collector::store::AlertQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].resolved_ms.is_some());
    let rows = store.outbox_of(list[0].alert.id).await.unwrap();
    assert_eq!(rows.len(), if smtp.is_some() { 4 } else { 2 });
    assert!(
        rows.iter().all(|r| r.state == RowState::Delivered),
        "{rows:#?}"
    );
    c.stop().await;
}

/// Opens one unreachable alert for a device silent since an hour, at `now`.
async fn one_alert(store: &dyn linkwatch::collector::store::Store, e: &Engine, now: i64) -> i64 {
    let (d, _) = devices::add_device(store, "gw-1", None, now - 7_200_000)
        .await
        .unwrap();
    store
        .ingest_upload(d.id, &[], Some(now - 3_600_000), now - 3_600_000)
        .await
        .unwrap();
    let s = run::tick(store, e, now).await.unwrap();
    assert_eq!((s.opened, s.notices), (1, 1));
    store.open_alerts().await.unwrap()[0].id
}

async fn failing_webhook_is_retried_then_delivered(db: Arc<TestDb>) {
    let (url, h) = receiver(Mode::Fail(2)).await;
    let store = db.open().await;
    let e = engine(&url);
    let t = now_ms();
    let id = one_alert(store.as_ref(), &e, t).await;
    let s = run::deliver(store.as_ref(), &e, t).await.unwrap();
    assert_eq!((s.sent, s.delivered, s.failed), (1, 0, 1));
    let row = store.outbox_of(id).await.unwrap().remove(0);
    assert_eq!(row.state, RowState::Pending);
    assert!(
        row.last_error.as_deref().unwrap().contains("500"),
        "{row:?}"
    );
    // Not before the back-off (2 s, no jitter).
    let s = run::deliver(store.as_ref(), &e, t + 1_000).await.unwrap();
    assert_eq!(s.sent, 0);
    let s = run::deliver(store.as_ref(), &e, t + 2_500).await.unwrap();
    assert_eq!((s.sent, s.failed), (1, 1));
    // The second wait doubles (4 s).
    let s = run::deliver(store.as_ref(), &e, t + 5_000).await.unwrap();
    assert_eq!(s.sent, 0);
    let s = run::deliver(store.as_ref(), &e, t + 7_000).await.unwrap();
    assert_eq!((s.sent, s.delivered), (1, 1));
    let row = store.outbox_of(id).await.unwrap().remove(0);
    assert_eq!((row.state, row.attempts), (RowState::Delivered, 3));
    let s = run::deliver(store.as_ref(), &e, t + 60_000).await.unwrap();
    assert_eq!(s.sent, 0, "delivered rows are not sent again");
    let all = got(&h);
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|v| v["dedupe_key"] == all[0]["dedupe_key"]));
}

async fn killed_mid_delivery_is_sent_again_after_restart(db: Arc<TestDb>) {
    let (url, h) = receiver(Mode::Hang).await;
    let t = now_ms();
    let id = {
        let store = db.open().await;
        let e = engine(&url);
        let id = one_alert(store.as_ref(), &e, t).await;
        // The collector dies while the receiver holds the request.
        let send = tokio::spawn({
            let store = store.clone();
            async move { run::deliver(store.as_ref(), &e, t).await }
        });
        wait_for("the first attempt at the receiver", 10, || {
            got(&h).len() == 1
        })
        .await;
        send.abort();
        let _ = send.await;
        id
    };
    h.lock().unwrap().mode = Some(Mode::Accept);
    // A new collector on the same database: the claimed row waits for its
    // lease (at least 60 s), then goes out again, once.
    let store = db.open().await;
    let e = engine(&url);
    let lease = e.cfg.outbox.lease_ms;
    assert!(lease >= 60_000);
    let s = run::deliver(store.as_ref(), &e, t + 1_000).await.unwrap();
    assert_eq!(s.sent, 0, "still leased to the dead collector");
    let s = run::deliver(store.as_ref(), &e, t + lease + 1)
        .await
        .unwrap();
    assert_eq!((s.sent, s.delivered), (1, 1));
    let s = run::deliver(store.as_ref(), &e, t + lease + 60_000)
        .await
        .unwrap();
    assert_eq!(s.sent, 0);
    let all = got(&h);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0]["dedupe_key"], all[1]["dedupe_key"]);
    let row = store.outbox_of(id).await.unwrap().remove(0);
    assert_eq!((row.state, row.attempts), (RowState::Delivered, 2));
}

/// The real collector binary, SIGKILLed while its webhook receiver holds
/// the alert's first request unanswered, then started again on the same
/// database: the alert goes out again once the dead collector's lease on
/// the row has run out (`lease_ms`: twice the longest channel timeout, at
/// least 60 s), is stored as delivered, and no copy follows. At least
/// once: the receiver sees the same dedupe key on every copy and one
/// distinct alert.
async fn collector_sigkilled_mid_delivery_delivers_once_after_restart(db: Arc<TestDb>) {
    let (url, h) = receiver(Mode::Hang).await;
    let store = db.open().await;
    let t = now_ms();
    let (d, _) = devices::add_device(store.as_ref(), "gw-1", None, t - 7_200_000)
        .await
        .unwrap();
    // Silent for an hour: unreachable at the first round.
    store
        .ingest_upload(d.id, &[], Some(t - 3_600_000), t - 3_600_000)
        .await
        .unwrap();
    // A webhook timeout long enough to kill the collector mid-request.
    let alerts = alerts_toml(&url).replace("timeout = \"2s\"", "timeout = \"10s\"");
    let lease = AlertsConfig::parse_toml(&alerts, Path::new("t.toml"), &BTreeSet::new())
        .unwrap()
        .outbox
        .lease_ms;
    let config = db.dir().join("collector-bin.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = {:?}\nlog_format = \"text\"\n\n{alerts}",
            db.url()
        ),
    )
    .unwrap();
    let first = BinCollector::start(&config).await;
    wait_for("the first request at the receiver", 30, || {
        got(&h).len() == 1
    })
    .await;
    let killed_at = now_ms();
    // In flight: the receiver holds it, the row is claimed, not delivered.
    let alert = store.open_alerts().await.unwrap()[0].id;
    let rows = store.outbox_of(alert).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!((rows[0].state, rows[0].attempts), (RowState::Pending, 1));
    first.kill().await;
    h.lock().unwrap().mode = Some(Mode::Accept);

    let second = BinCollector::start(&config).await;
    let row_delivered = || {
        let store = store.clone();
        async move { store.outbox_of(alert).await.unwrap()[0].state == RowState::Delivered }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(lease as u64 + 30_000);
    while !row_delivered().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered within the lease ({lease} ms) and 30 s: {:#?}\n{}",
            store.outbox_of(alert).await.unwrap(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered_after = now_ms() - killed_at;
    // A few more rounds (interval 1 s): no further copy.
    let later = now_ms() + 3_000;
    wait_for("three more rounds", 10, || now_ms() > later).await;
    let all = got(&h);
    let keys: BTreeSet<&str> = all
        .iter()
        .map(|v| v["dedupe_key"].as_str().unwrap())
        .collect();
    // An alert told: its event and its key (subject and rule).
    let alerts_seen: BTreeSet<String> = all
        .iter()
        .map(|v| format!("{} {}", v["event"], v["alert"]["key"]))
        .collect();
    eprintln!(
        "killed mid-delivery: {} POSTs seen, delivered {delivered_after} ms after the kill (lease {lease} ms)",
        all.len()
    );
    assert_eq!(keys.len(), 1, "one dedupe key on every copy: {all:#?}");
    assert_eq!(alerts_seen.len(), 1, "one distinct alert: {alerts_seen:?}");
    assert!(
        alerts_seen.iter().all(|a| a.contains("gw-1")),
        "{alerts_seen:?}"
    );
    assert_eq!(all.len(), 2, "the held request and one more: {all:#?}");
    let row = store.outbox_of(alert).await.unwrap().remove(0);
    assert_eq!((row.state, row.attempts), (RowState::Delivered, 2));
    second.kill().await;
}

/// `[alerts]` watching the gateway `gw-7`'s links: failover at once, a
/// link down for 5 minutes, a metered link carrying the traffic for 5
/// minutes, told to one webhook.
fn gateway_toml(hook_url: &str) -> String {
    format!(
        r#"[alerts]
interval = "1s"
grace = "1s"
upload_interval = "10s"
gateways = ["gw-7"]

[alerts.office_offline]
enabled = false

[[alerts.rule]]
name = "backup-link"
kind = "failover"
devices = "gateways"
schedule = "always"

[[alerts.rule]]
name = "link-down"
kind = "link_down"
devices = "gateways"
schedule = "always"
after = "5m"

[[alerts.rule]]
name = "mobile-data"
kind = "metered_traffic"
devices = "gateways"
schedule = "always"
after = "5m"

[[alerts.contact]]
name = "ops"
branch = "ministry"
language = "en"
channels = ["hook"]

[alerts.channel.hook]
type = "webhook"
format = "json"
url = "{hook_url}"
timeout = "2s"
"#
    )
}

/// A batch of `device` from `seq` on: `(minutes ago, body)` placed then.
fn records_batch(device: &str, seq: u64, recs: &[(i64, &str)]) -> String {
    let t = now_ms();
    let records: Vec<String> = recs
        .iter()
        .enumerate()
        .map(|(i, (ago_min, body))| {
            let at = t - ago_min * 60_000 - 1_000 + i as i64;
            format!(
                r#"{{"seq":{},"at":{at},"mono_ms":{},"boot_id":"b0f1","body":{body}}}"#,
                seq + i as u64,
                at - (t - 3_600_000)
            )
        })
        .collect();
    format!(
        r#"{{"v":1,"device":"{device}","records":[{}],"next_upload_within_s":300}}"#,
        records.join(",")
    )
}

/// A gateway uploads the records of its broadband failing 10 minutes ago
/// and its metered mobile link carrying the traffic since: the three link
/// warnings reach the webhook. The same records from a device that is not
/// a gateway warn of nothing. The broadband back (a second batch): the
/// three recoveries follow.
async fn gateway_link_warnings_from_posted_records_reach_the_webhook(db: Arc<TestDb>) {
    let (hook_url, h) = receiver(Mode::Accept).await;
    let store = db.open().await;
    let (_, gw) = devices::add_device(store.as_ref(), "gw-7", None, now_ms())
        .await
        .unwrap();
    let (_, laptop) = devices::add_device(store.as_ref(), "laptop-7", None, now_ms())
        .await
        .unwrap();
    let c = Collector::start(&db, store.clone(), &gateway_toml(&hook_url)).await;
    let history: [(i64, &str); 8] = [
        (30, r#"{"type":"lifecycle","event":"start"}"#),
        (
            30,
            r#"{"type":"facts","hostname":"gw-7","os":"Debian 12","agent_version":"0.1.0","links":[{"name":"bb0","kind":"broadband","metered":false,"priority":1},{"name":"mb0","kind":"mobile","metered":true,"priority":3}]}"#,
        ),
        (
            30,
            r#"{"type":"link_state","link":"bb0","kind":"broadband","from":"absent","to":"up"}"#,
        ),
        (
            30,
            r#"{"type":"link_state","link":"mb0","kind":"mobile","from":"absent","to":"up"}"#,
        ),
        (
            30,
            r#"{"type":"failover","from":null,"to":"bb0","cause":"initial","reason":"first link up"}"#,
        ),
        (
            10,
            r#"{"type":"link_state","link":"bb0","kind":"broadband","from":"up","to":"down","reason":"probes failing"}"#,
        ),
        (
            10,
            r#"{"type":"failover","from":"bb0","to":"mb0","cause":"failover","reason":"bb0 down"}"#,
        ),
        (1, r#"{"type":"heartbeat","online":true}"#),
    ];
    upload(&c.base, &gw, records_batch("gw-7", 1, &history)).await;
    upload(
        &c.base,
        &laptop,
        records_batch("laptop-7", 1, &history).replace("gw-7", "laptop-7"),
    )
    .await;
    let opened = |h: &common::alerts::Hook| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = got(h)
            .iter()
            .filter(|v| v["event"] == "opened")
            .map(|v| {
                let s = &v["alert"]["key"]["subject"];
                (
                    v["kind"].as_str().unwrap().to_string(),
                    format!(
                        "{}/{}",
                        s["device"].as_str().unwrap(),
                        s["link"].as_str().unwrap_or("-")
                    ),
                )
            })
            .collect();
        v.sort();
        v
    };
    wait_for("three link warnings at the webhook", 30, || {
        opened(&h).len() >= 3
    })
    .await;
    // A few more rounds: nothing else (nothing for the laptop).
    let later = now_ms() + 3_000;
    wait_for("three more rounds", 10, || now_ms() > later).await;
    assert_eq!(
        opened(&h),
        [
            ("failover".to_string(), "gw-7/-".to_string()),
            ("link_down".to_string(), "gw-7/bb0".to_string()),
            ("metered_traffic".to_string(), "gw-7/mb0".to_string()),
        ],
        "{:#?}",
        got(&h)
    );
    let all = got(&h);
    let down = all.iter().find(|v| v["kind"] == "link_down").unwrap();
    assert!(down["text"].as_str().unwrap().contains("bb0"), "{down:#}");
    // The broadband back: every warning recovers.
    upload(
        &c.base,
        &gw,
        records_batch(
            "gw-7",
            9,
            &[
                (
                    0,
                    r#"{"type":"link_state","link":"bb0","kind":"broadband","from":"down","to":"up"}"#,
                ),
                (
                    0,
                    r#"{"type":"failover","from":"mb0","to":"bb0","cause":"failback","reason":"bb0 up"}"#,
                ),
            ],
        ),
    )
    .await;
    wait_for("three recoveries", 30, || {
        got(&h).iter().filter(|v| v["event"] == "recovered").count() >= 3
    })
    .await;
    assert_eq!(got(&h).len(), 6, "{:#?}", got(&h));
    assert!(store.open_alerts().await.unwrap().is_empty());
    c.stop().await;
}

/// With an evaluation interval of a minute, a device whose deadline plus
/// grace falls 4 s after the collector's first round is told then, not a
/// minute later: the round wakes at the next due time.
async fn a_long_interval_still_tells_at_the_deadline(db: Arc<TestDb>) {
    let (hook_url, h) = receiver(Mode::Accept).await;
    let store = db.open().await;
    let t = now_ms();
    let (d, _) = devices::add_device(store.as_ref(), "laptop-9", None, t - 60_000)
        .await
        .unwrap();
    // Uploaded now, the next due within 3 s; silent 1 s (grace) after.
    store
        .ingest_upload(d.id, &[], Some(t + 3_000), t)
        .await
        .unwrap();
    let toml = alerts_toml(&hook_url).replace("interval = \"1s\"", "interval = \"60s\"");
    assert!(toml.contains("interval = \"60s\""));
    let c = Collector::start(&db, store.clone(), &toml).await;
    wait_for("the alert at the webhook", 30, || {
        !events(&got(&h), "opened", "laptop-9").is_empty()
    })
    .await;
    let told = now_ms() - t;
    eprintln!("interval 60 s: told {told} ms after the upload (deadline 3 s + grace 1 s)");
    assert!(
        told >= 4_000,
        "told {told} ms after the upload: before the grace ran out"
    );
    assert!(
        told < 15_000,
        "told {told} ms after the upload: not woken at the deadline"
    );
    c.stop().await;
}

/// Two collectors on one PostgreSQL: one evaluates and delivers at a time,
/// so each alert is sent once; when that one stops, the other takes over
/// and tells the recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_collectors_on_one_postgres_send_each_alert_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    db.run(two_replicas).await;
}

async fn two_replicas(db: Arc<TestDb>) {
    let (hook_url, h) = receiver(Mode::Accept).await;
    let store_a = db.open().await;
    let store_b = db.open().await;
    let mut tokens = Vec::new();
    for i in 0..4 {
        let (_, t) = devices::add_device(store_a.as_ref(), &format!("pc-{i}"), None, now_ms())
            .await
            .unwrap();
        tokens.push(t);
    }
    let a = Collector::start(&db, store_a, &alerts_toml(&hook_url)).await;
    let b = Collector::start(&db, store_b, &alerts_toml(&hook_url)).await;
    for (i, t) in tokens.iter().enumerate() {
        // Uploads through either replica.
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        upload(base, t, batch(&format!("pc-{i}"), 1..=2, 1, false)).await;
    }
    wait_for("four unreachable alerts", 30, || {
        got(&h).iter().filter(|v| v["event"] == "opened").count() >= 4
    })
    .await;
    // Several more ticks of both replicas.
    let later = now_ms() + 4_000;
    wait_for("four more ticks", 10, || now_ms() > later).await;
    let all = got(&h);
    let mut keys: Vec<&str> = all
        .iter()
        .map(|v| v["dedupe_key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    assert_eq!((n, keys.len()), (4, 4), "each alert sent once: {all:#?}");
    // One replica stops; the other tells the recoveries.
    a.stop().await;
    for (i, t) in tokens.iter().enumerate() {
        upload(&b.base, t, batch(&format!("pc-{i}"), 3..=4, 300, false)).await;
    }
    wait_for("four recoveries", 30, || {
        got(&h).iter().filter(|v| v["event"] == "recovered").count() >= 4
    })
    .await;
    let later = now_ms() + 3_000;
    wait_for("three more ticks", 10, || now_ms() > later).await;
    assert_eq!(got(&h).len(), 8, "{:#?}", got(&h));
    b.stop().await;
}
