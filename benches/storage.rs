//! Bytes on disk per device-day and ingest rate (issue 18): N devices × one
//! day at the agent's default shapes (3 links: per minute 3 `link_minutes` +
//! 1 `heartbeat`, uploads every 5 minutes, plus 6 transitions a day), stored
//! through the real [`Store`] on SQLite and, when `LINKWATCH_TEST_PG_URL` is
//! set, on PostgreSQL (a fresh schema, dropped after), twice each: with
//! packs (the compact store of migration 0007) and, as the baseline, with
//! packing turned off (`store::set_packing(false)`: every record a row of
//! `records`, the layout and statements from before the compact store), in
//! two alternating rounds on fresh databases; ingest rates are each
//! round's, and their ratio the sums'.
//!
//! Sizes (of the first round): SQLite from the `dbstat` virtual table
//! (pages of each table and index, free space inside pages included: what
//! the file holds), after a checkpoint; PostgreSQL from `pg_relation_size`
//! (heap + TOAST) and `pg_indexes_size` after `VACUUM ANALYZE`, and again
//! after `VACUUM FULL` (the live data: what the space of the versions that
//! updates in place leave comes to once reused). Only the objects that hold
//! records count (`records`, `minute_packs` and its `pack_streams`); devices, marks and
//! roll-ups are left out. Packs are measured as the maintainer leaves them
//! half an hour after the day (sealed: each one segment). Run it in a release build (`cargo bench`): debug
//! builds are several times slower.
//!
//! `cargo bench --bench storage -- --devices 50` (default 50 devices). Without
//! `--bench` or `--devices` (as under `cargo test --all-targets`) it prints one
//! line and returns.

mod common;

use common::db::Db;
use common::shapes::{LINKS, link_minutes};
use common::thousands;
use linkwatch::collector::store::{self, Store};
use linkwatch::wire::LinkState;
use linkwatch::wire::v1::{Body, Record};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::sync::Arc;
use std::time::Instant;

/// The simulated day starts here (2026-11-02 00:00 UTC).
const T0_MS: i64 = 1_793_577_600_000;
const MINUTES: u64 = 1_440;
/// Minutes per upload (the agent's default interval).
const UPLOAD_MINUTES: u64 = 5;
/// Minutes of the day with a transition (before that minute's summaries).
const TRANSITION_MINUTES: [u64; 6] = [95, 330, 331, 700, 1_010, 1_011];
/// The objects that hold records.
const RECORD_TABLES: [&str; 3] = ["records", "minute_packs", "pack_streams"];

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
    // Only the record tables (of this schema, on the search path).
    let vacuum = if full {
        "VACUUM FULL ANALYZE records, minute_packs, pack_streams"
    } else {
        "VACUUM ANALYZE records, minute_packs, pack_streams"
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

fn print(name: &str, devices: usize, base: &Sizes, packed: &Sizes) {
    println!(
        "\n{name}: {devices} devices × 1 day ({} records each), bytes on disk per device-day",
        thousands(device_day(0).iter().map(Vec::len).sum::<usize>() as u64)
    );
    println!(
        "  {:<28} {:>12} {:>12} {:>12}",
        "object", "table", "indexes", "total"
    );
    let mut totals = [0_u64; 2];
    for (i, (label, sizes)) in [("baseline", base), ("packs", packed)]
        .into_iter()
        .enumerate()
    {
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
        totals[i] = sum.table + sum.index;
    }
    println!(
        "  packs / baseline: {:.3}; packs: {} per device-day (target: ≤ 50 KB)",
        totals[1] as f64 / totals[0].max(1) as f64,
        kb(totals[1], devices)
    );
}

/// Roll the day up as the maintainer does (default schedules, nothing
/// deleted) and print the roll-up rows' bytes (`rollup_days` with its
/// indexes): per row, and the hour rows of one device-day, which
/// `hour_retention_days` keeps. The rows' size does not depend on packing.
async fn rollup_figures(store: &Arc<dyn Store>, url: &str, sqlite: bool) {
    use linkwatch::collector::maintainer;
    use linkwatch::config::collector::RollupSettings;
    let settings = RollupSettings {
        raw_retention_days: None,
        ..RollupSettings::default()
    };
    let schedules = settings.schedules.len() as u64;
    maintainer::rollups_once(store, &settings, T0_MS + 3 * 86_400_000)
        .await
        .expect("roll-ups");
    let count = "SELECT COUNT(*), SUM(CASE WHEN schedule LIKE '%/hour' THEN 1 ELSE 0 END) \
                 FROM rollup_days";
    let (rows, bytes): ((i64, i64), u64) = if sqlite {
        let mut c = SqliteConnection::connect(url).await.expect("open SQLite");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut c)
            .await
            .expect("checkpoint");
        let rows = sqlx::query_as(count)
            .fetch_one(&mut c)
            .await
            .expect("count");
        let bytes: i64 = sqlx::query_scalar(
            "SELECT SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name \
             WHERE m.tbl_name = 'rollup_days'",
        )
        .fetch_one(&mut c)
        .await
        .expect("dbstat");
        (rows, bytes as u64)
    } else {
        let mut c = PgConnection::connect(url).await.expect("connect");
        sqlx::query("VACUUM FULL ANALYZE rollup_days")
            .execute(&mut c)
            .await
            .expect("vacuum");
        let rows = sqlx::query_as(count)
            .fetch_one(&mut c)
            .await
            .expect("count");
        let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('rollup_days')")
            .fetch_one(&mut c)
            .await
            .expect("size");
        (rows, bytes as u64)
    };
    let per_row = bytes as f64 / rows.0.max(1) as f64;
    println!(
        "  roll-ups: {} rows ({} hour rows), {per_row:.0} B a row with its indexes; \
         the hour rows of a device-day ({schedules} schedules × 24): {:.1} KB",
        thousands(rows.0 as u64),
        thousands(rows.1 as u64),
        per_row * 24.0 * schedules as f64 / 1_000.0,
    );
}

