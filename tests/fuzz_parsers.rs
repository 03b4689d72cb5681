//! Fuzzing of the collector's parsers of untrusted input, as property tests
//! with a fixed budget (cases per property below; `LINKWATCH_FUZZ_CASES`
//! raises every count for a longer local run): the wire decoder (batch JSON
//! to records: `v1::parse_batch` and `Batch::validate`), the hierarchy import
//! (`parse_offices_csv`, `parse_offices_toml`) and the report query parser
//! (`ReportQuery::parse`, shared by the read API and `linkwatch report`; the
//! API's `query_params`). Each gets arbitrary bytes or strings and
//! structure-aware inputs (valid documents, then mutated). Nothing may panic;
//! what is accepted must meet the rules the rest of the collector relies on,
//! and what is refused must say where. The same inputs through the real HTTP
//! handlers and the real binary: `tests/fuzz_http.rs`.

mod common;

use common::fuzz::*;
use linkwatch::collector::devices::{MAX_FIELD, parse_offices_csv, parse_offices_toml};
use linkwatch::collector::http::query_params;
use linkwatch::collector::report::{MAX_LIMIT, MAX_RANGE_DAYS, ReportQuery};
use linkwatch::collector::store::Office;
use linkwatch::wire::v1::{self, MAX_TIME_MS};
use proptest::prelude::*;
use std::path::Path;

// ---------------------------------------------------------------------------
// The wire decoder

/// What an accepted batch must satisfy for the store.
fn check_accepted(b: &v1::Batch) {
    let mut prev = 0u64;
    for r in &b.records {
        assert!(r.seq >= 1 && r.seq > prev, "{b:?}");
        prev = r.seq_end.unwrap_or(r.seq);
        assert!(prev >= r.seq);
        // What storage holds (BIGINT): the acknowledgement can still move
        // past the last record, and monotonic stamps fit.
        assert!(prev < i64::MAX as u64, "{b:?}");
        assert!(r.mono_ms <= i64::MAX as u64, "{b:?}");
        assert!((0..=MAX_TIME_MS).contains(&r.at));
        assert!(!r.boot_id.is_empty() && r.boot_id.len() <= 64);
    }
    assert!(b.records.len() <= v1::MAX_RECORDS);
}

