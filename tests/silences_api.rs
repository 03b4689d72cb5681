//! Silences and maintenance windows over real HTTP on loopback (127.0.0.1)
//! against a collector running its alert engine, on SQLite and PostgreSQL,
//! and through `linkwatch alerts silence`:
//! - a silenced device raises no alert, and nothing about it reaches the
//!   webhook (a receiver on loopback), while its silent neighbour's alert
//!   does; the silence removed, its alert opens at the next round and
//!   reaches the webhook;
//! - the API attacked as an attacker would: no token, a device's token, a
//!   read token, a token of another branch (its devices, offices, a wider
//!   branch, the silences of others), oversized, mistyped and odd bodies,
//!   odd ids. Each refusal is a clear 4xx, and changes nothing stored.

mod common;

use common::alerts::{Collector, Mode, events, got, now_ms, receiver, seen, wait_for};
use common::db::{TestDb, on_both};
use linkwatch::collector::access::{Level, Role};
use linkwatch::collector::alerts::model::{Silence, Target};
use linkwatch::collector::devices;
use linkwatch::collector::store::{Office, Store};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

on_both!(silences_hold_alerts_and_refuse_attacks);

const ALERTS: &str = r#"[alerts]
interval = "1s"
grace = "1s"
upload_interval = "10s"

[[alerts.rule]]
name = "unreachable"
kind = "unreachable"
schedule = "always"

[alerts.office_offline]
enabled = false

[[alerts.contact]]
name = "ops"
branch = "ministry"
language = "en"
channels = ["hook"]
"#;

/// [`ALERTS`] with the contact's webhook channel posting to `hook_url`.
fn alerts_toml(hook_url: &str) -> String {
    format!(
        "{ALERTS}\n[alerts.channel.hook]\ntype = \"webhook\"\nformat = \"json\"\nurl = \"{hook_url}\"\ntimeout = \"2s\"\n"
    )
}

fn office(code: &str, division: &str) -> Office {
    Office {
        code: code.into(),
        name: code.into(),
        division: division.into(),
        district: division.into(),
        upazila: "Sadar".into(),
        hours: None,
    }
}

