//! Escalation end to end: the collector's own rounds (`alerts::run::tick`
//! and `deliver`) on SQLite and PostgreSQL, delivering over real HTTP to
//! two webhook receivers on loopback (the office's contact, the district's)
//! and, when aiosmtpd is at hand, by mail to a real SMTP server on
//! loopback. The rounds are given the time (`now`), so that the 30 minutes
//! of `escalate_after` pass at once:
//! - an alert not acknowledged is told to the office, then, 30 minutes
//!   later and not before, to the district (and only to it);
//! - an acknowledged one never escalates;
//! - with no level left above, nothing more is sent; the recovery goes to
//!   every level told.

mod common;

use common::alerts::{Mode, Smtp, now_ms, receiver, seen};
use common::db::{TestDb, on_both};
use linkwatch::collector::alerts::AlertsConfig;
use linkwatch::collector::alerts::run::{AlertMetrics, Engine, deliver, tick};
use linkwatch::collector::devices;
use linkwatch::collector::store::{Office, Store};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

on_both!(an_unacknowledged_alert_escalates_one_level_after_its_time);

const MIN: i64 = 60_000;

fn config(office_hook: &str, district_hook: &str, smtp: Option<u16>) -> AlertsConfig {
    let (dc_channels, mail) = match smtp {
        Some(port) => (
            r#"["district-hook", "mail"]"#,
            format!(
                "\n[alerts.channel.mail]\ntype = \"email\"\nserver = \"127.0.0.1\"\nport = {port}\n\
                 tls = \"none\"\nfrom = \"linkwatch <alerts@example.gov.bd>\"\ntimeout = \"5s\"\n"
            ),
        ),
        None => (r#"["district-hook"]"#, String::new()),
    };
    let text = format!(
        r#"[alerts]
grace = "1s"
upload_interval = "10s"

[[alerts.rule]]
name = "unreachable"
kind = "unreachable"
schedule = "always"
escalate_after = "30m"

[alerts.office_offline]
enabled = false

[[alerts.contact]]
name = "uno"
branch = "office:dhk-savar"
language = "en"
channels = ["office-hook"]

[[alerts.contact]]
name = "dc"
branch = "district:Dhaka / Dhaka"
language = "en"
email = "dc@example.gov.bd"
channels = {dc_channels}

[alerts.channel.office-hook]
type = "webhook"
format = "json"
url = "{office_hook}"
timeout = "2s"

[alerts.channel.district-hook]
type = "webhook"
format = "json"
url = "{district_hook}"
timeout = "2s"
{mail}"#
    );
    AlertsConfig::parse_toml(&text, Path::new("test.toml"), &BTreeSet::new()).unwrap()
}

/// One round of the collector at `now`: evaluate, then deliver.
async fn round(store: &dyn Store, e: &Engine, now: i64) {
    tick(store, e, now).await.unwrap();
    let s = deliver(store, e, now).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?}");
}

async fn an_unacknowledged_alert_escalates_one_level_after_its_time(db: Arc<TestDb>) {
    let (office_url, office) = receiver(Mode::Accept).await;
    let (district_url, district) = receiver(Mode::Accept).await;
    let smtp = Smtp::try_start("webhooks only");
    let mut reg = prometheus_client::registry::Registry::default();
    let e = Engine::new(
        config(&office_url, &district_url, smtp.as_ref().map(|s| s.port)),
        AlertMetrics::register(&mut reg),
    )
    .unwrap();
    let store = db.open().await;
    store
        .upsert_offices(&[Office {
            code: "dhk-savar".into(),
            name: "Savar UNO office".into(),
            division: "Dhaka".into(),
            district: "Dhaka".into(),
            upazila: "Savar".into(),
            hours: None,
        }])
        .await
        .unwrap();
    let t0 = now_ms();
    let mut ids = Vec::new();
    for name in ["pc-1", "pc-2"] {
        let (d, _) = devices::add_device(store.as_ref(), name, Some("dhk-savar"), t0 - 10 * MIN)
            .await
            .unwrap();
        // Due 10 s ago: silent now.
        store
            .ingest_upload(d.id, &[], Some(t0 - 10_000), t0 - 20_000)
            .await
            .unwrap();
        ids.push(d.id);
    }

    // Told to the office's contact at once; the district hears nothing.
    round(store.as_ref(), &e, t0).await;
    let mut told = seen(&office);
    told.sort();
    assert_eq!(
        told,
        [
            ("opened".into(), "pc-1".into()),
            ("opened".into(), "pc-2".into())
        ],
        "{told:?}"
    );
    assert!(seen(&district).is_empty(), "{:?}", seen(&district));
    // The office acknowledges pc-2's alert.
    let open = store.open_alerts().await.unwrap();
    let pc2 = open
        .iter()
        .find(|a| a.key.subject.device_name() == Some("pc-2"))
        .unwrap();
    assert!(store.ack_alert(pc2.id, "uno", t0 + MIN).await.unwrap());

    // 29 minutes on: nothing new anywhere.
    for m in [5, 15, 29] {
        round(store.as_ref(), &e, t0 + m * MIN).await;
    }
    assert_eq!(seen(&office).len(), 2);
    assert!(seen(&district).is_empty(), "{:?}", seen(&district));

    // 30 minutes: pc-1's alert, not acknowledged, goes one level up, to
    // the district only; pc-2's, acknowledged, stays where it is.
    round(store.as_ref(), &e, t0 + 30 * MIN + 1_000).await;
    assert_eq!(
        seen(&district),
        [("escalated".to_string(), "pc-1".to_string())]
    );
    let esc = common::alerts::got(&district)[0].clone();
    assert!(esc["text"].as_str().unwrap().contains("pc-1"), "{esc:#}");
    assert_eq!(seen(&office).len(), 2, "the office is not told again");
    if let Some(smtp) = &smtp {
        let mail: Value = serde_json::from_str(
            &smtp
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("the escalation by mail"),
        )
        .unwrap();
        assert_eq!(
            mail["rcpt_tos"],
            serde_json::json!(["dc@example.gov.bd"]),
            "{mail:#}"
        );
        let text = format!("{} {}", mail["subject"], mail["body"]);
        assert!(text.contains("pc-1"), "{mail:#}");
    }

    // No level with a contact above the district: nothing more, however long.
    for m in [45, 61, 120] {
        round(store.as_ref(), &e, t0 + m * MIN).await;
    }
    assert_eq!(seen(&district).len(), 1, "{:?}", seen(&district));
    assert_eq!(seen(&office).len(), 2);

    // pc-1 uploads again: its recovery goes to both levels told.
    let back = t0 + 121 * MIN;
    store
        .ingest_upload(ids[0], &[], Some(back + 5 * MIN), back)
        .await
        .unwrap();
    round(store.as_ref(), &e, back + 1_000).await;
    assert_eq!(
        seen(&office).last().unwrap(),
        &("recovered".to_string(), "pc-1".to_string())
    );
    assert_eq!(
        seen(&district).last().unwrap(),
        &("recovered".to_string(), "pc-1".to_string())
    );
    if let Some(smtp) = &smtp {
        let mail = smtp
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the recovery by mail");
        assert!(mail.contains("pc-1"), "{mail}");
    }
}