fn decode(bytes: &[u8]) {
    match v1::parse_batch(bytes) {
        Ok(b) => match b.validate() {
            Ok(()) => check_accepted(&b),
            Err(e) => assert!(!e.path.is_empty() && !e.message.is_empty(), "{e:?}"),
        },
        Err(e) => assert!(!e.path.is_empty() && !e.message.is_empty(), "{e:?}"),
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn decoder_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        decode(&bytes);
    }

    #[test]
    fn decoder_survives_arbitrary_json(v in json_value()) {
        decode(v.to_string().as_bytes());
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn valid_batches_decode_and_round_trip(b in batch()) {
        let bytes = b.to_string();
        let parsed = v1::parse_batch(bytes.as_bytes()).unwrap();
        parsed.validate().unwrap();
        check_accepted(&parsed);
        let again = v1::parse_batch(serde_json::to_string(&parsed).unwrap().as_bytes()).unwrap();
        prop_assert_eq!(again, parsed);
    }

    #[test]
    fn mutated_batches_are_refused_naming_a_field_or_accepted_whole(
        b in batch(),
        muts in prop::collection::vec(mutation(), 1..4),
        cut in any::<Option<usize>>(),
    ) {
        let doc = muts.iter().fold(b, mutate);
        let mut bytes = doc.to_string().into_bytes();
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        decode(&bytes);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for depth in [64usize, 200, 10_000, 100_000] {
        let doc = format!(
            "{{\"v\":1,\"device\":\"gw\",\"records\":[{}{}]}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        decode(doc.as_bytes());
    }
}

// ---------------------------------------------------------------------------
// The hierarchy import

/// What an imported office must satisfy.
fn check_offices(v: &[Office]) {
    let mut codes = std::collections::HashSet::new();
    for o in v {
        assert!(codes.insert(o.code.clone()), "code {} twice", o.code);
        assert!(
            o.code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "{o:?}"
        );
        for f in [&o.code, &o.name, &o.division, &o.district, &o.upazila] {
            assert!(!f.is_empty() && f.chars().count() <= MAX_FIELD, "{o:?}");
            assert!(!f.chars().any(char::is_control), "{o:?}");
        }
    }
}

/// The error of a refused file names the file and, when it has one, a line
/// of the file.
fn check_refusal(e: &linkwatch::collector::devices::ImportError, file: &str, text: &str) {
    let shown = e.to_string();
    assert!(shown.starts_with(file), "{shown}");
    if let linkwatch::collector::devices::ImportError::Line { line, .. } = e {
        assert!(
            *line >= 1 && *line <= text.lines().count().max(1),
            "{shown}"
        );
    }
}

fn without_hours(v: &[Office], s: &Spelling) -> Vec<Office> {
    v.iter()
        .cloned()
        .map(|o| Office {
            hours: if s.with_hours { o.hours } else { None },
            ..o
        })
        .collect()
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn hierarchy_csv_survives_arbitrary_text(t in "(?s).{0,600}") {
        match parse_offices_csv(&t, Path::new("offices.csv")) {
            Ok(v) => check_offices(&v),
            Err(e) => check_refusal(&e, "offices.csv", &t),
        }
    }

    #[test]
    fn hierarchy_toml_survives_arbitrary_text(t in "(?s).{0,600}") {
        match parse_offices_toml(&t, Path::new("offices.toml")) {
            Ok(v) => check_offices(&v),
            Err(e) => check_refusal(&e, "offices.toml", &t),
        }
    }

    #[test]
    fn generated_csv_files_import_as_written(v in offices(), s in spelling()) {
        let text = csv_file(&v, &s);
        let got = parse_offices_csv(&text, Path::new("offices.csv"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(got, without_hours(&v, &s));
    }

    #[test]
    fn generated_toml_files_import_as_written(v in offices()) {
        #[derive(serde::Serialize)]
        struct File<'a> {
            office: &'a [Office],
        }
        let text = toml::to_string(&File { office: &v }).unwrap();
        let got = parse_offices_toml(&text, Path::new("offices.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(got, v);
    }

    #[test]
    fn mutated_hierarchy_files_are_refused_naming_a_line_or_accepted(
        v in offices(),
        s in spelling(),
        edits in prop::collection::vec((any::<usize>(), any::<char>(), any::<bool>()), 1..6),
        toml_file in any::<bool>(),
    ) {
        let mut text: Vec<char> = if toml_file {
            #[derive(serde::Serialize)]
            struct File<'a> {
                office: &'a [Office],
            }
            toml::to_string(&File { office: &v }).unwrap().chars().collect()
        } else {
            csv_file(&v, &s).chars().collect()
        };
        for (at, c, insert) in edits {
            let i = at % (text.len() + 1);
            if insert || i == text.len() {
                text.insert(i, c);
            } else {
                text[i] = c;
            }
        }
        let text: String = text.into_iter().collect();
        let (name, got) = if toml_file {
            ("offices.toml", parse_offices_toml(&text, Path::new("offices.toml")))
        } else {
            ("offices.csv", parse_offices_csv(&text, Path::new("offices.csv")))
        };
        match got {
            Ok(v) => check_offices(&v),
            Err(e) => check_refusal(&e, name, &text),
        }
    }
}

// ---------------------------------------------------------------------------
// The report query parser

fn check_query(v: &[Option<String>]) {
    match ReportQuery::parse(&raw(v)) {
        Ok(q) => {
            assert!(q.from_ms < q.to_ms, "{v:?}");
            assert!(q.to_ms - q.from_ms <= MAX_RANGE_DAYS * 86_400_000, "{v:?}");
            if let Some(n) = q.limit {
                assert!((1..=MAX_LIMIT).contains(&n));
            }
            if let Some(t) = q.target_pct {
                assert!((0.0..=100.0).contains(&t));
            }
        }
        Err(e) => {
            assert!(NAMES.contains(&e.field), "{e:?}");
            assert!(!e.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn report_queries_are_parsed_or_refused_naming_the_parameter(v in params()) {
        check_query(&v);
    }

    #[test]
    fn arbitrary_report_parameters_never_panic(
        v in prop::collection::vec(prop::option::of("(?s).{0,40}"), 10),
    ) {
        check_query(&v);
    }

    #[test]
    fn arbitrary_query_strings_are_split_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        encode in any::<bool>(),
    ) {
        let q: String = if encode {
            bytes.iter().map(|b| format!("%{b:02X}")).collect()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        if let Ok(uri) = format!("/api/v1/reports/uptime?{q}").parse::<axum::http::Uri>() {
            match query_params(&uri, &NAMES) {
                Ok(m) => assert!(m.keys().all(|k| NAMES.contains(&k.as_str()))),
                Err(e) => assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST),
            }
        }
    }
}
