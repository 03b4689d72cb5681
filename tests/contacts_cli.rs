//! `linkwatch contacts import|list|remove` through the real binary, on a
//! collector configuration with channels and one contact of its own:
//! a file is imported (CSV, then TOML replacing a contact), listed beside
//! the configuration's, bad files change nothing and name the file, line
//! and what to fix; an imported contact is told of an alert by the
//! collector's next round; removing one stops that.

use linkwatch::collector::alerts::run::{AlertMetrics, Engine, tick};
use linkwatch::collector::devices;
use linkwatch::collector::store::{self, Office};
use linkwatch::config::collector::CollectorConfig;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

const CONFIG: &str = r#"
[alerts]
upload_interval = "10s"
grace = "1s"

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

[alerts.channel.hook]
type = "webhook"
format = "json"
url = "http://127.0.0.1:9/hook"

[alerts.channel.mail]
type = "email"
server = "127.0.0.1"
port = 9
tls = "none"
from = "linkwatch <alerts@example.gov.bd>"
"#;

fn lw(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(dir.join("collector.toml"))
        .current_dir(dir)
        .env_remove("LINKWATCH_COLLECTOR_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn contacts_are_imported_listed_routed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("collector.db").display());
    std::fs::write(
        dir.path().join("collector.toml"),
        format!("[collector]\ndatabase = {db:?}\n{CONFIG}"),
    )
    .unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    w(
        "contacts.csv",
        "name,branch,language,email,phone,channels\n\
         Savar UNO,office:dhk-savar,bn,uno.savar@example.gov.bd,,mail;hook\n\
         DC Dhaka,district:Dhaka / Dhaka,en,dc@example.gov.bd,,mail\n",
    );
    let (code, out, err) = lw(dir.path(), &["contacts", "import", "contacts.csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 contacts imported"), "{out}");
    assert!(out.contains("(2 new, 0 replaced)"), "{out}");

    // Bad files: refused naming the file, the line and the fix; nothing stored.
    for (file, text, want) in [
        (
            "bad-email.csv",
            "name,branch,language,email,phone,channels\nX,office:dhk-savar,bn,not-an-address,,mail\n",
            "bad-email.csv:2",
        ),
        (
            "bad-channel.csv",
            "name,branch,language,email,phone,channels\nY,office:dhk-savar,bn,y@example.gov.bd,,pager\n",
            "channel `pager`",
        ),
        (
            "no-phone.toml",
            "[[contact]]\nname = \"Z\"\nbranch = \"division:Dhaka\"\nemail = \"z@example.gov.bd\"\nchannels = [\"mail\"]\n\n\
             [[contact]]\nname = \"ops\"\nbranch = \"ministry\"\nchannels = [\"hook\"]\n",
            "already defined by the configuration",
        ),
        ("contacts.txt", "name,branch\n", "contacts.txt"),
    ] {
        w(file, text);
        let (code, _, err) = lw(dir.path(), &["contacts", "import", file]);
        assert_eq!(code, 2, "{file}");
        assert!(err.contains(want), "{file}: {err}");
    }
    let (code, _, err) = lw(dir.path(), &["contacts", "import", "missing.csv"]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.csv"), "{err}");

    // A TOML file replaces a contact of the same name (any case).
    w(
        "more.toml",
        "[[contact]]\nname = \"savar uno\"\nbranch = \"office:dhk-savar\"\nlanguage = \"en\"\n\
         email = \"uno2.savar@example.gov.bd\"\nchannels = [\"mail\"]\n",
    );
    let (code, out, err) = lw(dir.path(), &["contacts", "import", "more.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(0 new, 1 replaced)"), "{out}");

    let (code, out, err) = lw(dir.path(), &["contacts", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("config (alerts.contact[0])"), "{out}");
    assert!(out.contains("uno2.savar@example.gov.bd"), "{out}");
    assert!(!out.contains("uno.savar@"), "replaced: {out}");
    assert!(out.contains("imported (contacts.csv:3)"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");
    let (_, out, _) = lw(dir.path(), &["contacts", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "{out}");
    assert_eq!(list[1]["source"], "imported");

    // The collector's next round tells the imported contacts of an alert.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = CollectorConfig::load(&dir.path().join("collector.toml")).unwrap();
    let alerts = linkwatch::collector::alerts::setup::alerts_config(&cfg)
        .unwrap()
        .unwrap();
    // A silent device's alert, evaluated by one round; who its notices go to.
    let alert_for = |device: &str| {
        rt.block_on(async {
            let store = store::open(&db).await.unwrap();
            let t = now_ms();
            let (d, _) = devices::add_device(store.as_ref(), device, Some("dhk-savar"), t - 60_000)
                .await
                .unwrap();
            store
                .ingest_upload(d.id, &[], Some(t - 30_000), t - 40_000)
                .await
                .unwrap();
            let mut reg = prometheus_client::registry::Registry::default();
            let engine = Engine::new(alerts.clone(), AlertMetrics::register(&mut reg)).unwrap();
            tick(store.as_ref(), &engine, now_ms()).await.unwrap();
            let mut out = Vec::new();
            for a in store.open_alerts().await.unwrap() {
                if a.key.subject.device_name() == Some(device) {
                    for r in store.outbox_of(a.id).await.unwrap() {
                        out.push((r.recipient, r.address));
                    }
                }
            }
            out.sort();
            out
        })
    };
    rt.block_on(async {
        let store = store::open(&db).await.unwrap();
        store
            .upsert_offices(&[Office {
                code: "dhk-savar".into(),
                name: "Savar".into(),
                division: "Dhaka".into(),
                district: "Dhaka".into(),
                upazila: "Savar".into(),
                hours: None,
            }])
            .await
            .unwrap();
    });
    let told = alert_for("pc-1");
    assert!(
        told.contains(&("savar uno".into(), "uno2.savar@example.gov.bd".into())),
        "{told:?}"
    );
    // Removed: the next alert's notices leave it out.
    let (code, _, err) = lw(dir.path(), &["contacts", "remove", "ops"]);
    assert_eq!(code, 2);
    assert!(err.contains("defined by the configuration"), "{err}");
    let (code, _, err) = lw(dir.path(), &["contacts", "remove", "nobody"]);
    assert_eq!(code, 2);
    assert!(err.contains("no imported contact"), "{err}");
    let (_, out, _) = lw(dir.path(), &["contacts", "remove", "SAVAR UNO"]);
    assert!(out.contains("removed"), "{out}");
    let (_, out, _) = lw(dir.path(), &["contacts", "list"]);
    assert!(!out.contains("uno2.savar"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    let told = alert_for("pc-2");
    assert!(!told.is_empty(), "someone is told");
    assert!(told.iter().all(|(who, _)| who != "savar uno"), "{told:?}");
}
