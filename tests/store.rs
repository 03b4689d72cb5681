//! Storage adapter tests: every scenario runs against SQLite (a fresh file in
//! a temporary directory) and against PostgreSQL (a fresh schema in the
//! database `LINKWATCH_TEST_PG_URL` names; skipped with a message when unset).

mod common;

use common::db::{TestDb, on_both};
use linkwatch::collector::access::{Branch, Level, Role};
use linkwatch::collector::store::{self, LastSeen, Office, Store, StoreError};
use linkwatch::wire::v1::{Ack, Backlog, Body, Record};
use linkwatch::wire::{LinkKind, LinkState};
use sqlx::Connection;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// 2026-09-13T12:26:40Z in ms.
const T0: i64 = 1_789_302_400_000;
const NOW: i64 = T0 + 86_400_000;

on_both!(
    devices_and_offices,
    ingest_is_idempotent,
    acked_waits_for_gaps_and_follows_folded_records,
    records_read_back_in_order,
    concurrent_overlapping_batches,
    devices_do_not_interfere,
    data_survives_reopening,
    failing_batches_do_not_undo_concurrent_ones,
    grouped_batches_answer_as_one_by_one,
    ingest_throughput,
    api_tokens,
    last_seen_follows_uploads,
    catalog_version_follows_the_catalog_not_uploads,
    storage_figures_match_what_is_stored,
    bulk_transitions_and_marks,
);

// ---------------------------------------------------------------------------
// Helpers

fn office(code: &str, name: &str) -> Office {
    Office {
        code: code.into(),
        name: name.into(),
        division: "Dhaka".into(),
        district: "Dhaka".into(),
        upazila: "Savar".into(),
        hours: None,
    }
}

/// A record with a body that depends on `seq` (all body types appear).
fn rec(seq: u64) -> Record {
    let body = match seq % 5 {
        0 => Body::LinkState {
            link: "eth0".into(),
            kind: LinkKind::Broadband,
            from: LinkState::Down,
            to: LinkState::Up,
            reason: Some("carrier".into()),
        },
        1 => Body::LinkMinutes {
            link: "wwan0".into(),
            kind: LinkKind::Mobile,
            minutes: 1,
            sent: 60,
            lost: 3,
            rtt_p50_ms: Some(41.25),
            rtt_p95_ms: Some(120.5),
            rtt_max_ms: None,
            bytes: 5_040,
        },
        2 => Body::Failover {
            from: Some("eth0".into()),
            to: Some("wwan0".into()),
            cause: "link_down".into(),
            reason: "eth0 down for 30 s".into(),
        },
        3 => Body::Heartbeat {
            online: true,
            count: 1,
        },
        _ => Body::Facts {
            hostname: "uno-savar".into(),
            os: "Debian 12".into(),
            agent_version: "0.1.0".into(),
            links: vec![],
        },
    };
    Record {
        seq,
        seq_end: None,
        at: T0 + seq as i64 * 1_000,
        mono_ms: seq * 1_000,
        boot_id: "3f1c2b9e-0d7a-4a53-9a61-5bb0f2c1e001".into(),
        body,
    }
}

/// Records `seqs`, one each.
fn recs(seqs: impl IntoIterator<Item = u64>) -> Vec<Record> {
    seqs.into_iter().map(rec).collect()
}

/// A folded heartbeat record standing for `seq..=seq_end`.
fn folded(seq: u64, seq_end: u64) -> Record {
    Record {
        seq_end: Some(seq_end),
        body: Body::Heartbeat {
            online: true,
            count: (seq_end - seq + 1) as u32,
        },
        ..rec(seq)
    }
}

fn ack(acked: u64, stored: u32, duplicates: u32) -> Ack {
    Ack {
        acked,
        stored,
        duplicates,
    }
}

async fn new_device(s: &dyn Store, name: &str) -> i64 {
    s.add_device(name, None, &format!("hash-of-{name}"), NOW)
        .await
        .unwrap()
        .id
}

// ---------------------------------------------------------------------------
// Scenarios

