//! The sequence arithmetic of acknowledgement: how far `acked` advances
//! over stored ranges, and whether a range touches a run (checked at the
//! top of the `i64` range).

/// The highest `h` such that every sequence number in `acked+1..=h` is
/// covered by one of `ranges` (each `(seq, seq_end)`), sorted or not.
/// Checked: at `i64::MAX` nothing follows (validation keeps stored ranges
/// below it, see `wire::v1::MAX_SEQ`).
pub fn advance_contiguous(acked: i64, ranges: &mut [(i64, i64)]) -> i64 {
    ranges.sort_unstable();
    let mut h = acked;
    for &(s, e) in ranges.iter() {
        if !follows(h, s) {
            break;
        }
        h = h.max(e);
    }
    h
}

/// Does a range starting at `seq` touch or overlap the run that ends at `h`
/// (`seq <= h + 1`, without overflow)?
pub fn follows(h: i64, seq: i64) -> bool {
    match h.checked_add(1) {
        Some(next) => seq <= next,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::advance_contiguous;

    #[test]
    fn contiguity_follows_ranges_and_stops_at_gaps() {
        assert_eq!(advance_contiguous(0, &mut []), 0);
        assert_eq!(advance_contiguous(0, &mut [(1, 1), (2, 5), (6, 6)]), 6);
        assert_eq!(advance_contiguous(0, &mut [(2, 2)]), 0);
        assert_eq!(advance_contiguous(3, &mut [(7, 9), (4, 6)]), 9);
        assert_eq!(advance_contiguous(3, &mut [(4, 4), (6, 6)]), 4);
        assert_eq!(advance_contiguous(10, &mut [(1, 12)]), 12);
    }

    /// At the top of the range: no overflow, no wrap-around, and the run
    /// still stops at gaps.
    #[test]
    fn contiguity_at_the_boundaries() {
        let max = i64::MAX;
        assert_eq!(
            advance_contiguous(max - 2, &mut [(max - 1, max - 1)]),
            max - 1
        );
        assert_eq!(advance_contiguous(max - 1, &mut [(max, max)]), max);
        assert_eq!(advance_contiguous(max, &mut [(max, max)]), max);
        assert_eq!(advance_contiguous(max, &mut [(1, 5)]), max);
        assert_eq!(advance_contiguous(max - 3, &mut [(max - 1, max)]), max - 3);
        assert_eq!(advance_contiguous(0, &mut [(1, max - 1), (max, max)]), max);
        assert!(super::follows(max, max));
        assert!(super::follows(max - 1, max));
        assert!(!super::follows(max - 2, max));
        assert!(!super::follows(0, max));
    }

    /// The attack of a record covering up to 2^63 - 1 (which set `acked` to
    /// the maximum for good): validation refuses it, so stored ranges end at
    /// `MAX_SEQ` at most; one record moves `acked` by at most
    /// `MAX_SEQ_SPAN`, and even from `MAX_SEQ` nothing overflows.
    #[test]
    fn acked_cannot_be_driven_to_the_maximum() {
        use crate::wire::v1::{MAX_SEQ, MAX_SEQ_SPAN, parse_batch};
        let json = |end: u64| {
            format!(
                r#"{{"v":1,"device":"d","records":[{{"seq":1,"seq_end":{end},"at":0,"mono_ms":0,"boot_id":"b","body":{{"type":"heartbeat","online":true}}}}]}}"#
            )
        };
        for end in [i64::MAX as u64, MAX_SEQ, MAX_SEQ_SPAN + 1] {
            let e = parse_batch(json(end).as_bytes())
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(e.path, "records[0].seq_end", "{end}: {e}");
        }
        parse_batch(json(MAX_SEQ_SPAN).as_bytes())
            .unwrap()
            .validate()
            .unwrap();
        let top = MAX_SEQ as i64;
        assert_eq!(advance_contiguous(top, &mut [(top, top)]), top);
        assert!(top.checked_add(1).is_some());
    }
}
