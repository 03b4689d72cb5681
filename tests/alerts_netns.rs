//! An officer's every link cut, end to end: the real agent in the testbed's
//! device namespace uploads over HTTPS to the real collector binary in the
//! "internet" namespace (reached only through the device's links), whose
//! alert engine tells a webhook receiver and a real SMTP server (aiosmtpd,
//! `tests/fixtures/smtp_server.py`; the mail part skips with a message
//! without it), both on the internet namespace's loopback.
//!
//! Every link cut (each ISP drops what it would forward): the unreachable
//! alert arrives by webhook and by mail. The links healed: the agent's
//! backlog arrives and the recovery follows, annotated with what the agent
//! learned ("all links down from .. to .." with the links named), by both.
//! Grace and intervals are a second or so (configuration), so it all takes
//! seconds; every wait is on a condition with a deadline.

mod common;

use common::agent::{Agent, BIN, COLLECTOR_ADDR, add_device, uploading_config};
use common::alerts::{BinCollector, Mode, Smtp, events, got, now_ms, python, receiver_on};
use common::{Testbed, Uplink, exec_in, testbed_available, wait_until};
use linkwatch::wire::LinkState;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEVICE: &str = "officer-1";

/// The collector's config: HTTPS on [`COLLECTOR_ADDR`], a SQLite database,
/// and `[alerts]` telling one contact by webhook (and mail with
/// `smtp_port`).
fn collector_config(dir: &Path, hook_url: &str, smtp_port: Option<u16>) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec![COLLECTOR_ADDR.to_string()]).unwrap();
    let cert = dir.join("collector.crt");
    let key = dir.join("collector.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    linkwatch::shared::files::write_new_private(&key, ck.signing_key.serialize_pem().as_bytes())
        .unwrap();
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
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            r#"[collector]
listen = "{COLLECTOR_ADDR}:8443"
database = "sqlite://{db}"
tls_cert = "{cert}"
tls_key = "{key}"
log_format = "text"

[alerts]
interval = "1s"
grace = "1s"
upload_interval = "10s"

[alerts.delivery]
first_retry = "1s"
max_retry = "2s"
jitter = 0.0

[[alerts.rule]]
name = "unreachable"
kind = "unreachable"
schedule = "always"
escalate_after = "never"

[alerts.office_offline]
enabled = false

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
timeout = "5s"
{mail}"#,
            db = dir.join("collector.db").display(),
            cert = cert.display(),
            key = key.display(),
        ),
    )
    .unwrap();
    (config, cert)
}

/// Wait (at most `secs`) for the webhook message of `event` about the
/// device.
async fn hooked(h: &common::alerts::Hook, event: &str, secs: u64) -> Value {
    common::alerts::wait_for(&format!("the {event} message at the webhook"), secs, || {
        !events(&got(h), event, DEVICE).is_empty()
    })
    .await;
    events(&got(h), event, DEVICE)[0].clone()
}