async fn devices_and_offices(db: Arc<TestDb>) {
    let s = db.open().await;
    s.ping().await.unwrap();
    assert!(s.list_offices().await.unwrap().is_empty());
    assert!(s.list_devices().await.unwrap().is_empty());

    // Offices: insert, then update by code (the last of duplicate codes wins).
    let written = s
        .upsert_offices(&[
            office("dhk-savar-uno", "UNO Savar"),
            office("dhk-ac-land", "AC Land"),
        ])
        .await
        .unwrap();
    assert_eq!(written, 2);
    let written = s
        .upsert_offices(&[
            office("dhk-savar-uno", "first"),
            office("dhk-savar-uno", "Upazila Nirbahi Office, Savar"),
            office("ctg-uno", "UNO Chattogram"),
        ])
        .await
        .unwrap();
    assert_eq!(written, 2);
    assert_eq!(s.upsert_offices(&[]).await.unwrap(), 0);
    let offices = s.list_offices().await.unwrap();
    assert_eq!(
        offices,
        vec![
            office("ctg-uno", "UNO Chattogram"),
            office("dhk-ac-land", "AC Land"),
            office("dhk-savar-uno", "Upazila Nirbahi Office, Savar"),
        ]
    );

    // Devices.
    let a = s
        .add_device("savar-gw1", Some("dhk-savar-uno"), "hash-a", NOW)
        .await
        .unwrap();
    assert_eq!(a.name, "savar-gw1");
    assert_eq!(a.office.as_deref(), Some("dhk-savar-uno"));
    assert!(!a.revoked);
    assert_eq!(a.acked, 0);
    assert_eq!(a.created_at_ms, NOW);
    let b = s
        .add_device("laptop-17", None, "hash-b", NOW + 1)
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(b.office, None);

    match s.add_device("savar-gw1", None, "hash-c", NOW).await {
        Err(StoreError::DeviceExists(n)) => assert_eq!(n, "savar-gw1"),
        other => panic!("expected DeviceExists, got {other:?}"),
    }
    match s
        .add_device("laptop-18", Some("nowhere"), "hash-d", NOW)
        .await
    {
        Err(StoreError::UnknownOffice(c)) => assert_eq!(c, "nowhere"),
        other => panic!("expected UnknownOffice, got {other:?}"),
    }
    // A taken token hash is an error, and not a "device exists".
    match s.add_device("laptop-19", None, "hash-a", NOW).await {
        Err(StoreError::Query { .. }) => {}
        other => panic!("expected a query error, got {other:?}"),
    }
    assert_eq!(
        s.list_devices()
            .await
            .unwrap()
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["laptop-17", "savar-gw1"]
    );

    // Lookups.
    assert_eq!(s.device_by_token("hash-a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.device_by_token("hash-x").await.unwrap(), None);
    assert_eq!(
        s.device_by_name("laptop-17").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(s.device_by_name("laptop-99").await.unwrap(), None);

    // Revocation: the token still finds the device, marked revoked.
    assert!(s.revoke_device("savar-gw1").await.unwrap());
    assert!(s.revoke_device("savar-gw1").await.unwrap());
    assert!(!s.revoke_device("no-such-device").await.unwrap());
    let revoked = s.device_by_token("hash-a").await.unwrap().unwrap();
    assert!(revoked.revoked);
    assert_eq!(revoked.id, a.id);
    assert!(
        !s.device_by_name("laptop-17")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    // The list gives what the lookups give, field for field (SQLite builds
    // it as one JSON text), whatever a name holds.
    s.add_device(
        "অফিস \"q\" \\ <script>\t",
        Some("ctg-uno"),
        "hash-o",
        NOW + 2,
    )
    .await
    .unwrap();
    let listed = s.list_devices().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().any(|d| d.revoked));
    for d in &listed {
        assert_eq!(Some(d), s.device_by_name(&d.name).await.unwrap().as_ref());
    }

    // Rotation: a new hash, the revocation lifted, the old hash finds nothing,
    // the same device (id) keeps its history.
    assert!(s.rotate_device_token("savar-gw1", "hash-a2").await.unwrap());
    assert_eq!(s.device_by_token("hash-a").await.unwrap(), None);
    let rotated = s.device_by_token("hash-a2").await.unwrap().unwrap();
    assert_eq!(rotated.id, a.id);
    assert!(!rotated.revoked);
    assert!(
        !s.rotate_device_token("no-such-device", "hash-z")
            .await
            .unwrap()
    );
    assert_eq!(s.device_by_token("hash-z").await.unwrap(), None);
}

async fn ingest_is_idempotent(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    let batch = recs(1..=50);
    assert_eq!(s.ingest(d, &batch, NOW).await.unwrap(), ack(50, 50, 0));
    assert_eq!(s.ingest(d, &batch, NOW).await.unwrap(), ack(50, 0, 50));
    // Partly new.
    assert_eq!(
        s.ingest(d, &recs(41..=60), NOW).await.unwrap(),
        ack(60, 10, 10)
    );
    // Empty batch: nothing changes.
    assert_eq!(s.ingest(d, &[], NOW).await.unwrap(), ack(60, 0, 0));
    assert_eq!(s.device_by_name("gw").await.unwrap().unwrap().acked, 60);
    assert_eq!(s.records(d, 0, 1_000).await.unwrap().len(), 60);
    // Unknown device.
    match s.ingest(d + 1_000, &recs(1..=1), NOW).await {
        Err(StoreError::Query {
            source: sqlx::Error::RowNotFound,
            ..
        }) => {}
        other => panic!("expected RowNotFound, got {other:?}"),
    }
}

async fn acked_waits_for_gaps_and_follows_folded_records(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    assert_eq!(
        s.ingest(d, &recs([1, 2, 4]), NOW).await.unwrap(),
        ack(2, 3, 0)
    );
    assert_eq!(s.ingest(d, &recs([3]), NOW).await.unwrap(), ack(4, 1, 0));
    assert_eq!(
        s.ingest(d, &[folded(5, 9)], NOW).await.unwrap(),
        ack(9, 1, 0)
    );
    assert_eq!(s.ingest(d, &recs([10]), NOW).await.unwrap(), ack(10, 1, 0));

    // A folded record arriving after the records beyond it.
    assert_eq!(
        s.ingest(d, &recs([16, 17]), NOW).await.unwrap(),
        ack(10, 2, 0)
    );
    assert_eq!(
        s.ingest(d, &[folded(11, 15)], NOW).await.unwrap(),
        ack(17, 1, 0)
    );
    // A gap that stays open: acked stays, later records are stored.
    assert_eq!(
        s.ingest(d, &recs(19..=30), NOW).await.unwrap(),
        ack(17, 12, 0)
    );
    // A replay of a folded record: a duplicate on its seq, acked unchanged.
    assert_eq!(
        s.ingest(d, &[folded(5, 9)], NOW).await.unwrap(),
        ack(17, 0, 1)
    );
    assert_eq!(s.ingest(d, &recs([18]), NOW).await.unwrap(), ack(30, 1, 0));
    assert_eq!(s.device_by_name("gw").await.unwrap().unwrap().acked, 30);

    // A record the acknowledgement already covers (here inside an earlier
    // folded range) is a duplicate: never stored again, even if retention
    // deleted what covered it.
    assert_eq!(s.ingest(d, &recs([7]), NOW).await.unwrap(), ack(30, 0, 1));
    // A range starting at or below acked and reaching beyond it counts.
    assert_eq!(
        s.ingest(d, &[folded(8, 35)], NOW).await.unwrap(),
        ack(35, 1, 0)
    );

    // A long contiguous stretch after a gap (more than one scan step).
    let e = new_device(&*s, "long").await;
    assert_eq!(
        s.ingest(e, &recs(2..=5_000), NOW).await.unwrap(),
        ack(0, 4_999, 0)
    );
    assert_eq!(
        s.ingest(e, &recs(5_001..=10_000), NOW).await.unwrap(),
        ack(0, 5_000, 0)
    );
    assert_eq!(
        s.ingest(e, &recs([1]), NOW).await.unwrap(),
        ack(10_000, 1, 0)
    );
}

async fn records_read_back_in_order(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    let mut sent = recs([1, 2, 3, 4]);
    sent.push(folded(5, 9));
    sent.extend(recs(10..=20));
    s.ingest(d, &sent, NOW + 7).await.unwrap();

    let got = s.records(d, 0, 100).await.unwrap();
    assert_eq!(got.len(), sent.len());
    for (g, r) in got.iter().zip(&sent) {
        assert_eq!(g.seq, r.seq as i64);
        assert_eq!(g.seq_end, r.seq_end.unwrap_or(r.seq) as i64);
        assert_eq!(g.at_ms, r.at);
        assert_eq!(g.mono_ms, r.mono_ms as i64);
        assert_eq!(g.boot_id, r.boot_id);
        assert_eq!(g.kind, r.body.kind());
        assert_eq!(g.received_ms, NOW + 7);
        let body: Body = serde_json::from_str(&g.body).unwrap();
        assert_eq!(body, r.body);
    }
    // Paging: from a seq, at most `limit`.
    let page: Vec<i64> = s
        .records(d, 5, 3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page, [5, 10, 11]);
    let page: Vec<i64> = s
        .records(d, 6, 2)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page, [10, 11]);
    assert!(s.records(d, 21, 10).await.unwrap().is_empty());
}

async fn concurrent_overlapping_batches(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    // Task i sends seqs 1..=400 in batches of 50, starting at a different
    // batch and wrapping around: every seq is sent by all 8 tasks.
    const N: u64 = 400;
    const B: u64 = 50;
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut stored = 0u64;
                let mut dups = 0u64;
                let mut max_acked = 0;
                for k in 0..N / B {
                    let start = ((i + k) % (N / B)) * B + 1;
                    let a = s.ingest(d, &recs(start..start + B), NOW).await.unwrap();
                    assert!(a.acked >= max_acked, "acked went back");
                    max_acked = a.acked;
                    stored += u64::from(a.stored);
                    dups += u64::from(a.duplicates);
                }
                (stored, dups)
            })
        })
        .collect();
    let mut stored = 0;
    let mut dups = 0;
    for t in tasks {
        let (s, d) = t.await.unwrap();
        stored += s;
        dups += d;
    }
    assert_eq!(stored, N, "every seq stored exactly once");
    assert_eq!(dups, 7 * N);
    let dev = s.device_by_name("gw").await.unwrap().unwrap();
    assert_eq!(dev.acked, N as i64);
    let seqs: Vec<i64> = s
        .records(d, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, (1..=N as i64).collect::<Vec<_>>());
}

