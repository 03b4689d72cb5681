use super::*;
use crate::wire::v1::Body;

fn beat(seq: i64, at_ms: i64, received_ms: i64) -> Beat {
    Beat {
        seq,
        at_ms,
        mono_ms: at_ms - 1_000,
        boot_id: "b".into(),
        online: true,
        received_ms,
    }
}

#[test]
fn bodies_are_what_ingest_stores() {
    for online in [true, false] {
        let b = Body::Heartbeat { online, count: 1 };
        assert_eq!(serde_json::to_string(&b).unwrap(), body(online));
    }
}

#[test]
fn beats_on_steps_make_one_run_that_reads_back_the_same() {
    let beats: Vec<Beat> = (0..10).map(|k| beat(4 + 4 * k, 60_000 * k, 999)).collect();
    let (ext, new) = fold(None, &beats);
    assert!(ext.is_none());
    assert_eq!(new.len(), 1);
    let back: Vec<StoredRecord> = new[0].records(i64::MIN, i64::MAX).collect();
    assert_eq!(back.len(), 10);
    for (r, b) in back.iter().zip(&beats) {
        assert_eq!(
            (r.seq, r.seq_end, r.at_ms, r.mono_ms),
            (b.seq, b.seq, b.at_ms, b.mono_ms)
        );
        assert_eq!(
            (r.kind.as_str(), r.body.as_str()),
            ("heartbeat", body(true))
        );
    }
    assert_eq!(new[0].last_seq(), 40);
}

#[test]
fn a_broken_step_another_boot_or_state_starts_a_run() {
    let mut beats: Vec<Beat> = (0..3).map(|k| beat(4 + 4 * k, 60_000 * k, 1)).collect();
    beats.push(beat(17, 180_000, 2)); // seq step 5 (a transition between)
    beats.push(Beat {
        online: false,
        ..beat(21, 240_000, 2)
    });
    beats.push(Beat {
        boot_id: "c".into(),
        ..beat(25, 300_000, 2)
    });
    let (_, new) = fold(None, &beats);
    assert_eq!(new.iter().map(|r| r.n).collect::<Vec<_>>(), [3, 1, 1, 1]);
    let back: Vec<i64> = new
        .iter()
        .flat_map(|r| r.records(0, 100))
        .map(|r| r.seq)
        .collect();
    assert_eq!(back, [4, 8, 12, 17, 21, 25]);
}

#[test]
fn a_later_batch_extends_the_last_run_in_place() {
    let (_, first) = fold(None, &[beat(4, 0, 1), beat(8, 60_000, 1)]);
    let (ext, new) = fold(
        first.last().cloned(),
        &[beat(12, 120_000, 5), beat(16, 180_000, 5)],
    );
    let ext = ext.expect("extended");
    assert!(new.is_empty());
    assert_eq!((ext.n, ext.last_seq(), ext.received_ms), (4, 16, 5));
    // Not on the step: a new run, the last one untouched.
    let (ext, new) = fold(Some(ext), &[beat(30, 400_000, 6)]);
    assert!(ext.is_none());
    assert_eq!(new.len(), 1);
}

#[test]
fn merge_pages_and_places_like_one_table() {
    let (_, runs) = fold(
        None,
        &(0..5)
            .map(|k| beat(2 + 2 * k, 1_000 * k, 1))
            .collect::<Vec<_>>(),
    );
    let rows: Vec<StoredRecord> = [1, 3, 5]
        .into_iter()
        .map(|seq| StoredRecord {
            seq,
            seq_end: seq,
            body: "{}".into(),
            kind: "link_state".into(),
            ..runs[0].records(2, 2).next().unwrap()
        })
        .collect();
    let all: Vec<i64> = merge(rows.clone(), &runs, 0, i64::MAX, |_| true, 100)
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(all, [1, 2, 3, 4, 5, 6, 8, 10]);
    let page: Vec<i64> = merge(rows[1..].to_vec(), &runs, 3, 5, |_| true, 2)
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page, [3, 4]);
}