#[test]
fn every_link_cut_is_told_by_mail_and_webhook_and_the_recovery_says_what_happened() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let inet = tb.inet_netns().to_string();
    common::run(&mut tb.exec_inet([
        "ip",
        "addr",
        "add",
        &format!("{COLLECTOR_ADDR}/32"),
        "dev",
        "lo",
    ]));
    // The receivers listen on the internet namespace's loopback, where the
    // collector runs.
    let smtp = match python() {
        Ok(py) => Some(Smtp::spawn(exec_in(&inet, [py.as_str(), Smtp::script()]))),
        Err(why) => {
            eprintln!("skipping the mail part: {why}: the webhook alone");
            None
        }
    };
    let hook_listener = common::netns::run_in(Path::new("/run/netns").join(&inet), || async {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (hook_url, h) = receiver_on(hook_listener, Mode::Accept).await;
        let (config, ca) = collector_config(dir.path(), &hook_url, smtp.as_ref().map(|s| s.port));
        let token = add_device(&config, DEVICE, dir.path());
        let collector = BinCollector::spawn(tokio::process::Command::from(tb.exec_inet([
            BIN,
            "collector",
            "--config",
            config.to_str().unwrap(),
        ])))
        .await;
        let agent = Agent::start(
            &tb,
            &uploading_config(DEVICE, &token, &ca, dir.path(), "info"),
        );
        agent.all_up();
        let store = linkwatch::collector::store::open(&format!(
            "sqlite://{}",
            dir.path().join("collector.db").display()
        ))
        .await
        .unwrap();
        let uploaded = || async {
            store
                .device_by_name(DEVICE)
                .await
                .unwrap()
                .is_some_and(|d| d.acked > 2)
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !uploaded().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no upload within 20 s:\n{}\n{}",
                agent.log_tail(),
                collector.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(got(&h).is_empty(), "nothing to tell yet: {:#?}", got(&h));

        // Every link cut: the agent sees them down, cannot upload, and
        // the collector tells the silence.
        let cut_at = now_ms();
        for l in Uplink::ALL {
            tb.cut_upstream(l);
        }
        for l in ["bb0", "wl0", "mb0"] {
            agent.wait_state(l, LinkState::Down, Duration::from_secs(15), |_| {});
        }
        let opened = hooked(&h, "opened", 30).await;
        let opened_at = now_ms();
        assert_eq!(opened["kind"], "unreachable", "{opened:#}");
        assert!(
            opened["text"].as_str().unwrap().contains(DEVICE),
            "{opened:#}"
        );
        eprintln!(
            "links cut -> unreachable alert at the webhook: {} ms",
            opened_at - cut_at
        );
        if let Some(smtp) = &smtp {
            let mail = smtp
                .next(Duration::from_secs(30))
                .expect("the alert by mail within 30 s");
            assert_eq!(mail["rcpt_tos"], serde_json::json!(["ops@example.gov.bd"]));
            let text = format!("{} {}", mail["subject"], mail["body"]);
            assert!(text.contains(DEVICE), "{mail:#}");
        }

        // The links healed: the backlog arrives, and the recovery says the
        // links were all down, when and which.
        let heal_at = now_ms();
        for l in Uplink::ALL {
            tb.heal_upstream(l);
        }
        let rec = hooked(&h, "recovered", 60).await;
        let recovered_at = now_ms();
        let spans = rec["alert"]["annotation"]["spans"]
            .as_array()
            .unwrap_or_else(|| panic!("recovery without annotation: {rec:#}"));
        let down: Vec<&Value> = spans
            .iter()
            .filter(|s| s["what"] == "all_links_down")
            .collect();
        assert_eq!(down.len(), 1, "one outage: {rec:#}");
        let (from, to) = (
            down[0]["start_ms"].as_i64().unwrap(),
            down[0]["end_ms"].as_i64().unwrap(),
        );
        assert!(
            from >= cut_at - 1_000 && from <= opened_at,
            "down from {from}, cut at {cut_at}: {rec:#}"
        );
        assert!(
            to >= heal_at - 1_000 && to <= recovered_at,
            "down to {to}, healed at {heal_at}: {rec:#}"
        );
        for l in ["bb0", "wl0", "mb0"] {
            assert!(
                down[0]["links"].as_array().unwrap().iter().any(|x| x == l),
                "{l} named: {rec:#}"
            );
        }
        let text = rec["text"].as_str().unwrap();
        assert!(text.contains("all links down from"), "{text}");
        if let Some(smtp) = &smtp {
            let mail = smtp
                .next(Duration::from_secs(30))
                .expect("the recovery by mail within 30 s");
            let text = format!("{} {}", mail["subject"], mail["body"]);
            assert!(text.contains("all links down from"), "{mail:#}");
        }
        // Told once each.
        let all = got(&h);
        assert_eq!(events(&all, "opened", DEVICE).len(), 1, "{all:#?}");
        assert_eq!(events(&all, "recovered", DEVICE).len(), 1, "{all:#?}");
        // Everything the agent kept reaches the collector (a deadline, not a
        // target: a loaded machine and the upload back-off after the cut
        // took longer than 5 s once).
        wait_until(Duration::from_secs(30), "the agent's spool drained", || {
            agent.status().record.depth == 0
        });
        drop(agent);
        collector.kill().await;
    });
}
