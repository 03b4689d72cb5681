//! Bytes on disk per device-day (issue 18): N devices × one day at the
//! agent's default shapes (3 links: per minute 3 `link_minutes` + 1
//! `heartbeat`, uploads every 5 minutes, plus 6 transitions a day), stored
//! through the real [`Store`] on SQLite and, when `LINKWATCH_TEST_PG_URL` is
//! set, on PostgreSQL (a fresh schema, dropped after). Beside it, the same
//! records in the baseline layout: one row per record in a replica of the
//! `records` table of migrations 0001 and 0003 with its three indexes
//! (today's layout before the compact store), in a database of its own.
//!
//! Sizes: SQLite from the `dbstat` virtual table (pages of each table and
//! index, free space inside pages included: what the file holds), after a
//! checkpoint; PostgreSQL from `pg_relation_size` (heap + TOAST) and
//! `pg_indexes_size` after `VACUUM ANALYZE`, and again after `VACUUM FULL`
//! (the live data: what space freed by moved rows comes to once reused). Only the objects that hold
//! records count (`records` and the compact tables); devices, marks and
//! roll-ups are left out. Ingest speed is printed as measured (debug builds
//! are several times slower than release).
//!
//! `cargo bench --bench storage -- --devices 50` (default 50 devices). Without
//! `--bench` or `--devices` (as under `cargo test --all-targets`) it prints one
//! line and returns.

mod common;

use common::db::Db;
use common::thousands;
use linkwatch::collector::store::{self, Store};
use linkwatch::wire::v1::{Body, Record};
use linkwatch::wire::{LinkKind, LinkState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{AssertSqlSafe, Connection, PgConnection, QueryBuilder, SqliteConnection};
use std::sync::Arc;
use std::time::Instant;

/// The simulated day starts here (2026-11-02 00:00 UTC).
const T0_MS: i64 = 1_793_577_600_000;
const MINUTES: u64 = 1_440;
/// Minutes per upload (the agent's default interval).
const UPLOAD_MINUTES: u64 = 5;
/// Minutes of the day with a transition (before that minute's summaries).
const TRANSITION_MINUTES: [u64; 6] = [95, 330, 331, 700, 1_010, 1_011];
const LINKS: [(&str, LinkKind); 3] = [
    ("enp1s0", LinkKind::Broadband),
    ("wlp2s0", LinkKind::Wifi),
    ("wwan0", LinkKind::Mobile),
];
/// The objects that hold records: the baseline's and the compact store's.
const RECORD_TABLES: [&str; 3] = ["records", "heartbeat_runs", "minute_packs"];

fn link_minutes(rng: &mut StdRng, link: usize) -> Body {
    let (name, kind) = LINKS[link];
    let sent: u32 = if link == 0 { 120 } else { 12 };
    let lost: u32 = if rng.random_bool(0.1) {
        rng.random_range(1..=3)
    } else {
        0
    };
    let base = [18.0, 25.0, 55.0][link];
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let p50: f64 = base + rng.random_range(0.0..15.0);
    let p95 = p50 * rng.random_range(1.1..2.0);
    let max = p95 * rng.random_range(1.0..1.6);
    Body::LinkMinutes {
        link: name.into(),
        kind,
        minutes: 1,
        sent,
        lost,
        rtt_p50_ms: Some(r2(p50)),
        rtt_p95_ms: Some(r2(p95)),
        rtt_max_ms: Some(r2(max)),
        bytes: u64::from(sent) * 168 + rng.random_range(0..400),
    }
}

fn transition(k: usize) -> Body {
    let (name, kind) = LINKS[1];
    if k % 3 == 2 {
        Body::Failover {
            from: Some(LINKS[0].0.into()),
            to: Some(LINKS[1].0.into()),
            cause: "current-down".into(),
            reason: "enp1s0 down: 5 of 5 probes lost".into(),
        }
    } else {
        let (from, to) = if k.is_multiple_of(2) {
            (LinkState::Up, LinkState::Degraded)
        } else {
            (LinkState::Degraded, LinkState::Up)
        };
        Body::LinkState {
            link: name.into(),
            kind,
            from,
            to,
            reason: Some("loss".into()),
        }
    }
}

/// A device's day as its uploads: each a batch of records in sequence order.
fn device_day(device: usize) -> Vec<Vec<Record>> {
    let mut rng = StdRng::seed_from_u64(device as u64);
    let boot = format!("{:08x}-0000-4000-8000-{:012x}", device, device);
    let mut seq = 0_u64;
    let mut uploads = Vec::with_capacity((MINUTES / UPLOAD_MINUTES) as usize);
    let mut batch = Vec::new();
    for m in 0..MINUTES {
        let at = T0_MS + (m as i64 + 1) * 60_000;
        let mono = 3_600_000 + (m + 1) * 60_000;
        let mut push = |at: i64, mono: u64, body: Body| {
            seq += 1;
            batch.push(Record {
                seq,
                seq_end: None,
                at,
                mono_ms: mono,
                boot_id: boot.clone(),
                body,
            });
        };
        if let Some(k) = TRANSITION_MINUTES.iter().position(|&t| t == m) {
            push(at - 30_000, mono - 30_000, transition(k));
        }
        for link in 0..LINKS.len() {
            push(at, mono, link_minutes(&mut rng, link));
        }
        push(
            at,
            mono,
            Body::Heartbeat {
                online: true,
                count: 1,
            },
        );
        if (m + 1) % UPLOAD_MINUTES == 0 {
            uploads.push(std::mem::take(&mut batch));
        }
    }
    uploads
}

/// Bytes of one database object: the table itself (TOAST included) or its indexes.
#[derive(Default, Clone, Copy)]
struct Size {
    table: u64,
    index: u64,
}

/// The record objects' sizes, by table.
type Sizes = Vec<(String, Size)>;

async fn sqlite_sizes(url: &str) -> Sizes {
    let mut c = SqliteConnection::connect(url).await.expect("open SQLite");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .expect("checkpoint");
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT m.name, m.type, m.tbl_name, SUM(s.pgsize) FROM dbstat s \
         JOIN sqlite_master m ON m.name = s.name GROUP BY m.name",
    )
    .fetch_all(&mut c)
    .await
    .expect("dbstat (SQLITE_ENABLE_DBSTAT_VTAB)");
    let mut out: Sizes = Vec::new();
    for (_, kind, table, bytes) in rows {
        if !RECORD_TABLES.contains(&table.as_str()) {
            continue;
        }
        let at = match out.iter().position(|(t, _)| *t == table) {
            Some(i) => i,
            None => {
                out.push((table.clone(), Size::default()));
                out.len() - 1
            }
        };
        if kind == "index" {
            out[at].1.index += bytes as u64;
        } else {
            out[at].1.table += bytes as u64;
        }
    }
    out
}

