//! Unit tests of the agent spool (`super`).

use super::fold::{chunks, fold_chunk, merge_bodies};
use super::*;
use crate::wire::{LinkKind, LinkState};

fn rec(seq: u64, body: Body) -> Record {
    Record {
        seq,
        seq_end: None,
        at: 1_800_000_000_000 + seq as i64 * 1000,
        mono_ms: seq * 1000,
        boot_id: "b".into(),
        body,
    }
}
fn mins(link: &str, sent: u32, lost: u32, p50: f64) -> Body {
    Body::LinkMinutes {
        link: link.into(),
        kind: LinkKind::Broadband,
        minutes: 1,
        sent,
        lost,
        rtt_p50_ms: Some(p50),
        rtt_p95_ms: Some(p50 * 2.0),
        rtt_max_ms: Some(p50 * 3.0),
        bytes: 100,
    }
}
fn hb() -> Body {
    Body::Heartbeat {
        online: true,
        count: 1,
    }
}
fn state() -> Body {
    Body::LinkState {
        link: "eth0".into(),
        kind: LinkKind::Broadband,
        from: LinkState::Up,
        to: LinkState::Down,
        reason: None,
    }
}

#[tokio::test]
async fn the_file_is_wal_with_full_sync() {
    let dir = std::env::temp_dir().join(format!("lw-spool-unit-{}", std::process::id()));
    let spool = Spool::open(&dir.join("s.db"), 1 << 20).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&spool.pool)
        .await
        .unwrap();
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&spool.pool)
        .await
        .unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2));
    spool.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn interleaved_groups_fold_into_a_partition_of_the_chunk() {
    let recs: Vec<Record> = (1..=9)
        .map(|s| match s % 3 {
            1 => rec(s, mins("eth0", 10, 0, 10.0)),
            2 => rec(s, mins("wwan0", 10, 5, 50.0)),
            _ => rec(s, hb()),
        })
        .collect();
    let cs = chunks(&recs);
    assert_eq!(cs, vec![0..9]);
    let out = fold_chunk(&recs);
    let ranges: Vec<(u64, u64)> = out
        .iter()
        .map(|r| (r.seq, r.seq_end.unwrap_or(r.seq)))
        .collect();
    assert_eq!(ranges, vec![(1, 3), (4, 6), (7, 9)]);
    match &out[1].body {
        Body::LinkMinutes {
            link,
            minutes,
            sent,
            lost,
            rtt_p50_ms,
            ..
        } => {
            assert_eq!(link, "wwan0");
            assert_eq!((*minutes, *sent, *lost), (3, 30, 15));
            assert_eq!(*rtt_p50_ms, Some(50.0));
        }
        b => panic!("{b:?}"),
    }
    assert_eq!(
        out[2].body,
        Body::Heartbeat {
            online: true,
            count: 3
        }
    );
    assert_eq!(out[2].at, recs[8].at);
}

#[test]
fn chunks_stop_at_transitions_boots_gaps_and_caps() {
    let mut recs = vec![
        rec(1, hb()),
        rec(2, hb()),
        rec(3, state()),
        rec(4, hb()),
        rec(5, hb()),
        rec(7, hb()),
    ];
    recs[4].boot_id = "other".into();
    assert_eq!(chunks(&recs), vec![0..2, 3..4, 4..5, 5..6]);
    let many: Vec<Record> = (1..=130).map(|s| rec(s, hb())).collect();
    assert_eq!(chunks(&many), vec![0..60, 60..120, 120..130]);
}

#[test]
fn percentiles_are_weighted_by_answered_probes() {
    let a = rec(1, mins("eth0", 10, 0, 10.0));
    let b = rec(2, mins("eth0", 10, 10, 1000.0));
    let c = rec(3, mins("eth0", 30, 0, 30.0));
    match merge_bodies(&[&a, &b, &c]) {
        Body::LinkMinutes {
            rtt_p50_ms,
            rtt_max_ms,
            minutes,
            ..
        } => {
            // weights 10, 0, 30
            assert_eq!(rtt_p50_ms, Some(25.0));
            assert_eq!(rtt_max_ms, Some(3000.0));
            assert_eq!(minutes, 3);
        }
        b => panic!("{b:?}"),
    }
}
