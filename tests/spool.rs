//! The durable spool: order, sequence numbers that are never reused (after
//! acks, reopens and a SIGKILL mid-stream), the disk budget's folding (no
//! transition lost, seq ranges a partition, totals preserved) and stats.

use linkwatch::agent::spool::Spool;
use linkwatch::wire::v1::{Body, LifecycleEvent, Record};
use linkwatch::wire::{LinkKind, LinkState};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T0: i64 = 1_800_000_000_000;

fn minutes(link: &str, sent: u32, lost: u32) -> Body {
    Body::LinkMinutes {
        link: link.into(),
        kind: if link.starts_with("ww") {
            LinkKind::Mobile
        } else {
            LinkKind::Broadband
        },
        minutes: 1,
        sent,
        lost,
        rtt_p50_ms: Some(20.0),
        rtt_p95_ms: Some(40.0),
        rtt_max_ms: Some(80.0 + f64::from(lost)),
        bytes: 1000 + u64::from(sent),
    }
}

fn heartbeat() -> Body {
    Body::Heartbeat {
        online: true,
        count: 1,
    }
}

fn state(link: &str, to: LinkState) -> Body {
    Body::LinkState {
        link: link.into(),
        kind: LinkKind::Broadband,
        from: LinkState::Up,
        to,
        reason: Some("probes".into()),
    }
}

fn end(r: &Record) -> u64 {
    r.seq_end.unwrap_or(r.seq)
}

/// Every record, in order.
async fn all(spool: &Spool) -> Vec<Record> {
    spool.batch(usize::MAX).await.unwrap()
}

/// The records' ranges are increasing, disjoint and cover `from..=to` exactly.
fn assert_partition(recs: &[Record], from: u64, to: u64) {
    let mut next = from;
    for r in recs {
        assert_eq!(r.seq, next, "gap or overlap at {r:?}");
        assert!(end(r) >= r.seq);
        next = end(r) + 1;
    }
    assert_eq!(next, to + 1, "ranges end at {} instead of {to}", next - 1);
}

#[tokio::test]
async fn append_batch_ack_keep_order_and_seqs_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/spool.db");
    let spool = Spool::open(&path, 1 << 20).await.unwrap();
    assert!(
        path.exists(),
        "the file and its parent directories are created"
    );
    for i in 0..10u64 {
        let seq = spool
            .append(T0 + i as i64, i, "boot-a", &heartbeat())
            .await
            .unwrap();
        assert_eq!(seq, i + 1);
    }
    let b = spool.batch(4).await.unwrap();
    assert_eq!(
        b.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(b[2].at, T0 + 2);
    assert_eq!(b[2].mono_ms, 2);
    assert_eq!(b[2].boot_id, "boot-a");
    assert_eq!(b[2].body, heartbeat());
    assert_eq!(b[2].seq_end, None);

    assert_eq!(spool.ack(4).await.unwrap(), 4);
    assert_eq!(
        spool.ack(4).await.unwrap(),
        0,
        "acking again deletes nothing"
    );
    assert_eq!(spool.batch(1).await.unwrap()[0].seq, 5);
    // Ack everything: the next seq still follows on.
    assert_eq!(spool.ack(10).await.unwrap(), 6);
    assert!(spool.batch(10).await.unwrap().is_empty());
    assert_eq!(
        spool.append(T0, 0, "boot-a", &heartbeat()).await.unwrap(),
        11
    );
    let st = spool.stats().await.unwrap();
    assert_eq!(st.depth, 1);
    assert_eq!(st.last_seq, 11);
    assert_eq!(st.oldest_at_ms, Some(T0));
    assert!(st.bytes > 0);
    spool.close().await;
    drop(spool);

    // Reopen: the counter survived, the waiting record too.
    let spool = Spool::open(&path, 1 << 20).await.unwrap();
    assert_eq!(
        all(&spool).await.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![11]
    );
    assert_eq!(spool.ack(11).await.unwrap(), 1);
    spool.close().await;
    drop(spool);
    let spool = Spool::open(&path, 1 << 20).await.unwrap();
    assert_eq!(
        spool.append(T0, 0, "boot-b", &heartbeat()).await.unwrap(),
        12,
        "an empty spool still remembers its last seq"
    );
    let st = spool.stats().await.unwrap();
    assert_eq!((st.depth, st.last_seq), (1, 12));
}