/// One database through the store: sizes (after `VACUUM`, and for
/// PostgreSQL after `VACUUM FULL` too) and records/s.
async fn measure(db: Db, packing: bool, devices: usize) -> (Sizes, Option<Sizes>, f64) {
    store::set_packing(packing);
    let url = db.url().to_string();
    let store = store::open(&url).await.expect("open store");
    let per_s = ingest(store.clone(), devices).await;
    if packing {
        // Half an hour after the day, the maintainer has sealed its packs
        // (each upload appended a segment; a sealed pack is one).
        let at = T0_MS + 86_400_000 + 1_800_000;
        linkwatch::collector::maintainer::seal_once(&store, at)
            .await
            .expect("seal packs");
        rollup_figures(&store, &url, matches!(db, Db::Sqlite { .. })).await;
    }
    drop(store);
    let out = if matches!(db, Db::Sqlite { .. }) {
        (sqlite_sizes(&url).await, None, per_s)
    } else {
        (
            pg_sizes(&url, false).await,
            Some(pg_sizes(&url, true).await),
            per_s,
        )
    };
    db.drop_db().await;
    out
}

async fn run(sqlite: bool, devices: usize) {
    let fresh = async || {
        if sqlite {
            Some(Db::sqlite())
        } else {
            Db::postgres_from_env().await
        }
    };
    let name = if sqlite { "SQLite" } else { "PostgreSQL" };
    let mut rates = [Vec::new(), Vec::new()];
    let mut first: Vec<(Sizes, Option<Sizes>)> = Vec::new();
    for round in 0..2 {
        for packing in [false, true] {
            let Some(db) = fresh().await else {
                println!("\nPostgreSQL: skipped (set LINKWATCH_TEST_PG_URL)");
                return;
            };
            let (sizes, full, per_s) = measure(db, packing, devices).await;
            rates[usize::from(packing)].push(per_s);
            if round == 0 {
                first.push((sizes, full));
            }
        }
    }
    store::set_packing(true);
    print(name, devices, &first[0].0, &first[1].0);
    if let (Some(base), Some(packed)) = (&first[0].1, &first[1].1) {
        print(&format!("{name} after VACUUM FULL"), devices, base, packed);
    }
    let show = |v: &[f64]| {
        v.iter()
            .map(|r| thousands(*r as u64))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    println!(
        "  ingest, records/s by round: baseline {}; packs {}; packs / baseline: {:.3} \
         (target: ≥ 0.9)",
        show(&rates[0]),
        show(&rates[1]),
        sum(&rates[1]) / sum(&rates[0])
    );
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
        run(true, devices).await;
        run(false, devices).await;
    });
}
