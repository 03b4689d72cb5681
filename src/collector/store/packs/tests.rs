use super::*;
use proptest::prelude::*;

fn minute(seq: i64, at_ms: i64, received_ms: i64, rtt: [Option<f64>; 3], bytes: u64) -> Entry {
    Entry {
        seq,
        at_ms,
        mono_ms: at_ms - 1_000,
        received_ms,
        data: Data::Minutes {
            minutes: 1,
            sent: 12,
            lost: 0,
            rtt,
            bytes,
        },
    }
}

fn stream(kind: &'static str, boot: &str) -> Stream {
    Stream {
        kind,
        link: "wlp2s0".into(),
        link_kind: "wifi".into(),
        boot_id: boot.into(),
    }
}

/// An hour of a link's summaries at the agent's shapes costs about six
/// bytes a minute (ten in the first format) and decodes to the same entries.
#[test]
fn an_hour_of_minutes_is_small_and_decodes_the_same() {
    let hour: Vec<Entry> = (0..60)
        .map(|k| {
            let p50 = 25.0 + (k % 7) as f64 * 1.37;
            let rtt = [
                Some((p50 * 100.0_f64).round() / 100.0),
                Some(((p50 * 1.5) * 100.0_f64).round() / 100.0),
                Some(((p50 * 2.1) * 100.0_f64).round() / 100.0),
            ];
            let received = 1_000_000 + (k / 5) * 300_000;
            minute(
                4 * k + 2,
                60_000 * k,
                received,
                rtt,
                2016 + (k as u64 * 37) % 400,
            )
        })
        .collect();
    let body = encode(&hour);
    assert!(body.len() <= 60 * 6, "{} bytes", body.len());
    assert_eq!(decode("link_minutes", &body).unwrap(), hour);
    let old = v1::encode(&hour);
    assert!(
        body.len() * 3 < old.len() * 2,
        "{} against {}",
        body.len(),
        old.len()
    );
    assert_eq!(
        decode("link_minutes", &old).unwrap(),
        hour,
        "old packs read"
    );
}

#[test]
fn heartbeats_cost_less_than_a_byte_each() {
    let beats: Vec<Entry> = (0..60)
        .map(|k| Entry {
            seq: 4 * k + 5,
            at_ms: 60_000 * k,
            mono_ms: 60_000 * k + 7,
            // Uploaded every five minutes, two seconds late.
            received_ms: 2_000 + (k / 5 + 1) * 300_000,
            data: Data::Heartbeat { online: k != 30 },
        })
        .collect();
    let body = encode(&beats);
    assert!(body.len() < 40, "{} bytes", body.len());
    assert_eq!(decode("heartbeat", &body).unwrap(), beats);
    assert_eq!(decode("heartbeat", &v1::encode(&beats)).unwrap(), beats);
}

#[test]
fn bad_bodies_are_errors_not_panics() {
    assert!(decode("link_minutes", &[]).is_err());
    assert!(decode("link_minutes", &[9]).is_err());
    assert!(decode("link_minutes", &[v1::FORMAT, 0, 0x80]).is_err());
    assert!(decode("facts", &[v1::FORMAT]).is_err());
    assert!(decode("link_minutes", &[columns::FORMAT, 0, 0]).is_err());
    // More entries than a pack can hold; a column of an unknown tag.
    assert!(decode("heartbeat", &[columns::FORMAT, 0x80, 0x80, 0x01]).is_err());
    assert!(decode("heartbeat", &[columns::FORMAT, 1, 0x41, 0]).is_err());
    // Runs that do not add up to the entries.
    assert!(decode("heartbeat", &[columns::FORMAT, 2, 0x7f, 1, 3, 0]).is_err());
    for body in [
        encode(&[minute(1, 2, 3, [Some(0.1), None, Some(1e-9)], 4)]),
        v1::encode(&[minute(1, 2, 3, [Some(0.1), None, Some(1e-9)], 4)]),
    ] {
        assert!(decode("link_minutes", &body[..body.len() - 1]).is_err());
    }
}

