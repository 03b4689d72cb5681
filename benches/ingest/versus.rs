//! `versus`: ingest throughput and latency at 64 connections, this
//! revision's collector binary against an earlier one's, in one run. Each
//! binary is a child process on its own database (SQLite file, or a fresh
//! PostgreSQL schema when `LINKWATCH_TEST_PG_URL` is set) with 128 devices
//! registered through its own `device add`. Closed loop: 64 connections
//! each send their next one-minute batch (3 `link_minutes` + 1
//! `heartbeat`, gzip'd) as soon as the last is answered, [`PER_RUN`]
//! batches a run. The two binaries take turns, [`ROUNDS`] runs each, on
//! databases that grow from run to run alike; the verdict compares medians
//! (target: throughput and p99 no worse than 10 %). Each run also prints
//! the CPU a batch cost the collector (its /proc counters) and the rest of
//! the machine without the load generator (the database server on
//! PostgreSQL).
//!
//! The earlier binary comes from `benches/ingest/build-old.sh [REV]`
//! (default 5d874c5, the store before packs) and is named by `LW_OLD_BIN`.
//! The load generator shares the machine's cores with the collector (and
//! with PostgreSQL), the same for both.

use super::{Fleet, cpu_ticks, ms, post_batch, quantile, thousands};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::header::HeaderValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NEW_BIN: &str = env!("CARGO_BIN_EXE_linkwatch");
const CONNECTIONS: usize = 64;
const DEVICES: usize = 128;
const PER_RUN: usize = 40_000;
const ROUNDS: usize = 3;

/// One binary with its database and its fleet.
struct Side {
    label: String,
    bin: String,
    db: super::Db,
    fleet: Fleet,
}