async fn devices_do_not_interfere(db: Arc<TestDb>) {
    let s = db.open().await;
    let a = new_device(&*s, "a").await;
    let b = new_device(&*s, "b").await;
    assert_eq!(
        s.ingest(a, &recs(1..=10), NOW).await.unwrap(),
        ack(10, 10, 0)
    );
    // Same seqs on another device are new there.
    assert_eq!(s.ingest(b, &recs(1..=5), NOW).await.unwrap(), ack(5, 5, 0));
    assert_eq!(s.ingest(b, &recs([7]), NOW).await.unwrap(), ack(5, 1, 0));
    assert_eq!(
        s.ingest(a, &recs(11..=12), NOW).await.unwrap(),
        ack(12, 2, 0)
    );
    // Concurrently, one task per device.
    let (ra, rb) = tokio::join!(
        {
            let s = s.clone();
            async move { s.ingest(a, &recs(13..=2_000), NOW).await.unwrap() }
        },
        {
            let s = s.clone();
            async move { s.ingest(b, &recs([6]), NOW).await.unwrap() }
        }
    );
    assert_eq!(ra, ack(2_000, 1_988, 0));
    assert_eq!(rb, ack(7, 1, 0));
    let acked: BTreeSet<(String, i64)> = s
        .list_devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.name, d.acked))
        .collect();
    assert_eq!(
        acked,
        BTreeSet::from([("a".to_string(), 2_000), ("b".to_string(), 7)])
    );
    assert_eq!(s.records(b, 0, 100).await.unwrap().len(), 7);
    assert_eq!(s.records(a, 0, 10_000).await.unwrap().len(), 2_000);
}

