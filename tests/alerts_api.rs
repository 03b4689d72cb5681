//! `/api/v1/alerts`, acknowledgements through the API and through the
//! signed link, and `linkwatch alerts list|ack`, over real HTTP on loopback
//! (127.0.0.1) against a collector running its alert engine, on SQLite and
//! PostgreSQL. Every endpoint is attacked: no token, a device's token, a
//! read token where an admin one is needed, a token of another branch,
//! huge and odd parameters, forged, altered and expired links. Whatever is
//! refused changes nothing.

mod common;

use common::alerts::{Collector, now_ms};
use common::db::{TestDb, on_both};
use linkwatch::collector::access::{Level, Role};
use linkwatch::collector::alerts::AlertsConfig;
use linkwatch::collector::devices;
use linkwatch::collector::store::{Office, Store};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

on_both!(alerts_api_under_attack);

const ALERTS: &str = r#"[alerts]
interval = "1s"
grace = "1s"
upload_interval = "10s"
ack_key = "0123456789abcdef0123456789abcdef0123456789abcdef"
ack_url = "https://linkwatch.example.gov.bd/api/v1/alerts/ack"

[[alerts.rule]]
name = "unreachable"
kind = "unreachable"
schedule = "always"

[alerts.office_offline]
enabled = false
"#;

fn office(code: &str, division: &str, district: &str) -> Office {
    Office {
        code: code.into(),
        name: code.into(),
        division: division.into(),
        district: district.into(),
        upazila: "Sadar".into(),
        hours: None,
    }
}