async fn pg_sizes(url: &str, full: bool) -> Sizes {
    let mut c = PgConnection::connect(url).await.expect("connect");
    let vacuum = if full {
        "VACUUM FULL ANALYZE"
    } else {
        "VACUUM ANALYZE"
    };
    sqlx::query(vacuum).execute(&mut c).await.expect("vacuum");
    let mut out = Vec::new();
    for t in RECORD_TABLES {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT pg_total_relation_size(c.oid) - pg_indexes_size(c.oid), pg_indexes_size(c.oid) \
             FROM pg_class c WHERE c.oid = to_regclass($1)",
        )
        .bind(t)
        .fetch_optional(&mut c)
        .await
        .expect("sizes");
        if let Some((table, index)) = row {
            out.push((
                t.to_string(),
                Size {
                    table: table as u64,
                    index: index as u64,
                },
            ));
        }
    }
    out
}

/// Today's layout before the compact store: `records` of 0001 and its
/// partial index of 0003 (the same statements in both databases).
const BASELINE_DDL: [&str; 4] = [
    "CREATE TABLE records (device_id BIGINT NOT NULL, seq BIGINT NOT NULL CHECK (seq >= 1), \
     seq_end BIGINT NOT NULL CHECK (seq_end >= seq), at_ms BIGINT NOT NULL, \
     mono_ms BIGINT NOT NULL, boot_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, \
     received_ms BIGINT NOT NULL, PRIMARY KEY (device_id, seq)) {without_rowid}",
    "CREATE INDEX records_device_at ON records (device_id, at_ms)",
    "CREATE INDEX records_kind_at ON records (kind, at_ms)",
    "CREATE INDEX records_device_transitions ON records (device_id, at_ms) \
     WHERE kind IN ('link_state', 'lifecycle', 'failover', 'facts')",
];

/// Store the day in the baseline layout, one row per record.
async fn baseline<DB>(conn: &mut DB::Connection, sqlite: bool, devices: usize)
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'a> DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for ddl in BASELINE_DDL {
        let ddl = ddl.replace("{without_rowid}", if sqlite { "WITHOUT ROWID" } else { "" });
        sqlx::query::<DB>(AssertSqlSafe(ddl))
            .execute(&mut *conn)
            .await
            .expect("baseline schema");
    }
    for d in 0..devices {
        for (u, upload) in device_day(d).into_iter().enumerate() {
            let received = T0_MS + (u as i64 + 1) * 300_000 + 2_000;
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO records (device_id, seq, seq_end, at_ms, mono_ms, boot_id, kind, \
                 body, received_ms) ",
            );
            q.push_values(upload, |mut b, r| {
                b.push_bind(d as i64 + 1)
                    .push_bind(r.seq as i64)
                    .push_bind(r.seq_end.unwrap_or(r.seq) as i64)
                    .push_bind(r.at)
                    .push_bind(r.mono_ms as i64)
                    .push_bind(r.boot_id.clone())
                    .push_bind(r.body.kind().to_string())
                    .push_bind(serde_json::to_string(&r.body).expect("body"))
                    .push_bind(received);
            });
            q.build()
                .execute(&mut *conn)
                .await
                .expect("baseline insert");
        }
    }
}