#[test]
fn entries_join_the_pack_of_their_stream_boot_and_hour() {
    let s = stream("link_minutes", "a");
    let mut packs = Vec::new();
    let e = |seq, at| minute(seq, at, 0, [None; 3], 0);
    assign(&mut packs, 7, &s, e(10, 60_000));
    assign(&mut packs, 7, &s, e(14, 120_000));
    assert_eq!(packs.len(), 1, "extended in place");
    // Another boot, another hour, a time going back, too far a span: new packs.
    assign(&mut packs, 7, &stream("link_minutes", "b"), e(15, 130_000));
    assign(&mut packs, 7, &s, e(18, SPAN_MS));
    assign(&mut packs, 7, &s, e(19, 100_000));
    assign(&mut packs, 7, &s, e(20 + MAX_SPAN, SPAN_MS + 1));
    assert_eq!(packs.len(), 5);
    // A late minute of the first hour joins the pack that takes it.
    assign(&mut packs, 7, &s, e(4_000, 200_000));
    assert_eq!(packs[3].added.len(), 2, "{packs:#?}");
    assert_eq!(packs[3].first_seq, 19);
}

#[test]
fn records_read_back_as_ingest_would_store_them() {
    let body = Body::LinkMinutes {
        link: "wlp2s0".into(),
        kind: LinkKind::Wifi,
        minutes: 1,
        sent: 12,
        lost: 2,
        rtt_p50_ms: Some(25.31),
        rtt_p95_ms: None,
        rtt_max_ms: Some(80.0),
        bytes: 2_100,
    };
    let (kind, link, link_kind, data) = packable(&body, false).unwrap();
    assert!(packable(&body, true).is_none(), "folded records stay rows");
    let pack = Pack {
        device_id: 1,
        first_seq: 3,
        stream: Stream {
            kind,
            link,
            link_kind,
            boot_id: "b".into(),
        },
        entries: Vec::new(),
    };
    let e = Entry {
        seq: 3,
        at_ms: 4,
        mono_ms: 5,
        received_ms: 6,
        data,
    };
    let r = pack.record(&e);
    assert_eq!(r.body, serde_json::to_string(&body).unwrap());
    assert_eq!((r.seq, r.seq_end, r.kind.as_str()), (3, 3, "link_minutes"));
    let beat = Body::Heartbeat {
        online: false,
        count: 1,
    };
    assert!(packable(&beat, false).is_some());
    let folded = Body::Heartbeat {
        online: true,
        count: 2,
    };
    assert!(packable(&folded, false).is_none());
}

fn any_rtt() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        (0_i64..60_000_000).prop_map(|c| Some(c as f64 / 100.0)),
        (0.0_f64..600_000.0).prop_map(Some),
        Just(Some(-0.0)),
    ]
}

fn any_entry() -> impl Strategy<Value = Entry> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<bool>(),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()),
        [any_rtt(), any_rtt(), any_rtt()],
    )
        .prop_map(
            |(seq, at_ms, mono_ms, received_ms, beat, (minutes, sent, lost, bytes), rtt)| Entry {
                seq,
                at_ms,
                mono_ms,
                received_ms,
                data: if beat {
                    Data::Heartbeat {
                        online: sent % 2 == 0,
                    }
                } else {
                    Data::Minutes {
                        minutes: minutes % 3,
                        sent: sent % 3,
                        lost: lost % 2,
                        rtt,
                        bytes,
                    }
                },
            },
        )
}

/// A stored pack as [`tails`] reads it: `n` entries of the span from 0 in
/// `parts` segments, with its entries when read whole.
fn stored_tail(parts: i64, whole: Option<Vec<Entry>>) -> Tail {
    Tail {
        device_id: 7,
        first_seq: 1,
        stream: stream("link_minutes", "a"),
        first_at_ms: 0,
        last_seq: 2,
        last_at_ms: 60_000,
        stored: true,
        parts,
        whole,
        added: Vec::new(),
    }
}