struct Api {
    base: String,
    c: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut r = self.c.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
    async fn post(&self, path: &str, token: Option<&str>, body: &str) -> (StatusCode, String) {
        let mut r = self
            .c
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn acked(store: &dyn Store, id: i64) -> bool {
    store
        .alert_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .alert
        .acked
        .is_some()
}

async fn alerts_api_under_attack(db: Arc<TestDb>) {
    let store = db.open().await;
    store
        .upsert_offices(&[
            office("dhk-savar", "Dhaka", "Dhaka"),
            office("ctg-sadar", "Chattogram", "Chattogram"),
        ])
        .await
        .unwrap();
    let t = now_ms();
    let mut ids = Vec::new();
    for (name, code) in [("pc-dhaka", "dhk-savar"), ("pc-ctg", "ctg-sadar")] {
        let (d, _) = devices::add_device(store.as_ref(), name, Some(code), t - 7_200_000)
            .await
            .unwrap();
        store
            .ingest_upload(d.id, &[], Some(t - 3_600_000), t - 3_600_000)
            .await
            .unwrap();
        ids.push(d.id);
    }
    let (_, device_token) = devices::add_device(store.as_ref(), "pc-other", None, t)
        .await
        .unwrap();
    let token = |name: &str, role, branch| {
        let store = store.clone();
        let name = name.to_string();
        async move {
            devices::add_api_token(store.as_ref(), &name, role, branch, now_ms())
                .await
                .unwrap()
                .1
        }
    };
    let admin = token("admin", Role::Admin, None).await;
    let reader = token("reader", Role::Read, None).await;
    let dhaka_admin = token("dhaka-admin", Role::Admin, Some((Level::Division, "Dhaka"))).await;
    let dhaka_reader = token("dhaka-reader", Role::Read, Some((Level::Division, "Dhaka"))).await;

    let key = AlertsConfig::parse_toml(ALERTS, Path::new("t.toml"), &BTreeSet::new())
        .unwrap()
        .ack
        .unwrap()
        .key;
    let collector = Collector::start(&db, store.clone(), ALERTS).await;
    let cfg_path = collector.config.clone();
    let api = Api {
        base: collector.base.clone(),
        c: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    // The engine opens both alerts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.open_alerts().await.unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no alerts opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open = store.open_alerts().await.unwrap();
    let id_of = |device: &str| {
        open.iter()
            .find(|a| a.key.subject.device_name() == Some(device))
            .unwrap()
            .id
    };
    let (dhaka, ctg) = (id_of("pc-dhaka"), id_of("pc-ctg"));

    // No token, an unknown one, a device's: refused before anything is read.
    for (tok, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("lw1_not-a-token"), StatusCode::UNAUTHORIZED),
        (Some(device_token.as_str()), StatusCode::FORBIDDEN),
    ] {
        let (s, body) = api.get("/api/v1/alerts?limit=abc", tok).await;
        assert_eq!(s, want, "{body}");
        let (s, _) = api
            .post(&format!("/api/v1/alerts/{dhaka}/ack"), tok, "")
            .await;
        assert_eq!(s, want);
    }
    // Everything for a token of the whole hierarchy; one branch's only for
    // a limited one.
    let (s, body) = api.get("/api/v1/alerts", Some(&reader)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let list = json(&body);
    assert_eq!(list["alerts"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(list["alerts"][0]["kind"], "unreachable");
    let (_, body) = api
        .get("/api/v1/alerts?state=open", Some(&dhaka_reader))
        .await;
    let list = json(&body);
    let seen: Vec<&Value> = list["alerts"].as_array().unwrap().iter().collect();
    assert_eq!(seen.len(), 1, "{body}");
    assert_eq!(seen[0]["id"], dhaka);
    assert!(!body.contains("pc-ctg"), "{body}");
    // Paging: one at a time.
    let (_, body) = api.get("/api/v1/alerts?limit=1", Some(&admin)).await;
    let page = json(&body);
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1);
    let next = page["next_before"].as_i64().unwrap();
    let (_, body) = api
        .get(
            &format!("/api/v1/alerts?limit=1&before={next}"),
            Some(&admin),
        )
        .await;
    assert_eq!(json(&body)["alerts"].as_array().unwrap().len(), 1);
    // Odd and huge parameters: 400 naming the field.
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("limit=99999999999999999999999999", "limit"),
        ("before=-1", "before"),
        ("state=closed", "state"),
        ("since=yesterday", "since"),
        ("limit=1&limit=2", "limit"),
        ("divison=Dhaka", "query"),
    ] {
        let (s, body) = api.get(&format!("/api/v1/alerts?{q}"), Some(&admin)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(json(&body)["field"], field, "{q}: {body}");
    }
    let huge = "x".repeat(10_000);
    let (s, _) = api
        .get(&format!("/api/v1/alerts?state={huge}"), Some(&admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Acknowledgement through the API: admin tokens only, within their
    // branch; odd ids are no alert.
    let (s, _) = api
        .post(&format!("/api/v1/alerts/{dhaka}/ack"), Some(&reader), "")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .post(&format!("/api/v1/alerts/{ctg}/ack"), Some(&dhaka_admin), "")
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another branch's alert is not there"
    );
    for id in [
        "abc",
        "-1",
        "0",
        "99999999999999999999999",
        "1%2F..%2F2",
        &"9".repeat(5000),
    ] {
        let (s, _) = api
            .post(&format!("/api/v1/alerts/{id}/ack"), Some(&admin), "")
            .await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST,
            "{id:.30}: {s}"
        );
    }
    assert!(!acked(store.as_ref(), dhaka).await && !acked(store.as_ref(), ctg).await);
    let (s, body) = api
        .post(
            &format!("/api/v1/alerts/{dhaka}/ack"),
            Some(&dhaka_admin),
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["acknowledged"], true);
    assert!(acked(store.as_ref(), dhaka).await);
    let (_, body) = api
        .post(&format!("/api/v1/alerts/{dhaka}/ack"), Some(&admin), "")
        .await;
    assert_eq!(json(&body)["acknowledged"], false, "once only");

    // The signed link: forged, altered, expired, missing, repeated,
    // injected: refused, nothing changed.
    let good = key.sign(ctg, now_ms() + 3_600_000);
    let mut altered = good.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let other_alert = good.replacen(&format!("{ctg}."), &format!("{dhaka}."), 1);
    let forged = linkwatch::collector::alerts::ack::AckKey::new(vec![7u8; 48])
        .unwrap()
        .sign(ctg, now_ms() + 3_600_000);
    let expired = key.sign(ctg, now_ms() - 1_000);
    for (t, want) in [
        (altered.as_str(), StatusCode::FORBIDDEN),
        (other_alert.as_str(), StatusCode::FORBIDDEN),
        (forged.as_str(), StatusCode::FORBIDDEN),
        (expired.as_str(), StatusCode::FORBIDDEN),
        ("<script>alert(1)</script>", StatusCode::FORBIDDEN),
        ("", StatusCode::FORBIDDEN),
    ] {
        let q: String = url_encode(t);
        let (s, body) = api.get(&format!("/api/v1/alerts/ack?t={q}"), None).await;
        assert_eq!(s, want, "GET {t}: {body}");
        assert!(!body.contains("<script>"), "{body}");
        let (s, _) = api
            .post("/api/v1/alerts/ack", None, &format!("t={q}"))
            .await;
        assert_eq!(s, want, "POST {t}");
    }
    let (s, _) = api.get("/api/v1/alerts/ack", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api
        .post("/api/v1/alerts/ack", None, &format!("t={good}&t={good}"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(!acked(store.as_ref(), ctg).await, "nothing changed");
    // The genuine link: the page asks, the button acknowledges.
    let (s, body) = api.get(&format!("/api/v1/alerts/ack?t={good}"), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("<form method=\"post\""), "{body}");
    assert!(
        !acked(store.as_ref(), ctg).await,
        "showing the page acknowledges nothing"
    );
    let (s, body) = api
        .post("/api/v1/alerts/ack", None, &format!("t={good}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("acknowledged"), "{body}");
    let a = store.alert_by_id(ctg).await.unwrap().unwrap();
    assert_eq!(a.alert.acked.unwrap().by, "link");

    // The command line.
    let out = std::process::Command::new(BIN)
        .args(["alerts", "list", "--open", "--config"])
        .arg(&cfg_path)
        .env_remove("LINKWATCH_COLLECTOR_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("    ID  STATE"), "{text}");
    assert_eq!(text.matches(" acked ").count(), 2, "{text}");
    let out = std::process::Command::new(BIN)
        .args(["alerts", "ack", "999999", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no alert 999999"));
    collector.stop().await;
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}