/// Many devices ingest at once (the SQLite writer then commits them in
/// groups) while batches for a device that does not exist fail in between:
/// each failure is answered alone, every good batch is stored.
async fn failing_batches_do_not_undo_concurrent_ones(db: Arc<TestDb>) {
    let s = db.open().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(new_device(&*s, &format!("dev-{i:02}")).await);
    }
    let missing = ids.iter().max().unwrap() + 1_000;
    let tasks: Vec<_> = (0..20u64)
        .flat_map(|k| ids.iter().map(move |&d| (k, d)))
        .map(|(k, d)| {
            let s = s.clone();
            tokio::spawn(async move {
                let good = s.ingest(d, &recs(k * 5 + 1..=k * 5 + 5), NOW).await;
                let bad = s.ingest(missing, &recs([k + 1]), NOW).await;
                (good.map(|a| a.stored), bad.is_err())
            })
        })
        .collect();
    for t in tasks {
        let (good, bad_failed) = t.await.unwrap();
        assert_eq!(good.unwrap(), 5);
        assert!(bad_failed, "a batch for an unknown device must fail");
    }
    for d in s.list_devices().await.unwrap() {
        assert_eq!(d.acked, 100, "device {}", d.name);
        assert_eq!(s.records(d.id, 0, 1_000).await.unwrap().len(), 100);
    }
}

/// What one device's store holds, as a model: stored ranges by `seq` and
/// `acked` (the semantics in the SQLite adapter's module documentation).
#[derive(Default)]
struct Model {
    stored: std::collections::BTreeMap<u64, u64>,
    acked: u64,
}

impl Model {
    fn ingest(&mut self, batch: &[Record]) -> Ack {
        let mut stored = 0;
        for r in batch {
            let end = r.seq_end.unwrap_or(r.seq);
            if end > self.acked && !self.stored.contains_key(&r.seq) {
                self.stored.insert(r.seq, end);
                stored += 1;
            }
        }
        for (&s, &e) in &self.stored {
            if s > self.acked + 1 {
                break;
            }
            self.acked = self.acked.max(e);
        }
        ack(self.acked, stored, batch.len() as u32 - stored)
    }
}

/// A device's random upload script: mostly the next records in order, with
/// replays of earlier ones, gaps filled later, folded ranges and repeats of
/// a `seq` inside one batch.
fn script(seed: u64) -> Vec<Vec<Record>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut next = 1u64;
    (0..12)
        .map(|_| {
            (0..rng.random_range(1..=8))
                .map(|_| match rng.random_range(0..10) {
                    0 => rec(rng.random_range(1..next + 1)),
                    1 => {
                        next += rng.random_range(1..4);
                        rec(next)
                    }
                    2 => {
                        let k = rng.random_range(1..4);
                        let r = folded(next, next + k);
                        next += k + 1;
                        r
                    }
                    3 if next > 2 => rec(next - 2),
                    _ => {
                        next += 1;
                        rec(next - 1)
                    }
                })
                .collect()
        })
        .collect()
}

/// Many devices upload at once, so the SQLite writer commits their batches
/// in groups (written together); every answer, and what ends up stored,
/// equals the model run batch by batch.
async fn grouped_batches_answer_as_one_by_one(db: Arc<TestDb>) {
    let s = db.open().await;
    let mut ids = Vec::new();
    for i in 0..64 {
        ids.push(new_device(&*s, &format!("dev-{i:02}")).await);
    }
    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut model = Model::default();
                for (k, batch) in script(i as u64).iter().enumerate() {
                    let got = s.ingest(d, batch, NOW).await.unwrap();
                    assert_eq!(got, model.ingest(batch), "device {i}, batch {k}");
                }
                model
            })
        })
        .collect();
    for (t, &d) in tasks.into_iter().zip(&ids) {
        let model = t.await.unwrap();
        let ranges: Vec<(u64, u64)> = s
            .records(d, 0, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.seq as u64, r.seq_end as u64))
            .collect();
        assert_eq!(ranges, model.stored.into_iter().collect::<Vec<_>>());
    }
}