struct Api {
    base: String,
    c: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (StatusCode, String) {
        let mut r = self.c.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some((ct, b)) = body {
            r = r.header("content-type", ct).body(b);
        }
        let r = r.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
    async fn post(&self, token: Option<&str>, json: &str) -> (StatusCode, String) {
        self.call(
            Method::POST,
            "/api/v1/silences",
            token,
            Some(("application/json", json.to_string())),
        )
        .await
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn stored(store: &dyn Store) -> Vec<i64> {
    store
        .silences(0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.silence.id)
        .collect()
}

/// Wait (at most 30 s) until `device` has an open alert.
async fn wait_alert(store: &dyn Store, device: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !alert_of(store, device).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {device}'s alert"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn alert_of(store: &dyn Store, device: &str) -> bool {
    store
        .open_alerts()
        .await
        .unwrap()
        .iter()
        .any(|a| a.key.subject.device_name() == Some(device))
}

async fn silences_hold_alerts_and_refuse_attacks(db: Arc<TestDb>) {
    let store = db.open().await;
    store
        .upsert_offices(&[
            office("dhk-savar", "Dhaka"),
            office("ctg-sadar", "Chattogram"),
        ])
        .await
        .unwrap();
    let t = now_ms();
    for (name, code) in [("pc-dhaka", "dhk-savar"), ("pc-ctg", "ctg-sadar")] {
        let (d, _) = devices::add_device(store.as_ref(), name, Some(code), t - 7_200_000)
            .await
            .unwrap();
        store
            .ingest_upload(d.id, &[], Some(t - 3_600_000), t - 3_600_000)
            .await
            .unwrap();
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
    let ctg_admin = token(
        "ctg-admin",
        Role::Admin,
        Some((Level::Division, "Chattogram")),
    )
    .await;

    // pc-dhaka is silenced for an hour before the collector starts.
    let first = store
        .add_silence(
            &Silence {
                id: 0,
                target: Target::Device("pc-dhaka".into()),
                start_ms: t - 1000,
                end_ms: t + 3_600_000,
                reason: "moving offices".into(),
            },
            "test",
            t,
        )
        .await
        .unwrap();

    let (hook_url, hook) = receiver(Mode::Accept).await;
    let collector = Collector::start(&db, store.clone(), &alerts_toml(&hook_url)).await;
    let cfg_path = collector.config.clone();
    let api = Api {
        base: collector.base.clone(),
        c: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    // Both devices are evaluated in the same round: pc-ctg's alert opens,
    // the silenced pc-dhaka's does not.
    wait_alert(store.as_ref(), "pc-ctg").await;
    assert!(!alert_of(store.as_ref(), "pc-dhaka").await, "silenced");
    // pc-ctg's alert reaches the webhook; nothing about pc-dhaka does.
    wait_for("pc-ctg's alert at the webhook", 30, || {
        !events(&got(&hook), "opened", "pc-ctg").is_empty()
    })
    .await;
    let told_after = now_ms() + 2_000;

    // No token, an unknown one, a device's: refused, nothing changes.
    let body = r#"{"target":"device:pc-ctg","duration":"1h"}"#;
    for (tok, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("lw1_not-a-token"), StatusCode::UNAUTHORIZED),
        (Some(device_token.as_str()), StatusCode::FORBIDDEN),
    ] {
        let (s, _) = api.call(Method::GET, "/api/v1/silences", tok, None).await;
        assert_eq!(s, want);
        let (s, _) = api.post(tok, body).await;
        assert_eq!(s, want);
        let (s, _) = api
            .call(
                Method::DELETE,
                &format!("/api/v1/silences/{first}"),
                tok,
                None,
            )
            .await;
        assert_eq!(s, want);
    }
    // A read token lists but changes nothing.
    let (s, text) = api
        .call(Method::GET, "/api/v1/silences", Some(&reader), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert_eq!(json(&text)[0]["target"], "device:pc-dhaka", "{text}");
    assert_eq!(json(&text)[0]["active"], true, "{text}");
    assert_eq!(api.post(Some(&reader), body).await.0, StatusCode::FORBIDDEN);
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{first}"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(stored(store.as_ref()).await, vec![first]);

    // Another branch's devices, offices and wider branches: refused.
    for (target, want) in [
        ("device:pc-dhaka", StatusCode::NOT_FOUND),
        ("office:dhk-savar", StatusCode::NOT_FOUND),
        ("device:pc-other", StatusCode::NOT_FOUND),
        ("division:Dhaka", StatusCode::FORBIDDEN),
        ("ministry", StatusCode::FORBIDDEN),
        ("device:no-such-device", StatusCode::NOT_FOUND),
    ] {
        let (s, text) = api
            .post(
                Some(&ctg_admin),
                &format!(r#"{{"target":"{target}","duration":"1h"}}"#),
            )
            .await;
        assert_eq!(s, want, "{target}: {text}");
        assert!(json(&text)["error"].is_string(), "{text}");
    }
    // ... nor sees or removes the silences of another branch.
    let (_, text) = api
        .call(Method::GET, "/api/v1/silences", Some(&ctg_admin), None)
        .await;
    assert_eq!(json(&text), json("[]"));
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{first}"),
            Some(&ctg_admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(stored(store.as_ref()).await, vec![first]);

    // Oversized, mistyped and odd bodies: a clear 4xx naming what is wrong.
    let huge = format!(
        r#"{{"target":"device:pc-ctg","duration":"1h","reason":"{}"}}"#,
        "x".repeat(10_000)
    );
    for (ct, b, want, field) in [
        (
            "application/json",
            huge.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            "text/plain",
            body.to_string(),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            "application/json",
            "{".to_string(),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            "application/json",
            "[1,2]".to_string(),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg","duration":"1h","admin":true}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("end"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg","duration":"400days"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("end"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg","duration":"1h","end":"2030-01-01T00:00:00Z"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("duration"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg","end":"2001-01-01T00:00:00Z"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("end"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg","end":"soon"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("end"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg","duration":"1h","start":"2099-01-01T00:00:00Z"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("start"),
        ),
        (
            "application/json",
            r#"{"target":"device:pc-ctg","duration":"1h","reason":"a\u0000b"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("reason"),
        ),
        (
            "application/json",
            format!(
                r#"{{"target":"device:{}","duration":"1h"}}"#,
                "p".repeat(300)
            ),
            StatusCode::BAD_REQUEST,
            Some("target"),
        ),
        (
            "application/json",
            r#"{"target":"planet:earth","duration":"1h"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("target"),
        ),
        (
            "application/json",
            r#"{"target":42,"duration":"1h"}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
    ] {
        let (s, text) = api
            .call(
                Method::POST,
                "/api/v1/silences",
                Some(&admin),
                Some((ct, b.clone())),
            )
            .await;
        assert_eq!(s, want, "{b:.80}: {text}");
        if let Some(f) = field {
            assert_eq!(json(&text)["field"], f, "{b:.80}: {text}");
        }
    }
    let (s, _) = api
        .call(
            Method::POST,
            "/api/v1/silences?force=1",
            Some(&admin),
            Some(("application/json", body.into())),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for id in [
        "abc",
        "0",
        "-1",
        "99999999999999999999",
        "1%20OR%201=1",
        "999999",
    ] {
        let (s, _) = api
            .call(
                Method::DELETE,
                &format!("/api/v1/silences/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(stored(store.as_ref()).await, vec![first], "nothing changed");

    // Within its branch an admin token silences and removes.
    let (s, text) = api
        .post(
            Some(&ctg_admin),
            r#"{"target":"office:CTG-SADAR","duration":"2h","reason":"generator works"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{text}");
    let made = json(&text);
    assert_eq!(made["target"], "office:ctg-sadar");
    assert_eq!(made["created_by"], "token:ctg-admin");
    let ctg_silence = made["id"].as_i64().unwrap();
    let (_, text) = api
        .call(Method::GET, "/api/v1/silences", Some(&dhaka_admin), None)
        .await;
    assert_eq!(
        json(&text).as_array().unwrap().len(),
        1,
        "only Dhaka's: {text}"
    );
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{ctg_silence}"),
            Some(&ctg_admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Many rounds later (at least two more after pc-ctg's was told), still
    // nothing about the silenced pc-dhaka at the webhook.
    wait_for("two more rounds", 10, || now_ms() > told_after).await;
    assert!(
        seen(&hook).iter().all(|(_, device)| device != "pc-dhaka"),
        "a silenced device's alert reached the webhook: {:?}",
        seen(&hook)
    );
    assert_eq!(events(&got(&hook), "opened", "pc-ctg").len(), 1);

    // The silence over pc-dhaka removed: its alert opens at the next round
    // and reaches the webhook.
    let (s, text) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{first}"),
            Some(&dhaka_admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert_eq!(json(&text)["removed"], true);
    wait_alert(store.as_ref(), "pc-dhaka").await;
    wait_for("pc-dhaka's alert at the webhook", 30, || {
        !events(&got(&hook), "opened", "pc-dhaka").is_empty()
    })
    .await;

    // The command line: add, list, refuse a bad time naming the flag, remove.
    let lw = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&cfg_path)
            .env_remove("LINKWATCH_COLLECTOR_CONFIG")
            .env("TZ", "Asia/Dhaka")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = lw(&[
        "alerts",
        "silence",
        "add",
        "district:Chattogram / Chattogram",
        "--from",
        "2099-01-01 09:00",
        "--for",
        "3h",
        "--reason",
        "planned",
    ]);
    assert_eq!(code, 2, "a year ahead at most: {out}");
    assert!(err.contains("--from"), "{err}");
    let (code, out, err) = lw(&[
        "alerts",
        "silence",
        "add",
        "district:Chattogram / Chattogram",
        "--for",
        "3h",
        "--reason",
        "planned",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("silence "), "{out}");
    let (code, _, err) = lw(&[
        "alerts",
        "silence",
        "add",
        "device:pc-ctg",
        "--until",
        "yesterday",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--until"), "{err}");
    let (code, out, err) = lw(&["alerts", "silence", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("district:Chattogram / Chattogram"), "{out}");
    assert!(out.contains(" +06 "), "local time: {out}");
    let listed = store.silences(0).await.unwrap();
    assert_eq!(listed.len(), 1);
    let id = listed[0].silence.id.to_string();
    let (code, _, err) = lw(&["alerts", "silence", "remove", &id]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = lw(&["alerts", "silence", "remove", &id]);
    assert_eq!(code, 2);
    assert!(err.contains("no silence"), "{err}");
    assert!(stored(store.as_ref()).await.is_empty());
    collector.stop().await;
}
