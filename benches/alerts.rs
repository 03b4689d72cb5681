//! Benchmark of the pure alert evaluation (issue #14): one tick of the
//! default rules over 100,000 devices in 10,000 offices (one gateway with
//! two links in each), at 11:00 on a Sunday in Dhaka: most devices upload on
//! time, 3 % are silent on their own, 1 % of the offices have lost their
//! uplink. Times the first tick (opening every alert) and steady ticks
//! (everything open), in memory: the store's part is stage 2's. Prints
//! figures against the target (≤ 1 s per tick, storage included), never
//! pass/fail.
//!
//! Also the cost of the upload deadline (`next_upload_within_s`) on the
//! wire: the gzip'd size of the batches an agent sends in a day with the
//! default settings, with and without the field (compressed as the agent
//! compresses), in bytes per device-day.
//!
//! And the collector's round from its store (`store`): `alerts::run::tick`
//! over the same fleet read from SQLite (a file) and PostgreSQL
//! (`LINKWATCH_TEST_PG_URL`, a scratch schema): devices and offices read,
//! facts built, evaluated, alerts and outbox rows written; the first tick
//! (opening every alert), steady ticks 4 s apart with the devices that
//! upload in 4 s (1 in 75) written between them, and a tick after a device
//! was added (the catalog changed: every device read again).
//!
//! And (`latency`) the time from a device's upload deadline plus the grace
//! passing to its alert reaching a webhook receiver on loopback, through a
//! collector in-process on SQLite, with `interval` 15 s (the default until
//! issue 14's silences stage) and with the default (4 s now), over devices
//! whose deadlines fall at every phase of the tick.
//!
//! `cargo bench --bench alerts`; `LINKWATCH_BENCH_DEVICES` sets the device
//! count (default 100,000), `LINKWATCH_BENCH_PART` one part (`wire`,
//! `tick`, `store`, `latency`). Without `--bench` (as under `cargo test
//! --all-targets`) it prints one line and returns.

