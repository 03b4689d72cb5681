//! Packed per-minute records (issue 18, migration 0007): plain link
//! summaries and heartbeats that `acked` covers are stored as entries of
//! packs (one row per device, stream, boot and hour, extended in place), and
//! read back exactly as sent, receipt time included; packs written before
//! migration 0011 (streams named in text columns, bodies in the first
//! format) are converted and read alike. Each scenario runs on SQLite and
//! PostgreSQL.

mod common;

use common::db::{TestDb, on_both};
use linkwatch::collector::store::{Store, StoredRecord};
use linkwatch::wire::v1::{Ack, Body, Record};
use linkwatch::wire::{LinkKind, LinkState};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use std::str::FromStr;
use std::sync::Arc;

/// 2026-09-13T12:26:40Z in ms: minute 34 is the first of the next hour.
const T0: i64 = 1_789_302_400_000;
const NOW: i64 = T0 + 86_400_000;
const LINKS: [(&str, LinkKind); 3] = [
    ("enp1s0", LinkKind::Broadband),
    ("wlp2s0", LinkKind::Wifi),
    ("wwan0", LinkKind::Mobile),
];

on_both!(
    packs_extend_in_place_and_replays_are_duplicates,
    a_late_batch_fills_the_gap_and_moves_into_packs,
    folded_records_stay_rows_beside_packs,
    a_late_minute_placed_in_an_earlier_hour,
    retention_cuts_through_a_pack,
    packs_of_the_first_layout_are_converted,
    uploads_append_segments_that_sealing_rewrites_as_one,
);

/// The agent's minute `m` (from 1) at defaults: 3 `link_minutes` (one per
/// link, odd RTTs among them) and a `heartbeat`, sequence numbers
/// `4m-3..=4m`.
fn minute(m: u64) -> Vec<Record> {
    (4 * m - 3..=4 * m)
        .map(|seq| {
            let link = (seq % 4) as usize;
            let body = if link == 0 {
                Body::Heartbeat {
                    online: m % 7 != 3,
                    count: 1,
                }
            } else {
                let (name, kind) = LINKS[link - 1];
                Body::LinkMinutes {
                    link: name.into(),
                    kind,
                    minutes: 1,
                    sent: if link == 1 { 120 } else { 12 },
                    lost: m.is_multiple_of(5) as u32,
                    rtt_p50_ms: (!m.is_multiple_of(11)).then_some(18.0 + (m % 13) as f64 * 0.37),
                    rtt_p95_ms: Some(40.25 + m as f64 / 100.0),
                    rtt_max_ms: Some(if m.is_multiple_of(9) { 1.0 / 3.0 } else { 80.5 }),
                    bytes: 2_016 + m * 17,
                }
            };
            Record {
                seq,
                seq_end: None,
                at: T0 + m as i64 * 60_000,
                mono_ms: 7_000 + m * 60_000,
                boot_id: "3f1c2b9e-0d7a-4a53-9a61-5bb0f2c1e001".into(),
                body,
            }
        })
        .collect()
}

