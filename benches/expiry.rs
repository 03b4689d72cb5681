//! Expiring a day of raw minute data while the fleet keeps uploading
//! (issue 18, item 3). A day of link summaries of N devices (default
//! 100,000 × 3 links: packs of two UTC hours, as ingest makes them, each
//! full with 120 minutes in a 1,216-byte body: 44 KB a device-day, what the
//! storage bench measures for link summaries) is
//! written straight into `minute_packs` with SQL, then the maintainer's
//! retention job ([`maintainer::retention_once`], the code the collector
//! runs) deletes it, while 2,000 other devices upload through the real
//! [`Store`] at the whole fleet's rate (N devices sending 5 minutes every 5
//! minutes: N / 300 batches a second, each 5 × (3 `link_minutes` + 1
//! `heartbeat`)). Each upload's latency is measured from the moment it was
//! due (a late start counts), first for 20 s without expiry (the baseline of
//! the same run), then for as long as the expiry takes.
//!
//! The latency is the store's (the database write, group commit included),
//! not HTTP's: the HTTP layer adds the same in both phases.
//!
//! `cargo bench --bench expiry -- --devices 100000` on SQLite and, when
//! `LINKWATCH_TEST_PG_URL` is set, PostgreSQL. Without `--bench` or
//! `--devices` (as under `cargo test --all-targets`) it prints one line and
//! returns.

mod common;

use common::db::Db;
use common::shapes::{LINKS, link_minutes};
use common::{ms, thousands};
use linkwatch::collector::maintainer;
use linkwatch::collector::store::{self, Store};
use linkwatch::config::collector::RollupSettings;
use linkwatch::wire::v1::{Body, Record};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The expired day starts here (2026-11-02 00:00 UTC).
const T0_MS: i64 = 1_793_577_600_000;
const DAY_MS: i64 = 86_400_000;
/// The uploading devices' time: 15 days later, with 14 days kept.
const NOW_MS: i64 = T0_MS + 15 * DAY_MS;
const LIVE_DEVICES: usize = 2_000;
const BASELINE: Duration = Duration::from_secs(20);

/// The SQL that writes the old day: devices, their streams, their packs.
fn fill_sql(sqlite: bool, devices: usize) -> Vec<String> {
    let links: Vec<String> = LINKS
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| format!("SELECT '{name}' AS link, '{kind}' AS kind, {i} AS idx"))
        .collect();
    let links = links.join(" UNION ALL ");
    let (series, hours, token, body) = if sqlite {
        (
            format!(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {devices}) "
            ),
            "(WITH RECURSIVE hh(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hh WHERE h < 11) \
             SELECT h FROM hh)"
                .to_string(),
            "printf('%064x', i)",
            "randomblob(1216)",
        )
    } else {
        (
            String::new(),
            "(SELECT generate_series(0, 11) AS h)".to_string(),
            "lpad(to_hex(i), 64, '0')",
            "decode(repeat(md5((s.id * 12 + hours.h)::text), 76), 'hex')",
        )
    };
    let from_series = if sqlite {
        "FROM g".to_string()
    } else {
        format!("FROM generate_series(1, {devices}) AS i")
    };
    vec![
        format!(
            "{series}INSERT INTO devices (name, token_hash, created_at) \
             SELECT 'old-' || i, {token}, {T0_MS} {from_series}"
        ),
        format!(
            "INSERT INTO pack_streams (device_id, kind, link, link_kind, boot_id) \
             SELECT d.id, 'link_minutes', l.link, l.kind, 'boot-old' FROM devices d \
             CROSS JOIN ({links}) l WHERE d.name LIKE 'old-%'"
        ),
        format!(
            "INSERT INTO minute_packs (device_id, first_seq, last_seq, first_at_ms, last_at_ms, \
             stream_id, minutes, n, body) \
             SELECT s.device_id, hours.h * 480 + l.idx * 120 + 1, hours.h * 480 + l.idx * 120 + 120, \
             {T0_MS} + hours.h * 7200000, {T0_MS} + hours.h * 7200000 + 7140000, \
             s.id, 1, 120, {body} \
             FROM pack_streams s JOIN ({links}) l ON l.link = s.link CROSS JOIN {hours} AS hours \
             WHERE s.boot_id = 'boot-old'"
        ),
    ]
}