impl Side {
    async fn new(label: String, bin: String, pg: Option<&str>) -> Side {
        let db = match pg {
            Some(base) => super::Db::postgres(base).await,
            None => super::Db::sqlite(),
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = super::attack::collector_config(dir.path(), db.url(), "warn");
        let mut names = Vec::with_capacity(DEVICES);
        let mut tokens = Vec::with_capacity(DEVICES);
        for i in 0..DEVICES {
            let name = format!("bench-gw-{i:06}");
            let out = tokio::process::Command::new(&bin)
                .args(["device", "add", &name, "--config"])
                .arg(&config)
                .env_remove("RUST_LOG")
                .output()
                .await
                .expect("run `linkwatch device add`");
            assert!(
                out.status.success(),
                "{bin} device add {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let token = String::from_utf8(out.stdout).expect("a UTF-8 token");
            tokens.push(token.trim().to_string());
            names.push(name);
        }
        let mut fleet = Fleet::from_tokens(names, &tokens);
        // Earlier revisions refuse the `backlog` field (unknown then).
        fleet.backlog = false;
        Side {
            label,
            bin,
            db,
            fleet,
        }
    }
}

/// One closed-loop run's figures.
struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: usize,
    /// CPU milliseconds a batch: the collector's, and the rest of the
    /// machine's without the load generator (the database server on
    /// PostgreSQL, background noise).
    collector_ms: f64,
    others_ms: f64,
}

async fn one_run(side: &mut Side, rng: &mut StdRng) -> Run {
    let dir = tempfile::tempdir().expect("temporary directory");
    let collector = super::attack::Child::start_bin(&side.bin, dir.path(), side.db.url()).await;
    let url = reqwest::Url::parse(&format!("http://{}/api/v1/ingest", collector.addr))
        .expect("ingest URL");
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    // A short warm-up (connections, caches), then the measured batches.
    let warm = tokio::task::block_in_place(|| side.fleet.requests(2_000, rng));
    closed_loop(&client, &url, warm).await;
    let requests = tokio::task::block_in_place(|| side.fleet.requests(PER_RUN, rng));
    let (ticks0, collector0) = (cpu_ticks(), collector.cpu_seconds());
    let mut run = closed_loop(&client, &url, requests).await;
    let (ticks1, collector1) = (cpu_ticks(), collector.cpu_seconds());
    collector.stop().await;
    // Ticks are USER_HZ, which Linux keeps at 100 for user space.
    if let (Some(a), Some(b)) = (ticks0, ticks1) {
        let busy = b.busy.saturating_sub(a.busy) as f64 / 100.0;
        let own = b.own.saturating_sub(a.own) as f64 / 100.0;
        let collector = collector1 - collector0;
        let per_batch = 1000.0 / PER_RUN as f64;
        run.collector_ms = collector * per_batch;
        run.others_ms = (busy - own - collector).max(0.0) * per_batch;
    }
    run
}

/// Send every request over [`CONNECTIONS`] connections, each sending its
/// next as soon as the last is answered.
async fn closed_loop(
    client: &reqwest::Client,
    url: &reqwest::Url,
    requests: Vec<(HeaderValue, Vec<u8>)>,
) -> Run {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, url, requests, next) =
                (client.clone(), url.clone(), requests.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((auth, body)) = requests.get(i) else {
                        break;
                    };
                    let t0 = Instant::now();
                    let sent = post_batch(&client, url.clone(), auth.clone(), body.clone()).await;
                    let ok = match sent {
                        Ok(resp) => resp.status().as_u16() == 200 && resp.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    latencies.push(t0.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests.len());
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.expect("a load worker");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Run {
        rate: (latencies.len() - errors) as f64 / elapsed.as_secs_f64(),
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        errors,
        collector_ms: 0.0,
        others_ms: 0.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(super) async fn bench_versus() {
    let Ok(old) = std::env::var("LW_OLD_BIN") else {
        println!(
            "== versus: skipped: set LW_OLD_BIN to an earlier collector binary \
             (benches/ingest/build-old.sh [REV] builds one and prints its path)"
        );
        return;
    };
    let pg = std::env::var("LINKWATCH_TEST_PG_URL").ok();
    let mut bases: Vec<Option<&str>> = vec![None];
    if let Some(p) = pg.as_deref() {
        bases.push(Some(p));
    }
    for base in bases {
        let db_name = if base.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        println!(
            "== versus on {db_name}: {CONNECTIONS} connections, closed loop, {} one-minute \
             batches a run ({DEVICES} devices), {ROUNDS} runs each in turns",
            thousands(PER_RUN as u64)
        );
        let mut sides = [
            Side::new(format!("old ({old})"), old.clone(), base).await,
            Side::new("new (this revision)".into(), NEW_BIN.into(), base).await,
        ];
        let mut rng = StdRng::seed_from_u64(18);
        let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        for round in 0..ROUNDS {
            // Turning order: old first in even rounds, new first in odd ones.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for k in order {
                let r = one_run(&mut sides[k], &mut rng).await;
                println!(
                    "  round {} {:<4} {:>7.0} req/s, p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms, \
                     {} errors; CPU a batch: collector {:.3} ms, others {:.3} ms",
                    round + 1,
                    sides[k].label.split(' ').next().unwrap_or(""),
                    r.rate,
                    ms(r.p50),
                    ms(r.p99),
                    ms(r.max),
                    r.errors,
                    r.collector_ms,
                    r.others_ms
                );
                runs[k].push(r);
            }
        }
        let rate = |k: usize| median(runs[k].iter().map(|r| r.rate).collect());
        let p99 = |k: usize| median(runs[k].iter().map(|r| ms(r.p99)).collect());
        let (r_old, r_new, p_old, p_new) = (rate(0), rate(1), p99(0), p99(1));
        let cpu = |k: usize| {
            (
                median(runs[k].iter().map(|r| r.collector_ms).collect()),
                median(runs[k].iter().map(|r| r.others_ms).collect()),
            )
        };
        let ((c_old, o_old), (c_new, o_new)) = (cpu(0), cpu(1));
        println!(
            "  CPU a batch, medians: collector old {c_old:.3} ms, new {c_new:.3} ms; others \
             (the database server on PostgreSQL) old {o_old:.3} ms, new {o_new:.3} ms"
        );
        println!(
            "  medians: old {r_old:.0} req/s p99 {p_old:.1} ms; new {r_new:.0} req/s p99 \
             {p_new:.1} ms; throughput new/old {:.2}, p99 new/old {:.2} (target: throughput \
             >= 0.90, p99 <= 1.10) -> {}",
            r_new / r_old,
            p_new / p_old,
            if r_new >= 0.9 * r_old && p_new <= 1.1 * p_old {
                "met"
            } else {
                "NOT met"
            }
        );
        for s in sides {
            s.db.drop_db().await;
        }
    }
}