#[tokio::test]
async fn an_ack_beyond_the_spool_renumbers_instead_of_deleting() {
    // The collector knew this device up to 500 under an older, lost spool.
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("s.db"), 1 << 20)
        .await
        .unwrap();
    for i in 0..3 {
        spool.append(T0 + i, 0, "b", &heartbeat()).await.unwrap();
    }
    assert_eq!(spool.ack(500).await.unwrap(), 0);
    let seqs: Vec<u64> = all(&spool).await.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![501, 502, 503]);
    assert_eq!(spool.append(T0, 0, "b", &heartbeat()).await.unwrap(), 504);
}

/// An `acked` near the top of the range (a collector fed a record ending at
/// 2^63 - 2): renumbering above it would pass what the collector accepts, so
/// the spool refuses it, deletes nothing and keeps its numbers; an `acked`
/// beyond 2^63 - 1 is not taken for a negative number either.
#[tokio::test]
async fn an_ack_too_high_to_renumber_is_refused_and_nothing_is_lost() {
    use linkwatch::wire::v1::MAX_SEQ;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("s.db"), 1 << 20)
        .await
        .unwrap();
    for i in 0..3 {
        spool.append(T0 + i, 0, "b", &heartbeat()).await.unwrap();
    }
    for acked in [MAX_SEQ, MAX_SEQ - 2, i64::MAX as u64, u64::MAX] {
        let e = spool.ack(acked).await.unwrap_err().to_string();
        assert!(e.contains("nothing is deleted"), "{acked}: {e}");
        assert!(e.contains(&acked.to_string()), "{e}");
        let seqs: Vec<u64> = all(&spool).await.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3], "after acked {acked}");
    }
    // The highest acked that still leaves room renumbers as usual.
    assert_eq!(spool.ack(MAX_SEQ - 3).await.unwrap(), 0);
    let seqs: Vec<u64> = all(&spool).await.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![MAX_SEQ - 2, MAX_SEQ - 1, MAX_SEQ]);
}

#[tokio::test]
async fn stats_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: opening fails and says where.
    let path = dir.path().join("taken");
    std::fs::create_dir(&path).unwrap();
    let err = Spool::open(&path, 1 << 20).await.unwrap_err().to_string();
    assert!(err.contains(path.to_str().unwrap()), "{err}");

    let spool = Spool::open(&dir.path().join("s.db"), 1 << 20)
        .await
        .unwrap();
    let st = spool.stats().await.unwrap();
    assert_eq!(st.depth, 0);
    assert_eq!(st.bytes, 0);
    assert_eq!(st.oldest_at_ms, None);
    assert_eq!(st.last_seq, 0);
    spool.append(T0 + 5, 1, "b", &heartbeat()).await.unwrap();
    spool
        .append(T0 + 9, 2, "b", &state("eth0", LinkState::Down))
        .await
        .unwrap();
    let st = spool.stats().await.unwrap();
    assert_eq!(st.depth, 2);
    assert_eq!(st.oldest_at_ms, Some(T0 + 5));
    spool.ack(1).await.unwrap();
    let st2 = spool.stats().await.unwrap();
    assert_eq!(st2.depth, 1);
    assert_eq!(st2.oldest_at_ms, Some(T0 + 9));
    assert!(st2.bytes < st.bytes && st2.bytes > 0);
}