fn minutes(ms: std::ops::RangeInclusive<u64>) -> Vec<Record> {
    ms.flat_map(minute).collect()
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

/// `got` is `sent`, record by record, the body byte for byte as a row of
/// `records` holds it; received at `received(seq)`.
fn assert_same(got: &[StoredRecord], sent: &[Record], received: impl Fn(i64) -> i64) {
    assert_eq!(
        got.iter().map(|r| r.seq).collect::<Vec<_>>(),
        sent.iter().map(|r| r.seq as i64).collect::<Vec<_>>()
    );
    for (g, r) in got.iter().zip(sent) {
        assert_eq!(g.seq_end, r.seq_end.unwrap_or(r.seq) as i64, "{g:?}");
        assert_eq!((g.at_ms, g.mono_ms), (r.at, r.mono_ms as i64), "{g:?}");
        assert_eq!(
            (g.boot_id.as_str(), g.kind.as_str()),
            (r.boot_id.as_str(), r.body.kind())
        );
        assert_eq!(g.body, serde_json::to_string(&r.body).unwrap(), "{g:?}");
        assert_eq!(g.received_ms, received(g.seq), "{g:?}");
    }
}

/// One number from the database (`SELECT COUNT(*) ...`).
async fn count(db: &TestDb, sql: &str) -> i64 {
    let sql = AssertSqlSafe(sql.to_string());
    match db {
        TestDb::Sqlite { url, .. } => {
            let mut c = SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        TestDb::Postgres { url, .. } => {
            let mut c = PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

async fn packs(db: &TestDb) -> i64 {
    count(db, "SELECT COUNT(*) FROM minute_packs").await
}

/// Rows of `records` packs could hold.
async fn packable_rows(db: &TestDb) -> i64 {
    let sql = "SELECT COUNT(*) FROM records WHERE kind IN ('link_minutes', 'heartbeat') \
               AND seq_end = seq";
    count(db, sql).await
}

async fn packs_extend_in_place_and_replays_are_duplicates(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    assert_eq!(
        s.ingest(d, &minutes(1..=5), NOW).await.unwrap(),
        ack(20, 20, 0)
    );
    // One pack per link and one of heartbeats, nothing in `records`.
    assert_eq!((packs(&db).await, packable_rows(&db).await), (4, 0));
    // The next upload extends them in place; its replay stores nothing.
    let second = minutes(6..=10);
    let at = |seq: i64| if seq <= 20 { NOW } else { NOW + 300_000 };
    assert_eq!(
        s.ingest(d, &second, NOW + 300_000).await.unwrap(),
        ack(40, 20, 0)
    );
    assert_eq!((packs(&db).await, packable_rows(&db).await), (4, 0));
    assert_eq!(
        s.ingest(d, &second, NOW + 301_000).await.unwrap(),
        ack(40, 0, 20)
    );
    assert_eq!(
        s.ingest(d, &minutes(1..=10), NOW).await.unwrap(),
        ack(40, 0, 40)
    );
    assert_same(&s.records(d, 0, 1_000).await.unwrap(), &minutes(1..=10), at);
    // Pages cut through the packs.
    assert_same(
        &s.records(d, 7, 6).await.unwrap(),
        &minutes(2..=10)[2..8],
        at,
    );
    assert_same(&s.records(d, 37, 100).await.unwrap(), &minutes(10..=10), at);
    // By placed time: minutes 3 to 7.
    let between = s
        .records_between(d, T0 + 3 * 60_000, T0 + 8 * 60_000)
        .await
        .unwrap();
    assert_same(&between, &minutes(3..=7), at);
    // A new span (two UTC hours: T0 is 12:26:40, minute 94 is 14:00:40)
    // starts new packs; crossing an hour within the span does not.
    s.ingest(d, &minutes(11..=93), NOW + 600_000).await.unwrap();
    assert_eq!(packs(&db).await, 4);
    s.ingest(d, &minutes(94..=100), NOW + 600_000)
        .await
        .unwrap();
    assert_eq!(packs(&db).await, 8);
    let all = s.records(d, 0, 1_000).await.unwrap();
    assert_same(&all, &minutes(1..=100), |seq| match seq {
        ..=20 => NOW,
        21..=40 => NOW + 300_000,
        _ => NOW + 600_000,
    });
}

/// Each upload extends a pack by a segment of its own entries (the body is
/// not read); every 8 segments the next upload rewrites it whole; once its
/// span is over the maintainer's sealing rewrites it as one segment, fewer
/// bytes, the same records.
async fn uploads_append_segments_that_sealing_rewrites_as_one(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    // Minutes 1-90 (all in the span of 12:00-14:00) in 18 uploads of five.
    let received = |seq: i64| NOW + (seq - 1) / 20 * 300_000;
    for k in 0..18_u64 {
        let upload = minutes(5 * k + 1..=5 * k + 5);
        let at = received(upload[0].seq as i64);
        assert_eq!(
            s.ingest(d, &upload, at).await.unwrap(),
            ack(20 * (k + 1), 20, 0)
        );
    }
    assert_eq!((packs(&db).await, packable_rows(&db).await), (4, 0));
    // Rewritten whole at the 9th and 17th uploads: two segments since.
    let parts = "SELECT CAST(MAX(parts) AS BIGINT) FROM minute_packs";
    assert_eq!(count(&db, parts).await, 2);
    let bytes = "SELECT CAST(SUM(LENGTH(body)) AS BIGINT) FROM minute_packs";
    let before = count(&db, bytes).await;
    let listed = "SELECT COUNT(*) FROM pack_unsealed";
    assert_eq!(count(&db, listed).await, 4);
    assert_same(
        &s.records(d, 0, 1_000).await.unwrap(),
        &minutes(1..=90),
        received,
    );

    // Not before the span is over (14:00) and ten minutes more.
    let span_end = T0 + (2 * 3_600_000 - (T0 % (2 * 3_600_000)));
    assert_eq!(s.seal_packs(span_end + 599_000, 500).await.unwrap(), 0);
    assert_eq!(s.seal_packs(span_end + 600_000, 500).await.unwrap(), 4);
    assert_eq!(count(&db, parts).await, 1);
    assert_eq!(count(&db, listed).await, 0);
    let after = count(&db, bytes).await;
    assert!(after < before, "sealed {after} bytes, {before} before");
    assert_same(
        &s.records(d, 0, 1_000).await.unwrap(),
        &minutes(1..=90),
        received,
    );
    let between = s
        .records_between(d, T0 + 40 * 60_000, T0 + 50 * 60_000)
        .await
        .unwrap();
    assert_same(&between, &minutes(40..=49), received);
    // A late upload extends a sealed pack (its second segment) and lists
    // it again.
    assert_eq!(
        s.ingest(d, &minutes(91..=92), NOW + 9_000_000)
            .await
            .unwrap(),
        ack(368, 8, 0)
    );
    assert_eq!(count(&db, listed).await, 4);
    assert_eq!(s.seal_packs(span_end + 600_000, 500).await.unwrap(), 4);
    let late = |seq: i64| {
        if seq > 360 {
            NOW + 9_000_000
        } else {
            received(seq)
        }
    };
    assert_same(
        &s.records(d, 0, 1_000).await.unwrap(),
        &minutes(1..=92),
        late,
    );
}

async fn a_late_batch_fills_the_gap_and_moves_into_packs(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    assert_eq!(
        s.ingest(d, &minutes(1..=5), NOW).await.unwrap(),
        ack(20, 20, 0)
    );
    // Minutes 11-15 come first: stored as rows, not acknowledged past the gap.
    assert_eq!(
        s.ingest(d, &minutes(11..=15), NOW + 1).await.unwrap(),
        ack(20, 20, 0)
    );
    assert_eq!(packable_rows(&db).await, 20);
    let at = |seq: i64| if seq > 40 { NOW + 1 } else { NOW };
    let mut sent = minutes(1..=5);
    sent.extend(minutes(11..=15));
    assert_same(&s.records(d, 0, 1_000).await.unwrap(), &sent, at);
    // A replay of the rows beyond the gap: duplicates.
    assert_eq!(
        s.ingest(d, &minutes(12..=13), NOW + 2).await.unwrap(),
        ack(20, 0, 8)
    );
    // The late minutes 6-10 fill the gap: everything acknowledged, and the
    // rows move into the packs.
    assert_eq!(
        s.ingest(d, &minutes(6..=10), NOW).await.unwrap(),
        ack(60, 20, 0)
    );
    assert_eq!((packs(&db).await, packable_rows(&db).await), (4, 0));
    assert_same(&s.records(d, 0, 1_000).await.unwrap(), &minutes(1..=15), at);
    // A late replay of minutes inside the packs: duplicates, nothing changes.
    assert_eq!(
        s.ingest(d, &minutes(3..=4), NOW).await.unwrap(),
        ack(60, 0, 8)
    );
    assert_same(&s.records(d, 0, 1_000).await.unwrap(), &minutes(1..=15), at);
    assert_same(
        &s.records_between(d, T0, T0 + 16 * 60_000).await.unwrap(),
        &minutes(1..=15),
        at,
    );
}

async fn folded_records_stay_rows_beside_packs(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    // Minutes 1-3, then heartbeats folded into one record (13..=15, as a
    // spool short of space sends), then an offline heartbeat (16), a link
    // state change (17) and minutes 5-6.
    let mut sent = minutes(1..=3);
    sent.push(Record {
        seq_end: Some(15),
        body: Body::Heartbeat {
            online: true,
            count: 3,
        },
        ..minute(4).remove(0)
    });
    sent.push(Record {
        body: Body::Heartbeat {
            online: false,
            count: 1,
        },
        ..minute(4).remove(3)
    });
    sent.push(Record {
        seq: 17,
        body: Body::LinkState {
            link: "wwan0".into(),
            kind: LinkKind::Mobile,
            from: LinkState::Up,
            to: LinkState::Down,
            reason: None,
        },
        ..minute(5).remove(0)
    });
    let mut rest = minutes(5..=6);
    for r in &mut rest {
        r.seq += 1;
    }
    sent.extend(rest);
    assert_eq!(s.ingest(d, &sent[..13], NOW).await.unwrap(), ack(15, 13, 0));
    assert_eq!(s.ingest(d, &sent, NOW).await.unwrap(), ack(25, 10, 13));
    // Replaying the folded record alone: a duplicate.
    assert_eq!(
        s.ingest(d, &sent[12..13], NOW).await.unwrap(),
        ack(25, 0, 1)
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM records").await,
        2,
        "the folded heartbeat and the link state"
    );
    assert_same(&s.records(d, 0, 1_000).await.unwrap(), &sent, |_| NOW);
    assert_same(&s.records(d, 13, 3).await.unwrap(), &sent[12..15], |_| NOW);
}

async fn a_late_minute_placed_in_an_earlier_hour(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    // Minutes 1-100 reach into the next span of two hours (minute 94 on:
    // T0 is 12:26:40 UTC).
    let first = minutes(1..=100);
    assert_eq!(s.ingest(d, &first, NOW).await.unwrap().acked, 100 * 4);
    // The device's next minutes carry times of the earlier span (its clock
    // stepped back): new packs of that span, read back in place.
    let mut late = minutes(101..=102);
    for r in &mut late {
        r.at -= 20 * 60_000;
    }
    assert_eq!(
        s.ingest(d, &late, NOW + 1).await.unwrap(),
        ack(102 * 4, 8, 0)
    );
    let mut all = first.clone();
    all.extend(late.clone());
    let at = |seq: i64| if seq > 100 * 4 { NOW + 1 } else { NOW };
    assert_same(&s.records(d, 0, 1_000).await.unwrap(), &all, at);
    // The earlier span's records by placed time: minutes 1-93 and the late ones.
    let span_end = T0 + 94 * 60_000 - 40_000;
    let mut want: Vec<Record> = all.iter().filter(|r| r.at < span_end).cloned().collect();
    want.sort_by_key(|r| r.seq);
    assert_eq!(want.len(), 95 * 4);
    assert_same(
        &s.records_between(d, T0, span_end).await.unwrap(),
        &want,
        at,
    );
    assert_eq!(
        packs(&db).await,
        12,
        "4 streams × (2 spans + the late minutes)"
    );
}

async fn retention_cuts_through_a_pack(db: Arc<TestDb>) {
    let s = db.open().await;
    let d = new_device(&*s, "gw").await;
    let all = minutes(1..=90);
    for chunk in all.chunks(20) {
        s.ingest(d, chunk, NOW).await.unwrap();
    }
    // Cut in the middle of the second hour (minute 50).
    let cut = T0 + 50 * 60_000;
    let gone = |r: &Record| matches!(r.body, Body::LinkMinutes { .. }) && r.at < cut;
    let want = all.iter().filter(|r| gone(r)).count() as u64;
    // In small steps, as the maintainer deletes: until fewer than asked.
    let mut deleted = 0;
    loop {
        let n = s.delete_minutes_before(cut, 25).await.unwrap();
        deleted += n;
        if n < 25 {
            break;
        }
    }
    assert_eq!(deleted, want);
    let left: Vec<Record> = all.iter().filter(|r| !gone(r)).cloned().collect();
    assert_same(&s.records(d, 0, 10_000).await.unwrap(), &left, |_| NOW);
    assert_eq!(s.delete_minutes_before(cut, 25).await.unwrap(), 0);
    // The acknowledgement stands: a replay stores nothing again.
    assert_eq!(s.ingest(d, &all[..40], NOW).await.unwrap(), ack(360, 0, 40));
}

/// A pack body in the first format (migration 0007), written here from its
/// description in src/collector/store/packs/v1.rs: per entry a flags byte
/// and LEB128 varints against the entry before.
fn first_format(records: &[Record], received: i64) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn put_i(out: &mut Vec<u8>, v: i64) {
        put(out, ((v << 1) ^ (v >> 63)) as u64);
    }
    let mut out = vec![1_u8];
    let (mut seq, mut at, mut mono, mut steps, mut rec) = (0, 0, 0, (0, 0, 0), 0);
    let (mut shape, mut bytes_before) = ((0, 0), 0_u64);
    for r in records {
        let flags_at = out.len();
        out.push(0);
        let mut flags = 0_u8;
        let now = (r.seq as i64 - seq, r.at - at, r.mono_ms as i64 - mono);
        if now == steps {
            flags |= 1;
        } else {
            put_i(&mut out, now.0);
            put_i(&mut out, now.1);
            put_i(&mut out, now.2);
        }
        if received == rec {
            flags |= 2;
        } else {
            put_i(&mut out, received - rec);
        }
        match &r.body {
            Body::Heartbeat { online, .. } => flags |= if *online { 4 } else { 0 },
            Body::LinkMinutes {
                minutes,
                sent,
                lost,
                rtt_p50_ms,
                rtt_p95_ms,
                rtt_max_ms,
                bytes,
                ..
            } => {
                if (*minutes, *sent) == shape {
                    flags |= 4;
                } else {
                    put(&mut out, u64::from(*minutes));
                    put(&mut out, u64::from(*sent));
                }
                if *lost != 0 {
                    flags |= 8;
                    put(&mut out, u64::from(*lost));
                }
                let rtt = [*rtt_p50_ms, *rtt_p95_ms, *rtt_max_ms];
                let present: Vec<f64> = rtt.iter().flatten().copied().collect();
                for (i, v) in rtt.iter().enumerate() {
                    if v.is_some() {
                        flags |= 16 << i;
                    }
                }
                let centi = |v: f64| {
                    let c = (v * 100.0).round() as i64;
                    ((c as f64 / 100.0).to_bits() == v.to_bits()).then_some(c)
                };
                if present.iter().all(|&v| centi(v).is_some()) {
                    let mut base = 0;
                    for v in present {
                        let c = centi(v).unwrap();
                        put_i(&mut out, c - base);
                        base = c;
                    }
                } else {
                    flags |= 128;
                    for v in present {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                put_i(&mut out, bytes.wrapping_sub(bytes_before) as i64);
                (shape, bytes_before) = ((*minutes, *sent), *bytes);
            }
            _ => unreachable!("packs hold minutes and heartbeats"),
        }
        out[flags_at] = flags;
        (seq, at, mono, steps, rec) = (r.seq as i64, r.at, r.mono_ms as i64, now, received);
    }
    out
}

/// Statements on the test's database, each with one byte-string bind
/// (`?` on SQLite, `$1` on PostgreSQL) or none.
async fn exec(db: &TestDb, migrations: Option<&std::path::Path>, sqls: &[(String, Vec<u8>)]) {
    let migrator = match migrations {
        Some(dir) => Some(sqlx::migrate::Migrator::new(dir).await.unwrap()),
        None => None,
    };
    // The migrator's future is not `Send` for every lifetime (sqlx), so
    // this runs in place rather than across the scenario's awaits.
    let run = async {
        match db {
            TestDb::Sqlite { url, .. } => {
                let opts = SqliteConnectOptions::from_str(url)
                    .unwrap()
                    .create_if_missing(true);
                let mut c = SqliteConnection::connect_with(&opts).await.unwrap();
                if let Some(m) = &migrator {
                    m.run(&mut c).await.unwrap();
                }
                for (sql, bind) in sqls {
                    let q = sqlx::query(AssertSqlSafe(sql.replace("$1", "?")));
                    let q = if sql.contains("$1") {
                        q.bind(bind.clone())
                    } else {
                        q
                    };
                    q.execute(&mut c).await.unwrap();
                }
            }
            TestDb::Postgres { url, .. } => {
                let mut c = PgConnection::connect(url).await.unwrap();
                if let Some(m) = &migrator {
                    m.run(&mut c).await.unwrap();
                }
                for (sql, bind) in sqls {
                    let q = sqlx::query(AssertSqlSafe(sql.clone()));
                    let q = if sql.contains("$1") {
                        q.bind(bind.clone())
                    } else {
                        q
                    };
                    q.execute(&mut c).await.unwrap();
                }
            }
        }
    };
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(run));
}

/// A database written before migration 0011 (packs naming their stream in
/// text columns, bodies in the first format): opening it converts the
/// packs, which read back exactly, count as stored for duplicates, and
/// keep being extended.
async fn packs_of_the_first_layout_are_converted(db: Arc<TestDb>) {
    // The migrations up to 0010, as that collector applied them.
    let dialect = if matches!(*db, TestDb::Sqlite { .. }) {
        "sqlite"
    } else {
        "postgres"
    };
    let old = db.dir().join("migrations-before-0011");
    std::fs::create_dir_all(&old).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    for e in std::fs::read_dir(all).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.as_str() < "0011" {
            std::fs::copy(e.path(), old.join(&name)).unwrap();
        }
    }
    // Minutes 1-5 packed by that collector (acknowledged up to 20).
    let sent = minutes(1..=5);
    let mut sqls = vec![(
        format!(
            "INSERT INTO devices (name, token_hash, created_at, acked) \
             VALUES ('gw', 'hash-of-gw', {NOW}, 20)"
        ),
        Vec::new(),
    )];
    for k in 0..4 {
        let stream: Vec<Record> = sent.iter().filter(|r| r.seq % 4 == k).cloned().collect();
        let (kind, link, link_kind) = match k {
            0 => ("heartbeat", String::new(), String::new()),
            _ => {
                let (name, kind) = LINKS[k as usize - 1];
                ("link_minutes", name.to_string(), kind.to_string())
            }
        };
        let (first, last) = (&stream[0], &stream[stream.len() - 1]);
        sqls.push((
            format!(
                "INSERT INTO minute_packs (device_id, first_seq, last_seq, first_at_ms, \
                 last_at_ms, kind, link, link_kind, boot_id, n, body) VALUES \
                 ((SELECT id FROM devices WHERE name = 'gw'), {}, {}, {}, {}, '{kind}', \
                 '{link}', '{link_kind}', '{}', {}, $1)",
                first.seq,
                last.seq,
                first.at,
                last.at,
                first.boot_id,
                stream.len()
            ),
            first_format(&stream, NOW),
        ));
    }
    exec(&db, Some(&old), &sqls).await;
    let s = db.open().await;
    let d = s.device_by_name("gw").await.unwrap().unwrap().id;
    assert_eq!(packs(&db).await, 4);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM pack_streams").await, 4);
    assert_same(&s.records(d, 0, 100).await.unwrap(), &sent, |_| NOW);
    let between = s
        .records_between(d, T0 + 2 * 60_000, T0 + 4 * 60_000)
        .await
        .unwrap();
    assert_same(&between, &minutes(2..=3), |_| NOW);
    // Replayed: duplicates. The next minutes extend the converted packs.
    assert_eq!(s.ingest(d, &sent, NOW).await.unwrap(), ack(20, 0, 20));
    assert_eq!(
        s.ingest(d, &minutes(6..=10), NOW + 300_000).await.unwrap(),
        ack(40, 20, 0)
    );
    assert_eq!((packs(&db).await, packable_rows(&db).await), (4, 0));
    let at = |seq: i64| if seq <= 20 { NOW } else { NOW + 300_000 };
    assert_same(&s.records(d, 0, 100).await.unwrap(), &minutes(1..=10), at);
    // Retention reads them too.
    let cut = T0 + 3 * 60_000;
    assert_eq!(s.delete_minutes_before(cut, 1_000).await.unwrap(), 6);
}