/// One connection to the bench's database, whichever it is.
enum Conn {
    Lite(SqliteConnection),
    Pg(PgConnection),
}

impl Conn {
    async fn open(url: &str, sqlite: bool) -> Conn {
        if sqlite {
            Conn::Lite(SqliteConnection::connect(url).await.expect("open SQLite"))
        } else {
            Conn::Pg(PgConnection::connect(url).await.expect("connect"))
        }
    }

    async fn exec(&mut self, sql: String) {
        let sql = AssertSqlSafe(sql);
        match self {
            Conn::Lite(c) => sqlx::query(sql).execute(c).await.map(|_| ()),
            Conn::Pg(c) => sqlx::query(sql).execute(c).await.map(|_| ()),
        }
        .expect("statement");
    }

    /// The first column of every row, as integers.
    async fn ints(&mut self, sql: String) -> Vec<i64> {
        let sql = AssertSqlSafe(sql);
        match self {
            Conn::Lite(c) => sqlx::query_scalar(sql).fetch_all(c).await,
            Conn::Pg(c) => sqlx::query_scalar(sql).fetch_all(c).await,
        }
        .expect("query")
    }
}

async fn fill(url: &str, sqlite: bool, devices: usize) {
    let mut c = Conn::open(url, sqlite).await;
    for s in fill_sql(sqlite, devices) {
        c.exec(s).await;
    }
    c.exec(if sqlite {
        "PRAGMA wal_checkpoint(TRUNCATE)".into()
    } else {
        "VACUUM ANALYZE devices, pack_streams, minute_packs".into()
    })
    .await;
}

/// Link-summary packs before the cut (the old day's).
async fn old_packs(url: &str, sqlite: bool) -> u64 {
    let sql = format!(
        "SELECT COUNT(*) FROM minute_packs WHERE minutes = 1 AND first_at_ms < {}",
        T0_MS + DAY_MS
    );
    Conn::open(url, sqlite).await.ints(sql).await[0] as u64
}

/// `count` new live devices, named `prefix-N` (written with SQL: the
/// store's `add_device` takes a write transaction each).
async fn live_devices(url: &str, sqlite: bool, prefix: &str, count: usize) -> Vec<Live> {
    let values: Vec<String> = (0..count)
        .map(|k| format!("('{prefix}-{k:05}', '{prefix}{k:060x}', {NOW_MS})"))
        .collect();
    let mut c = Conn::open(url, sqlite).await;
    c.exec(format!(
        "INSERT INTO devices (name, token_hash, created_at) VALUES {}",
        values.join(", ")
    ))
    .await;
    let ids = c
        .ints(format!(
            "SELECT id FROM devices WHERE name LIKE '{prefix}-%' ORDER BY id"
        ))
        .await;
    ids.into_iter()
        .enumerate()
        .map(|(k, id)| Live {
            id,
            seq: 0,
            minute: 0,
            rng: StdRng::seed_from_u64(k as u64),
        })
        .collect()
}

/// A live device's next upload: 5 minutes of its 3 links and heartbeats.
struct Live {
    id: i64,
    seq: u64,
    minute: i64,
    rng: StdRng,
}

impl Live {
    fn batch(&mut self) -> Vec<Record> {
        let mut out = Vec::with_capacity(20);
        for _ in 0..5 {
            self.minute += 1;
            let at = NOW_MS - DAY_MS + self.minute * 60_000;
            let mono = 3_600_000 + self.minute as u64 * 60_000;
            let mut push = |body: Body| {
                self.seq += 1;
                out.push(Record {
                    seq: self.seq,
                    seq_end: None,
                    at,
                    mono_ms: mono,
                    boot_id: format!("boot-live-{}", self.id),
                    body,
                });
            };
            for link in 0..LINKS.len() {
                let body = link_minutes(&mut self.rng, link);
                push(body);
            }
            push(Body::Heartbeat {
                online: true,
                count: 1,
            });
        }
        out
    }
}