/// The writer half of the crash test: runs only when re-invoked by
/// `a_sigkilled_writer_loses_no_returned_record` with `LW_SPOOL_CHILD` set.
#[test]
fn spool_child_writer() {
    let Ok(path) = std::env::var("LW_SPOOL_CHILD") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let spool = Spool::open(Path::new(&path), 1 << 30).await.unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0u64.. {
            let body = if i % 7 == 0 {
                state("eth0", LinkState::Down)
            } else {
                minutes("eth0", 120, (i % 3) as u32)
            };
            let seq = spool
                .append(T0 + i as i64, i, "boot-c", &body)
                .await
                .unwrap();
            writeln!(out, "SEQ {seq}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[test]
fn a_sigkilled_writer_loses_no_returned_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "spool_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LW_SPOOL_CHILD", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read the child's reports on a thread, so the deadline holds even if it hangs.
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print "test spool_child_writer ... " on the same line.
            if let Some(i) = line.find("SEQ ")
                && tx.send(line[i + 4..].trim().parse().unwrap()).is_err()
            {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reported = Vec::new();
    while reported.len() < 300 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seq) => reported.push(seq),
            Err(e) => {
                let _ = child.kill();
                panic!("child reported {} seqs before {e:?}", reported.len());
            }
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();
    // Whatever was still in the pipe was returned by append too.
    reader.join().unwrap();
    reported.extend(rx.try_iter());
    let max_reported = *reported.iter().max().unwrap();
    assert_eq!(reported, (1..=max_reported).collect::<Vec<_>>());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let spool = Spool::open(&path, 1 << 30).await.unwrap();
        let recs = all(&spool).await;
        let n = recs.len() as u64;
        assert!(
            n >= max_reported,
            "{n} records survived, {max_reported} were reported written"
        );
        assert_partition(&recs, 1, n);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.at, T0 + i as i64, "record {} intact", r.seq);
        }
        let st = spool.stats().await.unwrap();
        assert_eq!(st.last_seq, n);
        // And numbering goes on from there.
        assert_eq!(
            spool.append(T0, 0, "boot-d", &heartbeat()).await.unwrap(),
            n + 1
        );
    });
}

#[derive(Default, Debug, PartialEq)]
struct Totals {
    minutes: u64,
    sent: u64,
    lost: u64,
    bytes: u64,
    heartbeats: u64,
    states: Vec<(u64, String)>,
    others: u64,
}

fn totals(recs: &[Record], link: &str) -> Totals {
    let mut t = Totals::default();
    for r in recs {
        match &r.body {
            Body::LinkMinutes {
                link: l,
                minutes,
                sent,
                lost,
                bytes,
                ..
            } if l == link => {
                t.minutes += u64::from(*minutes);
                t.sent += u64::from(*sent);
                t.lost += u64::from(*lost);
                t.bytes += bytes;
            }
            Body::Heartbeat { count, .. } => t.heartbeats += u64::from(*count),
            Body::LinkState { link: l, to, .. } => t.states.push((r.seq, format!("{l} {to}"))),
            Body::LinkMinutes { .. } => {}
            _ => t.others += 1,
        }
    }
    t
}

#[tokio::test]
async fn over_budget_folds_minutes_and_heartbeats_but_never_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("fold.db"), 64 * 1024)
        .await
        .unwrap();
    let mut expected_states = Vec::new();
    let mut clock = 0u64;
    let mut add = async |spool: &Spool, body: Body| {
        clock += 20_000;
        spool
            .append(T0 + clock as i64, clock, "boot-f", &body)
            .await
            .unwrap()
    };
    // The uploader took the first records before the disk filled up: they
    // must stay as they are.
    for _ in 0..5 {
        add(&spool, heartbeat()).await;
    }
    let handed_out = spool.batch(5).await.unwrap();
    let minutes_total = 1500u64;
    for minute in 0..minutes_total {
        add(&spool, minutes("eth0", 120, (minute % 4) as u32)).await;
        add(&spool, minutes("wwan0", 12, 1)).await;
        add(&spool, heartbeat()).await;
        if minute % 97 == 13 {
            let to = if minute % 2 == 0 {
                LinkState::Down
            } else {
                LinkState::Up
            };
            let seq = add(&spool, state("eth0", to)).await;
            expected_states.push((seq, format!("eth0 {to}")));
        }
        if minute == 700 {
            add(
                &spool,
                Body::Lifecycle {
                    event: LifecycleEvent::ClockStep,
                    boot_time: None,
                    detail: None,
                },
            )
            .await;
        }
    }
    let st = spool.stats().await.unwrap();
    let recs = all(&spool).await;
    assert_eq!(recs.len() as u64, st.depth);
    // Nothing deleted: the ranges cover 1..=last_seq exactly once.
    assert_partition(&recs, 1, st.last_seq);
    assert_eq!(
        &recs[..5],
        &handed_out[..],
        "handed-out records are not folded"
    );
    let eth0 = totals(&recs, "eth0");
    let wwan0 = totals(&recs, "wwan0");
    assert_eq!(
        eth0.states, expected_states,
        "every transition survives, in place"
    );
    assert_eq!(eth0.others, 1, "the lifecycle record survives");
    assert_eq!(eth0.minutes, minutes_total);
    assert_eq!(wwan0.minutes, minutes_total);
    assert_eq!(eth0.sent, 120 * minutes_total);
    assert_eq!(eth0.lost, (0..minutes_total).map(|m| m % 4).sum::<u64>());
    assert_eq!(eth0.bytes, 1120 * minutes_total);
    assert_eq!(wwan0.sent, 12 * minutes_total);
    assert_eq!(eth0.heartbeats, 5 + minutes_total);
    assert!(st.folded > 0, "{st:?}");
    assert_eq!(
        st.depth + st.folded,
        st.last_seq,
        "every seq is a record or was folded into one"
    );
    assert!(
        st.bytes <= 64 * 1024,
        "folding brought the spool within budget: {st:?}"
    );
    assert_eq!(st.over_budget, 0);
    // Folded records are valid protocol: ranges, minutes within the cap.
    let batch = linkwatch::wire::v1::Batch {
        v: 1,
        device: "d".into(),
        records: recs.clone(),
        next_upload_within_s: None,
        backlog: None,
    };
    batch.validate().unwrap();
    for r in &recs {
        if let Body::LinkMinutes {
            minutes,
            rtt_p50_ms,
            rtt_p95_ms,
            rtt_max_ms,
            ..
        } = &r.body
        {
            assert!(*minutes <= 60);
            assert_eq!(*rtt_p50_ms, Some(20.0));
            assert_eq!(*rtt_p95_ms, Some(40.0));
            assert!(rtt_max_ms.unwrap() >= 80.0);
        }
    }
    // No fold crosses a transition: the records right around each
    // link_state are not merged with anything across it.
    for (seq, _) in &expected_states {
        let i = recs.iter().position(|r| r.seq == *seq).unwrap();
        assert_eq!(end(&recs[i]), *seq);
    }
}

