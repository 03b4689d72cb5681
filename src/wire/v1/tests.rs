use super::*;

fn sample() -> String {
    r#"{"v":1,"device":"dhaka-gw1","records":[
          {"seq":1,"at":1790000000000,"mono_ms":1000,"boot_id":"b1",
           "body":{"type":"lifecycle","event":"start","boot_time":1789999990}},
          {"seq":2,"at":1790000001000,"mono_ms":2000,"boot_id":"b1",
           "body":{"type":"link_state","link":"eth0","kind":"broadband","from":"down","to":"up","reason":null}},
          {"seq":3,"seq_end":5,"at":1790000060000,"mono_ms":61000,"boot_id":"b1",
           "body":{"type":"heartbeat","online":true,"count":3}}
        ]}"#
        .to_string()
}

#[test]
fn a_good_batch_parses_and_validates_and_round_trips() {
    let b = parse_batch(sample().as_bytes()).unwrap();
    b.validate().unwrap();
    assert_eq!(b.records.len(), 3);
    let again = parse_batch(&serde_json::to_vec(&b).unwrap()).unwrap();
    assert_eq!(again, b);
}

/// A dead clock battery (the year 2000) or a clock years ahead: the
/// records are what the agent measured and must not block its spool.
#[test]
fn times_from_a_wrong_clock_are_accepted() {
    for at in ["946684800000", "2524608000000", "0"] {
        let b = parse_batch(sample().replace("1790000001000", at).as_bytes()).unwrap();
        b.validate().unwrap();
    }
}

#[test]
fn unknown_fields_and_wrong_types_name_the_path() {
    let e = parse_batch(
        sample()
            .replace("\"mono_ms\":2000", "\"mono_ms\":2000,\"x\":1")
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.path, "records[1].x", "{e}");
    assert!(e.message.contains("unknown field `x`"), "{e}");
    let e = parse_batch(
        sample()
            .replace("\"to\":\"up\"", "\"to\":\"sideways\"")
            .as_bytes(),
    )
    .unwrap_err();
    assert!(e.path.starts_with("records[1].body"), "{e}");
    let e = parse_batch(
        sample()
            .replace("\"seq\":1,", "\"seq\":\"one\",")
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.path, "records[0].seq", "{e}");
    let e = parse_batch(b"{not json").unwrap_err();
    assert!(!e.message.is_empty());
}

#[test]
fn out_of_range_values_name_the_path() {
    let cases = [
        (sample().replace("\"v\":1", "\"v\":2"), "v"),
        (
            sample().replace("\"seq\":1,", "\"seq\":0,"),
            "records[0].seq",
        ),
        (
            sample().replace("\"seq\":2,", "\"seq\":1,"),
            "records[1].seq",
        ),
        (
            sample().replace("\"seq_end\":5", "\"seq_end\":2"),
            "records[2].seq_end",
        ),
        (sample().replace("1790000001000", "-1"), "records[1].at"),
        (
            sample().replace("1790000001000", "253402300800000"),
            "records[1].at",
        ),
        (
            sample().replace("\"count\":3", "\"count\":0"),
            "records[2].body.count",
        ),
        (
            sample().replace("\"link\":\"eth0\"", "\"link\":\"\""),
            "records[1].body.link",
        ),
        (
            sample().replace("\"device\":\"dhaka-gw1\"", "\"device\":\"\""),
            "device",
        ),
    ];
    for (text, path) in cases {
        let b = parse_batch(text.as_bytes()).unwrap();
        let e = b.validate().unwrap_err();
        assert_eq!(e.path, path, "{e}");
    }
}

/// A batch of one heartbeat with `seq`, `seq_end` and `mono_ms` as given
/// (JSON number text).
fn one(seq: &str, seq_end: Option<&str>, mono: &str) -> String {
    let end = seq_end
        .map(|e| format!(",\"seq_end\":{e}"))
        .unwrap_or_default();
    format!(
        r#"{{"v":1,"device":"d","records":[{{"seq":{seq}{end},"at":1790000000000,"mono_ms":{mono},"boot_id":"b","body":{{"type":"heartbeat","online":true}}}}]}}"#
    )
}

fn refused(json: &str) -> Invalid {
    match parse_batch(json.as_bytes()) {
        Err(e) => e,
        Ok(b) => b.validate().unwrap_err(),
    }
}