use linkwatch::collector::alerts::AlertsConfig;
use linkwatch::collector::alerts::contacts::{Contact, Language, Routing};
use linkwatch::collector::alerts::rules::{BranchSpec, Context};
use linkwatch::collector::alerts::{DeviceFacts, GatewayLinks, Input, LinkStatus, evaluate};
use linkwatch::collector::store::Office;
use linkwatch::wire::{LinkKind, LinkState};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const PER_OFFICE: usize = 10;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("alert benchmarks run only under `cargo bench --bench alerts`");
        return;
    }
    let part = std::env::var("LINKWATCH_BENCH_PART").unwrap_or_default();
    if part.is_empty() || part == "wire" {
        wire_cost();
    }
    let n: usize = std::env::var("LINKWATCH_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    if part.is_empty() || part == "store" {
        store_ticks(n);
    }
    if part.is_empty() || part == "latency" {
        latency();
    }
    if !(part.is_empty() || part == "tick") {
        return;
    }
    let n: usize = std::env::var("LINKWATCH_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let offices: Vec<Office> = (0..n.div_ceil(PER_OFFICE))
        .map(|k| Office {
            code: format!("o{k}"),
            name: format!("Office {k}"),
            division: format!("Div{}", k % 8),
            district: format!("Dist{}", k % 64),
            upazila: format!("Upa{}", k % 500),
            // One office in fifty keeps hours of its own.
            hours: (k % 50 == 0).then(|| "office:Asia/Dhaka:sun-thu:08:00-16:00".to_string()),
        })
        .collect();
    let cfg = AlertsConfig::parse_toml("[alerts]\n", Path::new("bench.toml"), &BTreeSet::new())
        .expect("the defaults compile");
    let ctx = Context::new(cfg.rules.clone(), offices.clone());
    let contact = |name: &str, branch: &str| Contact {
        name: name.into(),
        branch: BranchSpec::parse(branch).unwrap(),
        language: Language::Bn,
        email: None,
        phone: None,
        channels: vec!["hook".into()],
        origin: "bench".into(),
    };
    let routing = Routing::new(
        (0..8)
            .map(|d| contact(&format!("div{d}"), &format!("division:Div{d}")))
            .chain([contact("ministry", "ministry")])
            .collect(),
    );
    let tz = jiff::tz::TimeZone::get("Asia/Dhaka").unwrap();
    let now = tz
        .to_timestamp(jiff::civil::date(2026, 11, 29).at(11, 0, 0, 0))
        .unwrap()
        .as_millisecond();
    let devices: Vec<DeviceFacts> = (0..n)
        .map(|i| {
            let office = i / PER_OFFICE;
            let gateway = i % PER_OFFICE == 0;
            let office_down = office % 100 == 7;
            let alone = i % 33 == 5;
            let heard = if office_down || alone {
                now - 20 * 60_000 - (i as i64 % 300) * 1000
            } else {
                now - (i as i64 % 300) * 1000
            };
            let links = gateway.then(|| GatewayLinks {
                links: vec![
                    LinkStatus {
                        name: "eth0".into(),
                        kind: LinkKind::Broadband,
                        metered: false,
                        priority: 1,
                        state: LinkState::Up,
                        since_ms: now - 3_600_000,
                    },
                    LinkStatus {
                        name: "wwan0".into(),
                        kind: LinkKind::Mobile,
                        metered: true,
                        priority: 2,
                        state: LinkState::Up,
                        since_ms: now - 3_600_000,
                    },
                ],
                chosen: Some("eth0".into()),
                chosen_since_ms: now - 3_600_000,
            });
            DeviceFacts {
                name: format!("d{i}"),
                office: Some(format!("o{office}")),
                gateway,
                last_record_ms: Some(heard),
                last_upload_ms: Some(heard),
                next_upload_due_ms: Some(heard + 300_000),
                stopped: None,
                links_down: Vec::new(),
                links,
            }
        })
        .collect();
    let annotations = BTreeMap::new();
    let mut open = Vec::new();
    let mut next_id = 0;
    let tick = |open: &Vec<_>, t: i64| {
        let input = Input {
            now_ms: t,
            devices: &devices,
            open,
            silences: &[],
            annotations: &annotations,
        };
        let start = Instant::now();
        let d = evaluate(&ctx, &routing, &input);
        (start.elapsed(), d)
    };
    let (first, d) = tick(&open, now);
    d.apply(&mut open, &mut next_id);
    let opened = d.open.len();
    let mut steady: Vec<Duration> = Vec::new();
    for k in 1..=5 {
        let (t, d) = tick(&open, now + k * 15_000);
        d.apply(&mut open, &mut next_id);
        steady.push(t);
    }
    steady.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "alerts: {n} devices in {} offices, default rules: first tick {:.1} ms ({opened} alerts opened), steady tick median {:.1} ms (max {:.1} ms) with {} open; target ≤ 1000 ms per tick with storage",
        offices.len(),
        ms(first),
        ms(steady[steady.len() / 2]),
        ms(*steady.last().unwrap()),
        open.len()
    );
}

/// The bytes the deadline field adds per device-day: a day of 5-minute
/// uploads (288), each carrying what a two-link agent spools in 5 minutes
/// with the defaults (a minute summary per link per minute, a heartbeat a
/// minute), gzip'd with the agent's compression level.
fn wire_cost() {
    use linkwatch::wire::v1::{Batch, Body, Record, VERSION};
    use std::io::Write;
    let t0: i64 = 1_780_000_000_000;
    let mut seq = 0u64;
    let mut day = |within: Option<u32>| -> (usize, usize) {
        let (mut raw, mut gz) = (0, 0);
        for upload in 0..288i64 {
            let mut records = Vec::new();
            for m in 0..5i64 {
                let at = t0 + (upload * 5 + m) * 60_000;
                for (link, kind) in [("eth0", LinkKind::Broadband), ("wwan0", LinkKind::Mobile)] {
                    seq += 1;
                    records.push(Record {
                        seq,
                        seq_end: None,
                        at,
                        mono_ms: (at - t0) as u64 + 3_600_000,
                        boot_id: "3f1c2b9e-0d7a-4a53-9a61-5bb0f2c1e001".into(),
                        body: Body::LinkMinutes {
                            link: link.into(),
                            kind,
                            minutes: 1,
                            sent: 60,
                            lost: (seq % 3) as u32,
                            rtt_p50_ms: Some(20.0 + (seq % 17) as f64 * 1.25),
                            rtt_p95_ms: Some(48.5 + (seq % 11) as f64),
                            rtt_max_ms: Some(90.25 + (seq % 23) as f64),
                            bytes: 5_040,
                        },
                    });
                }
                seq += 1;
                records.push(Record {
                    seq,
                    seq_end: None,
                    at,
                    mono_ms: (at - t0) as u64 + 3_600_000,
                    boot_id: "3f1c2b9e-0d7a-4a53-9a61-5bb0f2c1e001".into(),
                    body: Body::Heartbeat {
                        online: true,
                        count: 1,
                    },
                });
            }
            let batch = Batch {
                v: VERSION,
                device: "dhk-savar-uno-gw".into(),
                records,
                next_upload_within_s: within,
                backlog: None,
            };
            let json = serde_json::to_vec(&batch).expect("encode");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&json).expect("gzip");
            raw += json.len();
            gz += enc.finish().expect("gzip").len();
        }
        (raw, gz)
    };
    let (raw0, gz0) = day(None);
    let (raw1, gz1) = day(Some(307));
    println!(
        "deadline field: a device-day of 288 uploads is {gz0} B gzip'd without it, {gz1} B with it: \
         +{} B/device-day on the wire ({:.1} B per upload; +{} B before compression); \
         storage: 4 integer columns per device updated in place, no growth per day; target < 1 MB/day",
        gz1 as i64 - gz0 as i64,
        (gz1 as f64 - gz0 as f64) / 288.0,
        raw1 - raw0,
    );
}