#[tokio::test]
async fn over_budget_with_nothing_to_fold_keeps_writing_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("full.db"), 2048)
        .await
        .unwrap();
    for i in 0..100i64 {
        let to = if i % 2 == 0 {
            LinkState::Down
        } else {
            LinkState::Up
        };
        spool
            .append(T0 + i, i as u64, "b", &state("eth0", to))
            .await
            .unwrap();
    }
    let st = spool.stats().await.unwrap();
    assert_eq!(st.depth, 100, "no transition is dropped");
    assert_eq!(st.folded, 0);
    assert!(st.bytes > 2048);
    assert!(st.over_budget > 50, "{st:?}");
    assert_partition(&all(&spool).await, 1, 100);
}

/// Figures (run with `--ignored --nocapture`): append latency, file bytes
/// per record, cost of the first fold of a full spool.
#[tokio::test]
#[ignore]
async fn spool_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig.db");
    let budget = 2 * 1024 * 1024;
    let spool = Spool::open(&path, budget).await.unwrap();
    let mut worst = Duration::ZERO;
    let mut worst_at = 0;
    let started = Instant::now();
    let mut n = 0u64;
    let mut clock = 0u64;
    loop {
        clock += 20_000;
        let body = match n % 3 {
            0 => minutes("eth0", 120, 1),
            1 => minutes("wwan0", 12, 0),
            _ => heartbeat(),
        };
        let t = Instant::now();
        spool
            .append(
                T0 + clock as i64,
                clock,
                "0b1d5e8c-3f4e-4c1a-9d2b-7e6f5a4b3c2d",
                &body,
            )
            .await
            .unwrap();
        let took = t.elapsed();
        if took > worst {
            worst = took;
            worst_at = n;
        }
        n += 1;
        if n.is_multiple_of(300) && n > worst_at + 3000 && spool.stats().await.unwrap().folded > 0 {
            break;
        }
    }
    let total = started.elapsed();
    let st = spool.stats().await.unwrap();
    spool.close().await;
    let file = std::fs::metadata(&path).unwrap().len();
    let _ = writeln!(
        std::io::stderr(),
        "{n} appends in {total:?} ({:?}/append), worst {worst:?} at append {worst_at} \
         (the first fold); after: {st:?}; file {file} B = {} B/record, payload {} B/record before folding",
        total / n as u32,
        file / st.depth.max(1),
        budget / worst_at.max(1),
    );
}