/// How a pack is written: a new one inserted, a stored one extended by a
/// segment of only the new entries (its body never read), rewritten whole
/// when it was read whole.
#[test]
fn stored_packs_are_extended_by_a_segment_of_the_new_entries() {
    let e = |seq, at| minute(seq, at, 0, [None; 3], 0);
    let s = stream("link_minutes", "a");
    let mut packs = Vec::new();
    assign(&mut packs, 7, &s, e(1, 0));
    assert_eq!(packs[0].write(), Write::Insert(encode(&[e(1, 0)])));

    let mut packs = vec![stored_tail(1, None)];
    assert_eq!(packs[0].write(), Write::Keep);
    assign(&mut packs, 7, &s, e(3, 120_000));
    assign(&mut packs, 7, &s, e(4, 180_000));
    assert_eq!(packs.len(), 1, "{packs:#?}");
    assert_eq!((packs[0].last_seq, packs[0].last_at_ms), (4, 180_000));
    assert_eq!(
        packs[0].write(),
        Write::Append(encode(&[e(3, 120_000), e(4, 180_000)]))
    );
    assert_eq!(packs[0].span_ms(), 0);

    let stored = vec![e(1, 0), e(2, 60_000)];
    let mut packs = vec![stored_tail(MOST_PARTS, Some(stored.clone()))];
    assign(&mut packs, 7, &s, e(3, 120_000));
    let mut all = stored;
    all.push(e(3, 120_000));
    assert_eq!(packs[0].write(), Write::Rewrite(encode(&all)));
}

/// Five minutes of a link appended as a segment cost tens of bytes (so a
/// pack is rewritten whole every [`MOST_PARTS`] segments and sealed when
/// its span is over) and read back after the entries before them.
#[test]
fn segments_read_back_in_order_and_sealing_earns_its_keep() {
    let minutes: Vec<Entry> = (0..120)
        .map(|k| {
            minute(
                4 * k + 2,
                60_000 * k,
                1_000_000 + (k / 5) * 300_000,
                [Some(25.5), Some(31.0), Some(40.25)],
                2_000 + k as u64,
            )
        })
        .collect();
    let mut body = Vec::new();
    for upload in minutes.chunks(5) {
        body.extend(encode(upload));
    }
    assert_eq!(decode("link_minutes", &body).unwrap(), minutes);
    let sealed = encode(&minutes);
    let per_segment = (body.len() - sealed.len()) / 23;
    assert!(per_segment < 64, "{per_segment} bytes a segment");
    assert!(
        sealed.len() * 3 < body.len(),
        "{} against {}",
        sealed.len(),
        body.len()
    );
    // Bytes after a segment that are not one are an error.
    body.push(0);
    assert!(decode("link_minutes", &body).is_err());
}

/// The entries of `kind` among `entries`.
fn of_kind(entries: &[Entry], kind: &str) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| matches!(e.data, Data::Heartbeat { .. }) == (kind == "heartbeat"))
        .cloned()
        .collect()
}

proptest! {
    /// Entries cut into segments anywhere decode as the entries.
    #[test]
    fn segments_decode_as_their_entries(
        entries in proptest::collection::vec(any_entry(), 1..40),
        cuts in proptest::collection::vec(1_usize..8, 1..10),
    ) {
        for kind in ["link_minutes", "heartbeat"] {
            let want = of_kind(&entries, kind);
            let mut body = Vec::new();
            let mut rest = &want[..];
            for &c in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at(c.min(rest.len()));
                body.extend(encode(now));
                rest = later;
            }
            if want.is_empty() {
                body = encode(&want);
            }
            prop_assert_eq!(&decode(kind, &body).unwrap(), &want);
        }
    }

    /// Any entries of one kind, however odd their values, decode to themselves.
    #[test]
    fn any_entries_round_trip(entries in proptest::collection::vec(any_entry(), 0..40)) {
        for kind in ["link_minutes", "heartbeat"] {
            let want = of_kind(&entries, kind);
            prop_assert_eq!(&decode(kind, &encode(&want)).unwrap(), &want);
            prop_assert_eq!(&decode(kind, &v1::encode(&want)).unwrap(), &want);
        }
    }
}
