//! Two collector replicas on one PostgreSQL, as an operator runs them: two
//! real `linkwatch collector` processes on one schema, behind nothing. Each
//! periodic job runs on exactly one of them (each device-day of roll-ups is
//! computed once: the device-days the two replicas' metrics say they computed
//! add up to the day timelines stored, one per device-day, and stay so
//! interval after interval), and when the replica leading the jobs is killed
//! (SIGKILL: no clean shutdown) the other takes over within one interval and
//! computes the late data that arrives next. Needs `LINKWATCH_TEST_PG_URL`
//! (skipped with a message otherwise); SQLite has one process, which always
//! leads.

mod common;

use common::alerts::BinCollector;
use common::db::TestDb;
use common::records::Recs;
use linkwatch::collector::rollup;
use linkwatch::collector::store::Store;
use linkwatch::wire::{LinkKind, LinkState};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// The replicas' `rollup_interval`.
const INTERVAL: Duration = Duration::from_secs(2);
/// Scheduling slack on a busy test machine, on top of one interval.
const SLACK: Duration = Duration::from_millis(1500);
const DEVICES: usize = 12;
const DAYS: i64 = 3;

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// One running `linkwatch collector`; killed when dropped.
struct Replica(BinCollector);

impl std::ops::Deref for Replica {
    type Target = BinCollector;
    fn deref(&self) -> &BinCollector {
        &self.0
    }
}

impl std::ops::DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut BinCollector {
        &mut self.0
    }
}

impl Replica {
    async fn start(cfg: &str) -> Replica {
        Replica(BinCollector::start(std::path::Path::new(cfg)).await)
    }