/// Every integer the store keeps fits its signed 64-bit columns, and the
/// last sequence number a record covers leaves room for `acked + 1`.
#[test]
fn integers_stop_where_storage_does() {
    let max = i64::MAX as u64; // 2^63 - 1
    // At the edge: accepted.
    parse_batch(one(&MAX_SEQ.to_string(), None, &max.to_string()).as_bytes())
        .unwrap()
        .validate()
        .unwrap();
    let span_end = (MAX_SEQ_SPAN).to_string();
    parse_batch(one("1", Some(&span_end), "0").as_bytes())
        .unwrap()
        .validate()
        .unwrap();
    // One over: refused, naming the field and the limit.
    for (json, field) in [
        (one(&max.to_string(), None, "0"), "records[0].seq"),
        (one(&u64::MAX.to_string(), None, "0"), "records[0].seq"),
        (one("1", Some(&max.to_string()), "0"), "records[0].seq_end"),
        (
            one(&MAX_SEQ.to_string(), Some(&max.to_string()), "0"),
            "records[0].seq_end",
        ),
        (
            one("1", Some(&u64::MAX.to_string()), "0"),
            "records[0].seq_end",
        ),
        (
            one("1", Some(&(MAX_SEQ_SPAN + 1).to_string()), "0"),
            "records[0].seq_end",
        ),
        (one("1", None, &(max + 1).to_string()), "records[0].mono_ms"),
        (one("1", None, &u64::MAX.to_string()), "records[0].mono_ms"),
        // Beyond u64: not an unsigned integer at all.
        (one("18446744073709551616", None, "0"), "records[0].seq"),
        (one("-1", None, "0"), "records[0].seq"),
    ] {
        let e = refused(&json);
        assert_eq!(e.path, field, "{json}: {e}");
    }
    let e = refused(&one("1", Some(&max.to_string()), "0"));
    assert!(e.message.contains("2^63 - 2"), "{e}");
    let bytes = sample().replace(
            r#""count":3}"#,
            r#""count":3}},{"seq":6,"at":1790000060000,"mono_ms":61000,"boot_id":"b1","body":{"type":"link_minutes","link":"eth0","kind":"wifi","minutes":1,"sent":1,"lost":0,"bytes":9223372036854775808}"#,
        );
    assert_eq!(refused(&bytes).path, "records[3].body.bytes");
}

/// Strings, record bodies and the record count are bounded while the
/// JSON is decoded: the error names the field and the limit.
#[test]
fn sizes_are_bounded_while_decoding() {
    let long_boot = sample().replacen("\"b1\"", &format!("\"{}\"", "b".repeat(65)), 1);
    let e = parse_batch(long_boot.as_bytes()).unwrap_err();
    assert_eq!(e.path, "records[0].boot_id", "{e}");
    assert!(e.message.contains("at most 64"), "{e}");
    let long_device = sample().replace("dhaka-gw1", &"d".repeat(129));
    let e = parse_batch(long_device.as_bytes()).unwrap_err();
    assert_eq!(e.path, "device", "{e}");
    assert!(e.message.contains("at most 128"), "{e}");
    // A body of 1 MiB (a long string inside it): refused before decoding.
    let big = sample().replace(
        r#""reason":null"#,
        &format!(r#""reason":"{}""#, "x".repeat(1 << 20)),
    );
    let e = parse_batch(big.as_bytes()).unwrap_err();
    assert_eq!(e.path, "records[1].body", "{e}");
    assert!(e.message.contains(&MAX_RECORD_BODY.to_string()), "{e}");
    // Just under the limit: decoded (and then refused by validation for
    // its over-long reason, naming that field).
    let pad = MAX_RECORD_BODY - 200;
    let fits = sample().replace(
        r#""reason":null"#,
        &format!(r#""reason":"{}""#, "x".repeat(pad)),
    );
    let e = parse_batch(fits.as_bytes())
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.path, "records[1].body.reason", "{e}");
    // One record over the count.
    let rec = r#"{"seq":SEQ,"at":1790000000000,"mono_ms":1,"boot_id":"b","body":{"type":"heartbeat","online":true}}"#;
    let recs: Vec<String> = (1..=MAX_RECORDS + 1)
        .map(|i| rec.replace("SEQ", &i.to_string()))
        .collect();
    let json = format!(r#"{{"v":1,"device":"d","records":[{}]}}"#, recs.join(","));
    let e = parse_batch(json.as_bytes()).unwrap_err();
    assert_eq!(e.path, "records", "{e}");
    assert!(e.message.contains(&MAX_RECORDS.to_string()), "{e}");
    let json = format!(
        r#"{{"v":1,"device":"d","records":[{}]}}"#,
        recs[..MAX_RECORDS].join(",")
    );
    parse_batch(json.as_bytes()).unwrap().validate().unwrap();
}

/// The spool's backlog after a batch: optional, round-trips, each field
/// bounded by what storage holds and named when refused.
#[test]
fn the_backlog_is_optional_bounded_and_named() {
    let with = |backlog: &str| {
        sample().replacen(
            "\"records\":[",
            &format!("\"backlog\":{backlog},\"records\":["),
            1,
        )
    };
    let b = parse_batch(with(r#"{"records":12000,"oldest_at":1789990000000}"#).as_bytes()).unwrap();
    b.validate().unwrap();
    assert_eq!(
        b.backlog,
        Some(Backlog {
            records: 12_000,
            oldest_at: Some(1_789_990_000_000)
        })
    );
    assert_eq!(parse_batch(&serde_json::to_vec(&b).unwrap()).unwrap(), b);
    let none = parse_batch(with(r#"{"records":0}"#).as_bytes()).unwrap();
    none.validate().unwrap();
    assert_eq!(none.backlog.unwrap().oldest_at, None);
    let max = i64::MAX as u64;
    parse_batch(with(&format!(r#"{{"records":{max}}}"#)).as_bytes())
        .unwrap()
        .validate()
        .unwrap();
    for (backlog, path) in [
        (format!(r#"{{"records":{}}}"#, max + 1), "backlog.records"),
        (
            r#"{"records":1,"oldest_at":-1}"#.to_string(),
            "backlog.oldest_at",
        ),
        (
            r#"{"records":1,"oldest_at":253402300800000}"#.to_string(),
            "backlog.oldest_at",
        ),
        (r#"{"records":-1}"#.to_string(), "backlog.records"),
        (r#"{"records":1,"bytes":5}"#.to_string(), "backlog"),
    ] {
        let e = refused(&with(&backlog));
        assert!(e.path.starts_with(path), "{backlog}: {e}");
    }
}