async fn data_survives_reopening(db: Arc<TestDb>) {
    let (d, before) = {
        let s = db.open().await;
        s.upsert_offices(&[office("dhk-savar-uno", "UNO Savar")])
            .await
            .unwrap();
        let dev = s
            .add_device("gw", Some("dhk-savar-uno"), "hash-gw", NOW)
            .await
            .unwrap();
        s.ingest(dev.id, &recs([1, 2, 3, 5]), NOW).await.unwrap();
        (dev.id, s.records(dev.id, 0, 100).await.unwrap())
    };
    // A new store (new pool; the old one dropped), migrations run again.
    let s = db.open().await;
    let dev = s.device_by_token("hash-gw").await.unwrap().unwrap();
    assert_eq!(dev.id, d);
    assert_eq!(dev.acked, 3);
    assert_eq!(dev.office.as_deref(), Some("dhk-savar-uno"));
    assert_eq!(s.list_offices().await.unwrap().len(), 1);
    assert_eq!(s.records(d, 0, 100).await.unwrap(), before);
    assert_eq!(s.ingest(d, &recs([4]), NOW).await.unwrap(), ack(5, 1, 0));
    // A third opening sees the last ingest too.
    drop(s);
    let s = db.open().await;
    assert_eq!(s.device_by_name("gw").await.unwrap().unwrap().acked, 5);
}

/// Last seen: every upload (replays and empty batches too) sets the upload
/// time and the announced deadline; the newest record only moves forward
/// by sequence number. Many devices uploading at once (one group commit)
/// each get their own; it survives reopening.
/// The alert round re-reads every device only when the catalog version
/// moves: it must move on every change of a device or office the round
/// uses, and not on uploads (or every round would read everything); the
/// devices heard from since a time are exactly those.
async fn catalog_version_follows_the_catalog_not_uploads(db: Arc<TestDb>) {
    let s = db.open().await;
    let version = |s: Arc<dyn Store>| async move {
        s.catalog_version()
            .await
            .unwrap()
            .expect("both stores keep a catalog version")
    };
    let mut last = version(s.clone()).await;
    let mut moved = |now: i64, what: &str| {
        assert_ne!(now, last, "the catalog version did not move on {what}");
        last = now;
    };
    let a = new_device(s.as_ref(), "a").await;
    moved(version(s.clone()).await, "a device added");
    let b = new_device(s.as_ref(), "b").await;
    moved(version(s.clone()).await, "a device added");
    s.upsert_offices(&[office("o1", "Savar UNO")])
        .await
        .unwrap();
    moved(version(s.clone()).await, "an office added");
    s.upsert_offices(&[office("o1", "Savar UNO office")])
        .await
        .unwrap();
    moved(version(s.clone()).await, "an office renamed");
    assert!(s.revoke_device("a").await.unwrap());
    moved(version(s.clone()).await, "a device revoked");
    assert!(s.rotate_device_token("a", "new-hash").await.unwrap());
    moved(version(s.clone()).await, "a device given a new token");

    s.ingest_upload(a, &recs(1..=3), Some(NOW + 307_000), NOW)
        .await
        .unwrap();
    s.ingest_upload(b, &recs(1..=2), None, NOW + 60_000)
        .await
        .unwrap();
    s.ingest_upload(b, &recs(3..=4), None, NOW + 120_000)
        .await
        .unwrap();
    assert_eq!(
        version(s.clone()).await,
        last,
        "uploads must leave the catalog version alone"
    );
    let heard = |from: i64| {
        let s = s.clone();
        async move {
            s.devices_heard_since(from)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.name, d.seen.last_upload_ms))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        heard(NOW).await,
        [
            ("a".to_string(), Some(NOW)),
            ("b".to_string(), Some(NOW + 120_000))
        ]
    );
    assert_eq!(
        heard(NOW + 1).await,
        [("b".to_string(), Some(NOW + 120_000))]
    );
    assert_eq!(heard(NOW + 120_001).await, []);
}