    /// Its metrics: job leadership and device-days computed.
    async fn metrics(&self) -> Metrics {
        let text = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |prefix: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
        };
        Metrics {
            rollups: value("linkwatch_collector_job_leader{job=\"rollups\"} ") == 1.0,
            retention: value("linkwatch_collector_job_leader{job=\"retention\"} ") == 1.0,
            days: value("linkwatch_collector_rollup_days_computed_total ") as i64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Metrics {
    rollups: bool,
    retention: bool,
    days: i64,
}

/// A device's days: online with a heartbeat every 10 minutes from the
/// start of the first day to the end of the last.
fn days_of(first_day: i64, days: i64, boot: &str) -> Vec<linkwatch::wire::v1::Record> {
    let mut r = Recs::new();
    r.start(first_day, boot);
    r.link(
        first_day,
        "eth0",
        LinkKind::Broadband,
        LinkState::Down,
        LinkState::Up,
    );
    let mut t = first_day + 10 * MIN;
    while t < first_day + days * DAY {
        r.heartbeat(t, true);
        t += 10 * MIN;
    }
    r.out
}

async fn count(url: &str, sql: &'static str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    n
}

/// Device-days stored (one day timeline per device-day computed).
async fn stored_days(url: &str) -> i64 {
    count(url, "SELECT count(*) FROM rollup_timelines").await
}

async fn due(store: &dyn Store) -> usize {
    store
        .dirty_due(rollup::hours_settled_before(now()), 100_000)
        .await
        .unwrap()
        .len()
}

/// Wait until `f` holds, polling every 100 ms; panics naming `what` at the
/// deadline.
async fn until<F, Fut>(deadline: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    while !f().await {
        assert!(Instant::now() < end, "timed out after {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_compute_each_rollup_once_and_take_over_when_killed() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    db.run(scenario).await;
}

async fn scenario(db: Arc<TestDb>) {
    let url = db.url().to_string();
    let store = db.open().await;
    let tz = rollup::day_tz();
    let today = rollup::day_start(&tz, now());
    let first_day = today - DAYS * DAY;
    let mut ids = Vec::new();
    for i in 0..DEVICES {
        let d = store
            .add_device(
                &format!("gw-{i:02}"),
                None,
                &format!("hash-{i}"),
                first_day - DAY,
            )
            .await
            .unwrap();
        for chunk in days_of(first_day, DAYS, &format!("boot-{i}")).chunks(500) {
            store.ingest(d.id, chunk, now()).await.unwrap();
        }
        ids.push(d.id);
    }
    assert_eq!(due(store.as_ref()).await, DEVICES);

    let cfg = db.dir().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = {url:?}\nlog_format = \"text\"\n\
             rollup_interval = \"{}s\"\n",
            INTERVAL.as_secs()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let (a, b) = tokio::join!(Replica::start(&cfg), Replica::start(&cfg));
    let mut replicas = [a, b];

    // Every device-day computed, each by one replica only.
    until(
        Duration::from_secs(180),
        "every device's days rolled up",
        || async { due(store.as_ref()).await == 0 },
    )
    .await;
    let sum = |m: &[Metrics]| m.iter().map(|m| m.days).sum::<i64>();
    // The metrics follow each round's end: wait for them to catch up.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let m = [replicas[0].metrics().await, replicas[1].metrics().await];
        let stored = stored_days(&url).await;
        if sum(&m) == stored {
            break;
        }
        assert!(
            Instant::now() < end,
            "computed device-days {m:?} never matched the {stored} stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = stored_days(&url).await;
    assert!(stored >= (DEVICES as i64) * DAYS, "{stored} device-days");
    // Over further rounds, nobody computes them again.
    tokio::time::sleep(INTERVAL * 3).await;
    let m = [replicas[0].metrics().await, replicas[1].metrics().await];
    assert_eq!(sum(&m), stored, "{m:?}");
    assert_eq!(stored_days(&url).await, stored);
    // One leader per job; the other replica computed nothing.
    assert_eq!(m.iter().filter(|m| m.rollups).count(), 1, "{m:?}");
    assert_eq!(m.iter().filter(|m| m.retention).count(), 1, "{m:?}");
    let leader = m.iter().position(|m| m.rollups).unwrap();
    let other = 1 - leader;
    assert_eq!(m[other].days, 0, "{m:?}");
    assert!(
        replicas[leader].log().contains("leads job `rollups`"),
        "{}",
        replicas[leader].log()
    );

    // The leader dies without a word; the other leads both jobs within one interval.
    replicas[leader].child.start_kill().unwrap();
    let killed = Instant::now();
    replicas[leader].child.wait().await.unwrap();
    until(INTERVAL + SLACK, "the other replica takes over", || async {
        let m = replicas[other].metrics().await;
        m.rollups && m.retention
    })
    .await;
    let took = killed.elapsed();
    eprintln!("take-over after SIGKILL: {took:?} (interval {INTERVAL:?})");
    assert!(
        replicas[other].log().contains("leads job `rollups`"),
        "{}",
        replicas[other].log()
    );

    // Late data for a settled day: rolled up by the new leader.
    let late_day = today - 2 * DAY;
    for (i, id) in ids.iter().take(3).enumerate() {
        let mut r = Recs::new();
        r.start(late_day, &format!("boot-{i}"));
        r.minutes(
            late_day + 60 * MIN,
            "eth0",
            LinkKind::Broadband,
            60,
            600,
            6,
            Some(20.0),
        );
        // After the device's own sequence numbers.
        let after = days_of(first_day, DAYS, "x").len() as u64;
        let mut late = r.out.split_off(1);
        late[0].seq = after + 1;
        store.ingest(*id, &late, now()).await.unwrap();
    }
    until(
        Duration::from_secs(60),
        "the late days rolled up",
        || async { due(store.as_ref()).await == 0 },
    )
    .await;
    until(
        Duration::from_secs(30),
        "the new leader counts them",
        || async { replicas[other].metrics().await.days >= 3 },
    )
    .await;
    assert_eq!(stored_days(&url).await, stored);

    // The database shows who holds which job; when the holder's lock
    // session dies under a live replica, a third replica takes over within
    // an interval and the old holder stops counting itself leader.
    let third = Replica::start(&cfg).await;
    let pid = |r: &Replica| r.child.id().unwrap();
    let holder = replicas[other].child.id().unwrap();
    let sessions = holding(&url, holder).await;
    assert_eq!(sessions.iter().map(|s| s.1).sum::<i64>(), 2, "{sessions:?}");
    assert!(holding(&url, pid(&third)).await.is_empty());
    let mut conn = PgConnection::connect(&url).await.unwrap();
    for (backend, _) in &sessions {
        let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(*backend)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(done);
    }
    conn.close().await.unwrap();
    // Within an interval each job has one leader again (either replica: the
    // old holder may win one back on a new session), and what each replica
    // claims is what its live session holds.
    let live = [&replicas[other], &third];
    let agree = || async {
        let m = [live[0].metrics().await, live[1].metrics().await];
        let mut held = [0, 0];
        for (k, r) in live.iter().enumerate() {
            held[k] = holding(&url, pid(r)).await.iter().map(|s| s.1).sum::<i64>();
        }
        let claims = |m: &Metrics| i64::from(m.rollups) + i64::from(m.retention);
        let ok = m.iter().filter(|m| m.rollups).count() == 1
            && m.iter().filter(|m| m.retention).count() == 1
            && claims(&m[0]) == held[0]
            && claims(&m[1]) == held[1];
        (ok, format!("{m:?}, locks held {held:?}"))
    };
    let end = Instant::now() + INTERVAL + SLACK;
    loop {
        let (ok, state) = agree().await;
        if ok {
            break;
        }
        assert!(
            Instant::now() < end,
            "no single leader per job within an interval: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        replicas[other].log().contains("lock connection failed"),
        "{}",
        replicas[other].log()
    );
    // And it stays so.
    tokio::time::sleep(INTERVAL * 2).await;
    let (ok, state) = agree().await;
    assert!(ok, "{state}");
    let _ = replicas[other].child.start_kill();
}

/// Backends of the replica with process id `pid` holding advisory locks,
/// with how many each holds (as an operator would look it up).
async fn holding(url: &str, pid: u32) -> Vec<(i32, i64)> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT a.pid, count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1 \
         GROUP BY a.pid",
    )
    .bind(format!("linkwatch-collector %/{pid}"))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows
}