/// Ingest the day through the store, devices in parallel (uploads of one
/// device in order). Records per second.
async fn ingest(store: Arc<dyn Store>, devices: usize) -> f64 {
    let mut ids = Vec::with_capacity(devices);
    for d in 0..devices {
        let dev = store
            .add_device(&format!("bench-{d:05}"), None, &format!("{d:064x}"), T0_MS)
            .await
            .expect("add device");
        ids.push(dev.id);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut records = 0_usize;
    for (d, id) in ids.into_iter().enumerate() {
        let uploads = device_day(d);
        records += uploads.iter().map(Vec::len).sum::<usize>();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for (u, batch) in uploads.iter().enumerate() {
                let now = T0_MS + (u as i64 + 1) * 300_000 + 2_000;
                let ack = store.ingest(id, batch, now).await.expect("ingest");
                assert_eq!(ack.duplicates, 0);
                assert_eq!(ack.acked, batch.last().expect("records").seq);
            }
        }));
    }
    for t in tasks {
        t.await.expect("device task");
    }
    records as f64 / start.elapsed().as_secs_f64()
}

fn kb(bytes: u64, devices: usize) -> String {
    format!("{:.1} KB", bytes as f64 / devices as f64 / 1_000.0)
}

fn print(name: &str, devices: usize, base: &Sizes, store: &Sizes, per_s: f64) {
    println!(
        "\n{name}: {devices} devices × 1 day ({} records each), bytes on disk per device-day",
        thousands(device_day(0).iter().map(Vec::len).sum::<usize>() as u64)
    );
    println!(
        "  {:<28} {:>12} {:>12} {:>12}",
        "object", "table", "indexes", "total"
    );
    let mut totals = [0_u64; 2];
    for (label, sizes, total) in [("baseline", base, 0), ("store", store, 1)] {
        let mut sum = Size::default();
        for (t, s) in sizes {
            println!(
                "  {:<28} {:>12} {:>12} {:>12}",
                format!("{label}: {t}"),
                kb(s.table, devices),
                kb(s.index, devices),
                kb(s.table + s.index, devices)
            );
            sum.table += s.table;
            sum.index += s.index;
        }
        println!(
            "  {:<28} {:>12} {:>12} {:>12}",
            format!("{label}: all"),
            kb(sum.table, devices),
            kb(sum.index, devices),
            kb(sum.table + sum.index, devices)
        );
        totals[total] = sum.table + sum.index;
    }
    println!(
        "  store / baseline: {:.3} (target: ≤ 50 KB per device-day)",
        totals[1] as f64 / totals[0].max(1) as f64
    );
    println!(
        "  ingest through the store: {} records/s (this build)",
        thousands(per_s as u64)
    );
}

async fn run(db: Db, base: Db, devices: usize) {
    let name = db.name();
    let sqlite = matches!(db, Db::Sqlite { .. });
    let (url, base_url) = (db.url().to_string(), base.url().to_string());
    let store = store::open(&url).await.expect("open store");
    let per_s = ingest(store.clone(), devices).await;
    drop(store);
    let (sizes, base_sizes) = if sqlite {
        let mut c = SqliteConnection::connect(&format!("{base_url}?mode=rwc"))
            .await
            .expect("baseline database");
        baseline::<sqlx::Sqlite>(&mut c, true, devices).await;
        c.close().await.expect("close");
        (sqlite_sizes(&url).await, sqlite_sizes(&base_url).await)
    } else {
        let mut c = PgConnection::connect(&base_url).await.expect("baseline");
        baseline::<sqlx::Postgres>(&mut c, false, devices).await;
        c.close().await.expect("close");
        (
            pg_sizes(&url, false).await,
            pg_sizes(&base_url, false).await,
        )
    };
    print(name, devices, &base_sizes, &sizes, per_s);
    if !sqlite {
        // Rows deleted in the day (heartbeats moved into runs) leave space
        // that VACUUM only marks for reuse: the live data, as a long run of
        // days would reuse it, is what VACUUM FULL leaves.
        let (sizes, base_sizes) = (pg_sizes(&url, true).await, pg_sizes(&base_url, true).await);
        print(
            "PostgreSQL after VACUUM FULL",
            devices,
            &base_sizes,
            &sizes,
            per_s,
        );
    }
    db.drop_db().await;
    base.drop_db().await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench" || a == "--devices") {
        println!("storage benchmark runs only under `cargo bench --bench storage`");
        return;
    }
    let devices = match args.iter().position(|a| a == "--devices") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n > 0 => n,
            _ => {
                eprintln!("--devices needs a positive number, e.g. --devices 50");
                std::process::exit(2);
            }
        },
        None => 50,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        run(Db::sqlite(), Db::sqlite(), devices).await;
        if let (Some(db), Some(base)) =
            (Db::postgres_from_env().await, Db::postgres_from_env().await)
        {
            run(db, base, devices).await;
        } else {
            println!("\nPostgreSQL: skipped (set LINKWATCH_TEST_PG_URL)");
        }
    });
}