/// The collector's tick over `n` devices read from SQLite and PostgreSQL.
fn store_ticks(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temporary directory");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        store_tick("SQLite", &sqlite, n).await;
        match std::env::var("LINKWATCH_TEST_PG_URL") {
            Ok(base) => {
                use sqlx::Connection;
                let schema = format!("lwbench_{:016x}", rand::random::<u64>());
                let mut c = sqlx::PgConnection::connect(&base)
                    .await
                    .expect("PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut c)
                    .await
                    .expect("schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                store_tick(
                    "PostgreSQL",
                    &format!("{base}{sep}options[search_path]={schema}"),
                    n,
                )
                .await;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut c)
                    .await
                    .expect("drop schema");
            }
            Err(_) => {
                println!("alerts store tick: PostgreSQL skipped (LINKWATCH_TEST_PG_URL not set)")
            }
        }
    });
}

async fn store_tick(label: &str, url: &str, n: usize) {
    use linkwatch::collector::alerts::run::{self, AlertMetrics, Engine};
    let store = linkwatch::collector::store::open(url)
        .await
        .expect("open the store");
    let now = linkwatch::collector::last_seen::now_ms();
    // Offices and devices written in bulk (the Store trait adds one at a time).
    let fill = Instant::now();
    let offices = n.div_ceil(PER_OFFICE);
    let office_rows: Vec<String> = (0..offices)
        .map(|k| {
            format!(
                "('o{k}', 'Office {k}', 'Div{}', 'Dist{}', 'Upa{}')",
                k % 8,
                k % 64,
                k % 500
            )
        })
        .collect();
    let device_rows: Vec<String> = (0..n)
        .map(|i| {
            let office = i / PER_OFFICE;
            let silent = office % 100 == 7 || i % 33 == 5;
            let heard = if silent {
                now - 20 * 60_000 - (i as i64 % 300) * 1000
            } else {
                now - (i as i64 % 300) * 1000
            };
            format!(
                "('d{i}', 'o{office}', 'h{i}', {}, {heard}, {heard}, {})",
                now - 86_400_000,
                heard + 307_000
            )
        })
        .collect();
    let mut sqls = Vec::new();
    for c in office_rows.chunks(1000) {
        sqls.push(format!(
            "INSERT INTO offices (code, name, division, district, upazila) VALUES {}",
            c.join(",")
        ));
    }
    for c in device_rows.chunks(1000) {
        sqls.push(format!(
            "INSERT INTO devices (name, office, token_hash, created_at, last_upload_ms, \
             last_record_ms, next_upload_due_ms) VALUES {}",
            c.join(",")
        ));
    }
    if url.starts_with("sqlite") {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("SQLite");
        let mut tx = c.begin().await.expect("begin");
        for q in &sqls {
            sqlx::query(sqlx::AssertSqlSafe(q.clone()))
                .execute(&mut *tx)
                .await
                .expect("fill");
        }
        tx.commit().await.expect("commit");
    } else {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await.expect("PostgreSQL");
        let mut tx = c.begin().await.expect("begin");
        for q in &sqls {
            sqlx::query(sqlx::AssertSqlSafe(q.clone()))
                .execute(&mut *tx)
                .await
                .expect("fill");
        }
        tx.commit().await.expect("commit");
    }
    let filled = fill.elapsed();
    let cfg = AlertsConfig::parse_toml(
        "[alerts]\n[[alerts.rule]]\nname = \"unreachable\"\nkind = \"unreachable\"\nschedule = \"always\"\n\
         [[alerts.contact]]\nname = \"ministry\"\nbranch = \"ministry\"\nchannels = [\"hook\"]\n\
         [alerts.channel.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
        Path::new("bench.toml"),
        &BTreeSet::new(),
    )
    .expect("the bench's alerts compile");
    let mut registry = prometheus_client::registry::Registry::default();
    let engine = Engine::with_senders(cfg, BTreeMap::new(), AlertMetrics::register(&mut registry));
    let start = Instant::now();
    let first = run::tick(store.as_ref(), &engine, now)
        .await
        .expect("first tick");
    let first_t = start.elapsed();
    // Between two rounds (4 s apart, the default interval) the devices
    // whose next upload fell in those 4 s (device i last uploaded i % 300 s
    // before the fill: 1 in 75 of them) have uploaded, the silent ones
    // (ids from the fill above) staying silent: written outside the timed
    // part, as ingest would.
    let mut steady = Vec::new();
    for k in 1..=8i64 {
        let at = now + k * 4_000;
        let sql = format!(
            "UPDATE devices SET last_upload_ms = {at}, next_upload_due_ms = {} \
             WHERE (id - 1) % 300 >= {} AND (id - 1) % 300 < {} \
             AND NOT ((id - 1) / {PER_OFFICE} % 100 = 7 OR (id - 1) % 33 = 5)",
            at + 307_000,
            300 - 4 * k,
            300 - 4 * (k - 1),
        );
        execute(url, &sql).await;
        let t = Instant::now();
        run::tick(store.as_ref(), &engine, at).await.expect("tick");
        steady.push(t.elapsed());
    }
    steady.sort();
    // A device added: the catalog changed, the round reads every device.
    execute(
        url,
        &format!(
            "INSERT INTO devices (name, office, token_hash, created_at) VALUES ('dnew', 'o0', 'hnew', {now})"
        ),
    )
    .await;
    let t = Instant::now();
    run::tick(store.as_ref(), &engine, now + 40_000)
        .await
        .expect("tick");
    let full_t = t.elapsed();
    // The reads a round makes, one at a time.
    let t = Instant::now();
    let listed = store.list_devices().await.expect("devices").len();
    let devices_t = t.elapsed();
    let t = Instant::now();
    store.list_offices().await.expect("offices");
    let offices_t = t.elapsed();
    let t = Instant::now();
    let open = store.open_alerts().await.expect("open alerts").len();
    let open_t = t.elapsed();
    let t = Instant::now();
    let heard = store
        .devices_heard_since(now + 32_000 - 30_000)
        .await
        .expect("heard since")
        .len();
    let heard_t = t.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "alerts store reads, {label}: all {listed} devices {:.0} ms, offices {:.0} ms, \
         {open} open alerts {:.0} ms, the {heard} devices heard from in the last 30 s {:.0} ms",
        ms(devices_t),
        ms(offices_t),
        ms(open_t),
        ms(heard_t),
    );
    println!(
        "alerts store tick, {label}: {n} devices in {offices} offices (filled in {:.1} s): first tick {:.0} ms \
         ({} alerts opened, {} notices); steady tick, {} devices uploaded since the last, median {:.0} ms \
         (max {:.0} ms); a tick after a device was added (every device read again) {:.0} ms; target ≤ 1000 ms",
        filled.as_secs_f64(),
        ms(first_t),
        first.opened,
        first.notices,
        n / 75,
        ms(steady[steady.len() / 2]),
        ms(*steady.last().unwrap()),
        ms(full_t),
    );
}