async fn last_seen_follows_uploads(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(s.as_ref(), "gw").await;
    let seen = |s: Arc<dyn Store>| async move {
        let by_name = s.device_by_name("gw").await.unwrap().unwrap().seen;
        let listed = s
            .list_devices()
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.name == "gw")
            .unwrap()
            .seen;
        assert_eq!(by_name, listed);
        assert_eq!(
            s.device_by_token("hash-of-gw").await.unwrap().unwrap().seen,
            by_name
        );
        by_name
    };
    assert_eq!(seen(s.clone()).await, LastSeen::default());
    let at = |seq: u64| rec(seq).at;
    s.ingest_upload(d, &recs(1..=3), Some(NOW + 307_000), NOW)
        .await
        .unwrap();
    let want = LastSeen {
        last_upload_ms: Some(NOW),
        last_record_ms: Some(at(3)),
        next_upload_due_ms: Some(NOW + 307_000),
    };
    assert_eq!(seen(s.clone()).await, want);
    // A replay of older records from an agent announcing nothing: the
    // upload counts, the newest record stays.
    s.ingest(d, &recs(1..=2), NOW + 10).await.unwrap();
    let want = LastSeen {
        last_upload_ms: Some(NOW + 10),
        next_upload_due_ms: None,
        ..want
    };
    assert_eq!(seen(s.clone()).await, want);
    // An empty batch is an upload too.
    s.ingest_upload(d, &[], Some(NOW + 400_000), NOW + 20)
        .await
        .unwrap();
    let want = LastSeen {
        last_upload_ms: Some(NOW + 20),
        next_upload_due_ms: Some(NOW + 400_000),
        ..want
    };
    assert_eq!(seen(s.clone()).await, want);
    // Out of order: 5, then 4; the newest stays 5.
    s.ingest_upload(d, &recs([5]), None, NOW + 30)
        .await
        .unwrap();
    s.ingest_upload(d, &recs([4]), None, NOW + 40)
        .await
        .unwrap();
    let want = LastSeen {
        last_upload_ms: Some(NOW + 40),
        last_record_ms: Some(at(5)),
        next_upload_due_ms: None,
    };
    assert_eq!(seen(s.clone()).await, want);
    // Many devices at once: each its own figures, and the backlog each
    // agent reported (the first reported none waiting).
    let backlog = |i: i64| Backlog {
        records: i as u64 * 1_000,
        oldest_at: (i > 0).then_some(NOW - i * 60_000),
    };
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(new_device(s.as_ref(), &format!("dev{i:02}")).await);
    }
    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let s = s.clone();
            let i = i as i64;
            tokio::spawn(async move {
                let meta = store::UploadMeta {
                    next_upload_due_ms: Some(NOW + i),
                    backlog: Some(backlog(i)),
                };
                s.ingest_reported(id, &recs(1..=(i as u64 % 7 + 1)), meta, NOW - i)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for (i, &id) in ids.iter().enumerate() {
        let i = i as i64;
        let got = s
            .device_by_name(&format!("dev{i:02}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.id, id);
        assert_eq!(
            got.seen,
            LastSeen {
                last_upload_ms: Some(NOW - i),
                last_record_ms: Some(at(i as u64 % 7 + 1)),
                next_upload_due_ms: Some(NOW + i),
            },
            "dev{i:02}"
        );
        assert_eq!(
            s.spool_backlog(id).await.unwrap(),
            Some(backlog(i)),
            "dev{i:02}"
        );
    }
    // An upload that reports no backlog (an older agent): unknown again,
    // not the last figure.
    assert!(s.spool_backlog(ids[3]).await.unwrap().is_some());
    s.ingest_upload(ids[3], &[], None, NOW).await.unwrap();
    assert_eq!(s.spool_backlog(ids[3]).await.unwrap(), None);
    assert_eq!(s.spool_backlog(d).await.unwrap(), None, "never reported");
    drop(s);
    let s = db.open().await;
    assert_eq!(seen(s).await, want, "after reopening");
}

/// Measures ingest of `BATCHES` batches of `PER_BATCH` records (more with
/// `LINKWATCH_STORE_BENCH_BATCHES`) and prints records/s.
/// API tokens: added with role and branch, found by hash, listed by name
/// (byte order on both), names unique, revoked (and reported when unknown).
async fn api_tokens(db: Arc<TestDb>) {
    let s = db.open().await;
    let savar = Branch {
        level: Level::Upazila,
        name: "Dhaka / Dhaka / Savar".into(),
    };
    let a = s
        .add_api_token("b-upazila", Role::Read, Some(&savar), "hash-b", T0)
        .await
        .unwrap();
    assert_eq!(
        (
            a.name.as_str(),
            a.role,
            a.branch.as_ref(),
            a.revoked,
            a.created_at_ms
        ),
        ("b-upazila", Role::Read, Some(&savar), false, T0)
    );
    s.add_api_token("A-admin", Role::Admin, None, "hash-a", T0 + 1)
        .await
        .unwrap();
    s.add_api_token("a_read", Role::Read, None, "hash-c", T0 + 2)
        .await
        .unwrap();
    match s
        .add_api_token("b-upazila", Role::Admin, None, "hash-d", T0)
        .await
    {
        Err(StoreError::ApiTokenExists(n)) => assert_eq!(n, "b-upazila"),
        other => panic!("{other:?}"),
    }
    // Another token's hash: refused, and not as a name clash.
    assert!(!matches!(
        s.add_api_token("other", Role::Read, None, "hash-a", T0)
            .await,
        Ok(_) | Err(StoreError::ApiTokenExists(_))
    ));
    let names: Vec<String> = s
        .list_api_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["A-admin", "a_read", "b-upazila"]);
    let found = s.api_token_by_hash("hash-b").await.unwrap().unwrap();
    assert_eq!(found, a);
    assert_eq!(s.api_token_by_hash("hash-x").await.unwrap(), None);
    // A device token's hash is no API token.
    s.add_device("gw", None, "hash-dev", T0).await.unwrap();
    assert_eq!(s.api_token_by_hash("hash-dev").await.unwrap(), None);
    assert!(s.revoke_api_token("b-upazila").await.unwrap());
    assert!(!s.revoke_api_token("nobody").await.unwrap());
    assert!(
        s.api_token_by_hash("hash-b")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let admin = s.api_token_by_hash("hash-a").await.unwrap().unwrap();
    assert_eq!(
        (admin.role, admin.branch, admin.revoked),
        (Role::Admin, None, false)
    );
}

async fn ingest_throughput(db: Arc<TestDb>) {
    const PER_BATCH: u64 = 1_000;
    let batches: u64 = std::env::var("LINKWATCH_STORE_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let s = db.open().await;
    let d = new_device(&*s, "bench").await;
    let all: Vec<Vec<Record>> = (0..batches)
        .map(|b| recs(b * PER_BATCH + 1..=(b + 1) * PER_BATCH))
        .collect();
    let t = Instant::now();
    for batch in &all {
        s.ingest(d, batch, NOW).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let n = batches * PER_BATCH;
    eprintln!(
        "ingest throughput ({}): {batches} batches x {PER_BATCH} records in {secs:.2} s = {:.0} records/s",
        match &*db {
            TestDb::Sqlite { .. } => "sqlite",
            TestDb::Postgres { .. } => "postgres",
        },
        n as f64 / secs
    );
    assert_eq!(
        s.device_by_name("bench").await.unwrap().unwrap().acked,
        n as i64
    );
}

// ---------------------------------------------------------------------------
// SQLite only

/// The file is in WAL mode, and `sqlite::memory:` works (one connection).
#[tokio::test]
async fn sqlite_file_is_wal_and_memory_works() {
    let db = TestDb::sqlite();
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    assert_eq!(s.ingest(d, &recs(1..=3), NOW).await.unwrap(), ack(3, 3, 0));
    let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();

    let m = store::open("sqlite::memory:").await.unwrap();
    let d = new_device(&*m, "gw").await;
    assert_eq!(m.ingest(d, &recs(1..=3), NOW).await.unwrap(), ack(3, 3, 0));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(m.records(d, 0, 10).await.unwrap().len(), 3);
    assert_eq!(m.list_devices().await.unwrap().len(), 1);
}

/// Rows of `table` counted by the database itself.
async fn count(db: &TestDb, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM \"{table}\""));
    if db.url().starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// The storage figures (issue 18's storage view): every table of the schema
/// with the rows the database counts, bytes that grow with what is stored,
/// and the oldest raw minute kept.
async fn storage_figures_match_what_is_stored(db: Arc<TestDb>) {
    let s = db.open().await;
    let empty = s.storage().await.unwrap();
    let names: BTreeSet<&str> = empty.tables.iter().map(|t| t.table.as_str()).collect();
    for t in [
        "records",
        "minute_packs",
        "devices",
        "rollup_days",
        "alerts",
        "web_users",
    ] {
        assert!(names.contains(t), "{t} missing from {names:?}");
    }
    assert_eq!(empty.oldest_raw_ms, None);
    assert!(empty.database_bytes > 0);
    let bytes_of = |f: &linkwatch::collector::storage::StorageFacts, name: &str| {
        let t = f.tables.iter().find(|t| t.table == name).unwrap();
        t.table_bytes + t.index_bytes
    };

    let d = new_device(&*s, "gw").await;
    for from in (1..=3_000u64).step_by(500) {
        s.ingest(d, &recs(from..from + 500), NOW).await.unwrap();
    }
    // Packs of many devices: more than one page of them, so that SQLite's
    // count covers the interior pages of a table without rowid too.
    for i in 0..80 {
        let d = new_device(&*s, &format!("laptop-{i}")).await;
        s.ingest(d, &recs(1..=20), NOW).await.unwrap();
    }
    let full = s.storage().await.unwrap();
    for t in &full.tables {
        assert_eq!(t.rows, count(&db, &t.table).await, "rows of {}", t.table);
    }
    let records = full.tables.iter().find(|t| t.table == "records").unwrap();
    assert!(records.rows >= 1_000, "{records:?}");
    assert!(records.index_bytes > 0, "{records:?}");
    assert!(bytes_of(&full, "records") > bytes_of(&empty, "records"));
    // seq 1 is the first minute summary.
    assert_eq!(full.oldest_raw_ms, Some(T0 + 1_000));
    let measured: i64 = full
        .tables
        .iter()
        .map(|t| t.table_bytes + t.index_bytes)
        .sum();
    assert!(full.database_bytes >= measured, "{full:?}");
    let summary = s.storage_summary().await.unwrap();
    assert_eq!(summary.oldest_raw_ms, full.oldest_raw_ms);
    // The database's size is live: on PostgreSQL, autovacuum may add a
    // table's free-space and visibility maps between the two reads (CI saw
    // 48 KB more). The summary must still cover every table measured and
    // stay close to the full view's figure.
    assert!(summary.database_bytes >= measured, "{summary:?}");
    let drift = (summary.database_bytes - full.database_bytes).abs();
    assert!(
        drift <= full.database_bytes / 10,
        "summary {} vs full {}",
        summary.database_bytes,
        full.database_bytes
    );
}

/// The dashboard's bulk reads: `last_transitions` gives each device what
/// `transitions_before(id, i64::MAX, limit)` gives (the later sequence
/// first among records of the same time), and a device's mark moves when,
/// and only when, a state-setting record is stored.
async fn bulk_transitions_and_marks(db: Arc<TestDb>) {
    let s = db.open().await;
    let a = new_device(s.as_ref(), "a").await;
    let b = new_device(s.as_ref(), "b").await;
    let none = new_device(s.as_ref(), "none").await;
    let ties = new_device(s.as_ref(), "ties").await;
    s.ingest(a, &recs(1..=40), NOW).await.unwrap();
    s.ingest(b, &recs(1..=5), NOW).await.unwrap();
    // 20 state-setting records at one time.
    let same: Vec<Record> = (1..=20)
        .map(|q| Record {
            at: T0,
            ..rec(q * 5)
        })
        .map(|r| Record {
            seq: r.seq / 5,
            ..r
        })
        .collect();
    s.ingest(ties, &same, NOW).await.unwrap();
    for limit in [1, 3, 16, 100] {
        let bulk: Vec<(i64, Vec<i64>)> = s
            .last_transitions(&[a, b, none, ties], limit)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, v)| (id, v.iter().map(|r| r.seq).collect()))
            .collect();
        let one = |id: i64| {
            let s = s.clone();
            async move {
                let v = s.transitions_before(id, i64::MAX, limit).await.unwrap();
                (id, v.iter().map(|r| r.seq).collect::<Vec<i64>>())
            }
        };
        // The ties: the latest sequences, in order.
        let n = limit.min(20);
        let tied: Vec<i64> = (21 - n..=20).collect();
        assert_eq!(
            bulk,
            [one(a).await, one(b).await, (ties, tied)],
            "limit {limit}"
        );
        assert!(bulk[0].1.len() == limit.min(24) as usize);
    }
    // The full records, not only their sequence numbers.
    let full = s.last_transitions(&[a], 16).await.unwrap();
    assert_eq!(
        full[0].1,
        s.transitions_before(a, i64::MAX, 16).await.unwrap()
    );

    let marks = |s: Arc<dyn Store>| async move {
        s.devices_marked()
            .await
            .unwrap()
            .into_iter()
            .map(|(d, m)| (d.name, m.unwrap()))
            .collect::<std::collections::BTreeMap<String, i64>>()
    };
    let before = marks(s.clone()).await;
    assert_eq!(before["none"], 0);
    assert_ne!(before["a"], 0);
    // Replays and records that set no state leave the marks.
    s.ingest(a, &recs(1..=40), NOW).await.unwrap();
    s.ingest(a, &recs([41, 43]), NOW).await.unwrap();
    assert_eq!(marks(s.clone()).await, before);
    // A state-setting record moves its device's mark only.
    s.ingest(a, &recs([42]), NOW).await.unwrap();
    let after = marks(s.clone()).await;
    assert_ne!(after["a"], before["a"]);
    assert_eq!(
        after
            .iter()
            .filter(|(k, _)| k.as_str() != "a")
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|(k, _)| k.as_str() != "a")
            .collect::<Vec<_>>()
    );
    s.ingest(none, &recs([5]), NOW).await.unwrap();
    assert_ne!(marks(s.clone()).await["none"], 0);

    // Those heard from since a time: the same rows, marks included (the
    // dashboard's copy of the fleet is brought up to date with them).
    s.ingest(b, &recs([900]), NOW + 60_000).await.unwrap();
    let all = s.devices_marked().await.unwrap();
    let mut since = s.devices_marked_since(NOW + 60_000).await.unwrap();
    since.sort_by(|x, y| x.0.name.cmp(&y.0.name));
    let want: Vec<_> = all
        .iter()
        .filter(|(d, _)| d.seen.last_upload_ms >= Some(NOW + 60_000))
        .cloned()
        .collect();
    assert_eq!(since, want);
    assert_eq!(since.len(), 1, "{since:?}");
    assert_eq!(since[0].0.id, b);
    assert_eq!(
        s.devices_marked_since(NOW).await.unwrap().len(),
        all.iter()
            .filter(|(d, _)| d.seen.last_upload_ms.is_some())
            .count()
    );
}