/// Uploads at `per_s`, round-robin over the live devices (each device's
/// uploads in order), until `stop` says so; each upload's latency from when
/// it was due.
async fn uploads(
    store: Arc<dyn Store>,
    live: Vec<Live>,
    per_s: f64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Duration> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Duration>();
    let n = live.len();
    let period = Duration::from_secs_f64(n as f64 / per_s);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for (k, mut dev) in live.into_iter().enumerate() {
        let store = store.clone();
        let tx = tx.clone();
        let mut stop = stop.clone();
        let offset = Duration::from_secs_f64(k as f64 / per_s);
        tasks.push(tokio::spawn(async move {
            let mut due = start + offset;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    break;
                }
                let batch = dev.batch();
                store.ingest(dev.id, &batch, NOW_MS).await.expect("ingest");
                let _ = tx.send(due.elapsed());
                due += period;
            }
        }));
    }
    drop(tx);
    let _ = stop.changed().await;
    for t in tasks {
        t.await.expect("upload task");
    }
    let mut out = Vec::new();
    while let Ok(d) = rx.try_recv() {
        out.push(d);
    }
    out
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn line(label: &str, mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    let p99 = pct(&v, 0.99);
    println!(
        "  {label:<24} {:>7} uploads  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        thousands(v.len() as u64),
        ms(pct(&v, 0.5)),
        ms(p99),
        ms(v.last().copied().unwrap_or_default())
    );
    p99
}

async fn run(db: Db, devices: usize) {
    let sqlite = matches!(db, Db::Sqlite { .. });
    let url = db.url().to_string();
    let name = db.name();
    let store = store::open(&url).await.expect("open store");
    let t = Instant::now();
    fill(&url, sqlite, devices).await;
    let filled = t.elapsed();
    let before = old_packs(&url, sqlite).await;
    println!(
        "\n{name}: {} devices' day of link summaries: {} packs ({} entries) written in {:.0} s",
        thousands(devices as u64),
        thousands(before),
        thousands(before * 120),
        filled.as_secs_f64()
    );
    let live = live_devices(&url, sqlite, "live", LIVE_DEVICES).await;
    let per_s = devices as f64 / 300.0;
    println!(
        "  uploads meanwhile: {per_s:.0} a second over {} devices (the fleet's rate)",
        thousands(LIVE_DEVICES as u64)
    );
    // Baseline: uploads alone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let up = tokio::spawn(uploads(store.clone(), live, per_s, stop_rx));
    tokio::time::sleep(BASELINE).await;
    let _ = stop_tx.send(true);
    let base = up.await.expect("baseline uploads");
    let base_p99 = line("without expiry", base);
    // The same again (other devices, from their first upload), while the
    // day is expired.
    let live = live_devices(&url, sqlite, "live2", LIVE_DEVICES).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let up = tokio::spawn(uploads(store.clone(), live, per_s, stop_rx));
    let settings = RollupSettings {
        raw_retention_days: Some(14),
        ..RollupSettings::default()
    };
    let t = Instant::now();
    let deleted = maintainer::retention_once(&store, &settings, NOW_MS)
        .await
        .expect("retention");
    let took = t.elapsed();
    let _ = stop_tx.send(true);
    let during = up.await.expect("uploads during expiry");
    let p99 = line("while expiring", during);
    let left = old_packs(&url, sqlite).await;
    println!(
        "  expiry: {} entries deleted in {:.1} s ({} packs of the old day left); \
         p99 while expiring / without: {:.2} (target: p99 < 100 ms)",
        thousands(deleted),
        took.as_secs_f64(),
        thousands(left),
        ms(p99) / ms(base_p99).max(0.001),
    );
    drop(store);
    db.drop_db().await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench" || a == "--devices") {
        println!("expiry benchmark runs only under `cargo bench --bench expiry`");
        return;
    }
    let devices = match args.iter().position(|a| a == "--devices") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n >= 300 => n,
            _ => {
                eprintln!("--devices needs a number of at least 300, e.g. --devices 100000");
                std::process::exit(2);
            }
        },
        None => 100_000,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        run(Db::sqlite(), devices).await;
        match Db::postgres_from_env().await {
            Some(db) => run(db, devices).await,
            None => println!("\nPostgreSQL: skipped (set LINKWATCH_TEST_PG_URL)"),
        }
    });
}