/// One statement on a connection of its own.
async fn execute(url: &str, sql: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("SQLite");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .expect("statement");
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.expect("PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .expect("statement");
    }
}

/// Deadline + grace passed → the alert at the webhook, per `interval`.
fn latency() {
    use linkwatch::collector::alerts::model::Subject;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // `None`: the default `interval`.
        for setting in [Some("15s"), None] {
            let interval = setting.unwrap_or("default (4s)");
            let interval_line = setting
                .map(|i| format!("interval = \"{i}\"\n"))
                .unwrap_or_default();
            let arrived: std::sync::Arc<std::sync::Mutex<BTreeMap<String, i64>>> =
                Default::default();
            let app = axum::Router::new()
                .route(
                    "/hook",
                    axum::routing::post({
                        let arrived = arrived.clone();
                        move |axum::Json(v): axum::Json<serde_json::Value>| {
                            let arrived = arrived.clone();
                            async move {
                                let t = linkwatch::collector::last_seen::now_ms();
                                if v["event"] == "opened"
                                    && let Ok(Subject::Device { device }) =
                                        serde_json::from_value(v["alert"]["key"]["subject"].clone())
                                {
                                    arrived.lock().unwrap().entry(device).or_insert(t);
                                }
                                axum::http::StatusCode::NO_CONTENT
                            }
                        }
                    }),
                );
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let hook = format!("http://{}/hook", l.local_addr().expect("addr"));
            tokio::spawn(async move { axum::serve(l, app).await });
            let dir = tempfile::tempdir().expect("temporary directory");
            let mut cfg = linkwatch::config::collector::CollectorConfig::embedded();
            cfg.collector.database = format!("sqlite://{}", dir.path().join("lat.db").display());
            #[derive(serde::Deserialize)]
            struct File {
                alerts: linkwatch::config::alerts::AlertsSection,
            }
            let text = format!(
                "[alerts]\n{interval_line}grace = \"5s\"\nupload_interval = \"10s\"\n\
                 [[alerts.rule]]\nname = \"unreachable\"\nkind = \"unreachable\"\nschedule = \"always\"\n\
                 [[alerts.contact]]\nname = \"ops\"\nbranch = \"ministry\"\nchannels = [\"hook\"]\n\
                 [alerts.channel.hook]\ntype = \"webhook\"\nurl = \"{hook}\"\n"
            );
            cfg.alerts = Some(toml::from_str::<File>(&text).expect("alerts").alerts);
            let store = linkwatch::collector::store::open(&cfg.collector.database)
                .await
                .expect("store");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            let (stop, rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn({
                let store = store.clone();
                async move {
                    linkwatch::collector::server::serve_on(listener, store, &cfg, async {
                        let _ = rx.await;
                    })
                    .await
                }
            });
            let client = reqwest::Client::builder().no_proxy().build().expect("client");
            // Devices whose deadlines (1 to 15 s ahead) fall at every phase.
            const N: u32 = 12;
            let mut silent_at = BTreeMap::new();
            for i in 0..N {
                let name = format!("lat{i}");
                let (_, token) = linkwatch::collector::devices::add_device(
                    store.as_ref(),
                    &name,
                    None,
                    linkwatch::collector::last_seen::now_ms(),
                )
                .await
                .expect("device");
                let within = 1 + i * 14 / N;
                let body = format!(
                    "{{\"v\":1,\"device\":\"{name}\",\"records\":[],\"next_upload_within_s\":{within}}}"
                );
                let sent = linkwatch::collector::last_seen::now_ms();
                let r = client
                    .post(format!("{base}/api/v1/ingest"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("upload");
                assert_eq!(r.status(), 200);
                // The collector's deadline: its receive time (at most `sent`
                // later) plus `within`; the grace, 5 s.
                silent_at.insert(name, sent + i64::from(within) * 1000 + 5_000);
            }
            let until = Instant::now() + Duration::from_secs(60);
            while arrived.lock().unwrap().len() < N as usize && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let got = arrived.lock().unwrap().clone();
            let mut lat: Vec<f64> = silent_at
                .iter()
                .filter_map(|(d, s)| Some((got.get(d)? - s) as f64 / 1000.0))
                .collect();
            lat.sort_by(f64::total_cmp);
            let _ = stop.send(());
            let _ = server.await;
            if lat.is_empty() {
                println!("alert latency, interval {interval}: no alert arrived within 60 s");
                continue;
            }
            println!(
                "alert latency, interval {interval}: deadline + grace passed → alert at the webhook: \
                 median {:.1} s, max {:.1} s over {} devices (target ≤ 5 s after the grace)",
                lat[lat.len() / 2],
                lat[lat.len() - 1],
                lat.len()
            );
        }
    });
}
