//! Shared pieces of the fuzz tests (`tests/fuzz_parsers.rs`,
//! `tests/fuzz_http.rs`): the case budget and generators of hostile text
//! and JSON.

use linkwatch::collector::report::RawQuery;
use linkwatch::collector::store::Office;
use linkwatch::wire::v1::MAX_TIME_MS;
use proptest::prelude::*;
use serde_json::{Value, json};

/// `base` cases, or `LINKWATCH_FUZZ_CASES` times as many for a longer run
/// (CI keeps the fixed budget).
pub fn cases(base: u32) -> u32 {
    let factor = std::env::var("LINKWATCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    base.saturating_mul(factor)
}

/// The proptest configuration of a fuzz property: [`cases`] of `base`, a
/// bounded shrink, failures kept beside the test file
/// (`tests/NAME.proptest-regressions`) and replayed first.
pub fn config(base: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..runner_config(base)
    }
}

/// [`config`] for a `TestRunner` driven by hand (no source file to keep
/// failures beside: the failing input is in the panic message).
pub fn runner_config(base: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(base),
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Short text that tends to break parsers: separators, quotes, control
/// characters, formula starts, non-ASCII, and arbitrary characters.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z]{0,8}",
        "[ ,;:\"'=+@\\-\t\r\n/\\\\%&?#\\[\\]{}()0-9.eE]{0,16}",
        "\\PC{0,12}",
        "(?s).{0,24}",
        Just(String::new()),
        Just("\u{0}".to_string()),
        Just("ঢাকা".to_string()),
        Just("x".repeat(300)),
    ]
    .boxed()
}

/// Any JSON value, nested a few levels, with extreme numbers.
pub fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1i64),
            Just(0),
            Just(u32::MAX as i64 + 1)
        ]
        .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

// ---------------------------------------------------------------------------
// Batches (the wire decoder)

/// A valid record as JSON, one of every body type.
pub fn record() -> BoxedStrategy<Value> {
    let body = prop_oneof![
        ("[a-z][a-z0-9]{0,14}", any::<bool>()).prop_map(|(l, b)| json!({
            "type": "link_state", "link": l, "kind": if b { "mobile" } else { "wifi" },
            "from": "up", "to": "down", "reason": "no reply"})),
        (1u32..=44_640, 0u32..1000, 0.0f64..600_000.0).prop_map(|(m, s, r)| json!({
            "type": "link_minutes", "link": "eth0", "kind": "broadband", "minutes": m,
            "sent": s, "lost": s / 2, "rtt_p50_ms": r, "bytes": 123})),
        any::<bool>().prop_map(|b| json!({
            "type": "failover", "from": "eth0", "to": if b { Value::Null } else { json!("wwan0") },
            "cause": "probe", "reason": ""})),
        prop_oneof![Just("start"), Just("stop"), Just("clock_step")]
            .prop_map(|e| json!({"type": "lifecycle", "event": e, "boot_time": 1_700_000_000})),
        (any::<bool>(), 1u32..100).prop_map(|(o, c)| json!({
            "type": "heartbeat", "online": o, "count": c})),
        Just(json!({"type": "facts", "hostname": "gw", "os": "Debian 12",
            "agent_version": "0.1.0",
            "links": [{"name": "eth0", "kind": "broadband", "metered": false, "priority": 1}]})),
    ];
    (0..=MAX_TIME_MS, 0u64..(i64::MAX as u64), body)
        .prop_map(|(at, mono, body)| json!({"seq": 0, "at": at, "mono_ms": mono, "boot_id": "b1", "body": body}))
    .boxed()
}

/// A valid batch: records in increasing sequence order.
pub fn batch() -> BoxedStrategy<Value> {
    (prop::collection::vec(record(), 0..8), 1u64..1_000_000)
        .prop_map(|(mut recs, first)| {
            for (i, r) in recs.iter_mut().enumerate() {
                r["seq"] = json!(first + i as u64);
            }
            json!({"v": 1, "device": "gw-1", "records": recs})
        })
        .boxed()
}

/// One change to a JSON document: a value replaced at a random place, a
/// number replaced by a boundary one, a key removed, or an unknown key added.
#[derive(Debug, Clone)]
pub enum Mutation {
    Replace(usize, Value),
    Boundary(usize, Value),
    /// A boundary number as record `.0`'s key `.1` (`seq`, `seq_end`, ...).
    RecordField(usize, &'static str, Value),
    Remove(usize),
    Add(usize, String, Value),
}

/// Numbers at the edges of the integer types and of JSON's exact range.
pub fn boundary_number() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::from(0)),
        Just(Value::from(1)),
        Just(Value::from(-1)),
        Just(Value::from(i64::MAX)),
        Just(Value::from(i64::MAX - 1)),
        Just(Value::from(i64::MAX as u64 + 1)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(u32::MAX)),
        Just(Value::from(u32::MAX as u64 + 1)),
        Just(Value::from(1u64 << 53)),
        Just(json!(1e300)),
        Just(json!(-0.0)),
        Just(json!(0.5)),
    ]
    .boxed()
}

pub fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        1 => (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        3 => (any::<usize>(), boundary_number()).prop_map(|(i, v)| Mutation::Boundary(i, v)),
        3 => (
            any::<usize>(),
            prop_oneof![Just("seq"), Just("seq_end"), Just("mono_ms"), Just("at")],
            boundary_number()
        )
            .prop_map(|(i, k, v)| Mutation::RecordField(i, k, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), text(), json_value()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
    ]
    .boxed()
}

pub fn mutate(mut doc: Value, m: &Mutation) -> Value {
    // Walk by index instead of pointers: rebuild the list of paths.
    fn paths(v: &Value, here: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(here.clone());
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    here.push(k.clone());
                    paths(c, here, out);
                    here.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    here.push(i.to_string());
                    paths(c, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(&doc, &mut Vec::new(), &mut all);
    let pick = |i: usize| all[i % all.len()].clone();
    let pointer = |p: &[String]| {
        p.iter()
            .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
            .collect::<String>()
    };
    match m {
        Mutation::Replace(i, v) => {
            if let Some(slot) = doc.pointer_mut(&pointer(&pick(*i))) {
                *slot = v.clone();
            }
        }
        Mutation::Boundary(i, v) => {
            // Among the numbers of the document only.
            let numbers: Vec<&Vec<String>> = all
                .iter()
                .filter(|p| doc.pointer(&pointer(p)).is_some_and(Value::is_number))
                .collect();
            if !numbers.is_empty() {
                let p = pointer(numbers[*i % numbers.len()]);
                if let Some(slot) = doc.pointer_mut(&p) {
                    *slot = v.clone();
                }
            }
        }
        Mutation::RecordField(i, key, v) => {
            if let Some(Value::Array(recs)) = doc.get_mut("records")
                && !recs.is_empty()
            {
                let n = recs.len();
                if let Some(r) = recs[*i % n].as_object_mut() {
                    r.insert(key.to_string(), v.clone());
                }
            }
        }
        Mutation::Remove(i) => {
            let p = pick(*i);
            if let Some((last, parent)) = p.split_last()
                && let Some(Value::Object(o)) = doc.pointer_mut(&pointer(parent))
            {
                o.remove(last);
            }
        }
        Mutation::Add(i, k, v) => {
            if let Some(Value::Object(o)) = doc.pointer_mut(&pointer(&pick(*i))) {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    doc
}

// ---------------------------------------------------------------------------
// Hierarchy files

pub const HEADER: [&str; 6] = ["code", "name", "division", "district", "upazila", "hours"];

/// A field value that survives a CSV round trip: no control characters, no
/// spaces at its ends; commas, quotes, formula characters and Bangla welcome.
pub fn field() -> BoxedStrategy<String> {
    "[A-Za-z0-9 ,\"'=+@\\-/()\u{0980}-\u{09FF}]{1,40}"
        .prop_filter_map("trimmed", |s| {
            let t = s.trim().to_string();
            (!t.is_empty()).then_some(t)
        })
        .boxed()
}

pub fn hours() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("office:Asia/Dhaka:sun-thu:08:00-16:00".to_string())),
        Just(Some("office:UTC:mon-fri:09:30-17:30".to_string())),
    ]
    .boxed()
}

pub fn office() -> BoxedStrategy<Office> {
    (
        "[a-z0-9][a-z0-9._-]{0,30}",
        field(),
        field(),
        field(),
        field(),
        hours(),
    )
        .prop_map(|(code, name, division, district, upazila, hours)| Office {
            code,
            name,
            division,
            district,
            upazila,
            hours,
        })
        .boxed()
}

pub fn offices() -> BoxedStrategy<Vec<Office>> {
    prop::collection::vec(office(), 0..12)
        .prop_map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|o| seen.insert(o.code.clone()));
            v
        })
        .boxed()
}

/// How a generated CSV file is spelled.
#[derive(Debug, Clone)]
pub struct Spelling {
    pub order: Vec<usize>,
    pub with_hours: bool,
    pub quote_all: bool,
    pub crlf: bool,
    pub bom: bool,
    pub upper_header: bool,
    pub blank_lines: bool,
    pub pad: bool,
}

pub fn spelling() -> BoxedStrategy<Spelling> {
    (
        Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        any::<[bool; 7]>(),
    )
        .prop_map(|(order, f)| Spelling {
            order,
            with_hours: f[0],
            quote_all: f[1],
            crlf: f[2],
            bom: f[3],
            upper_header: f[4],
            blank_lines: f[5],
            pad: f[6],
        })
        .boxed()
}

pub fn csv_file(offices: &[Office], s: &Spelling) -> String {
    let cols: Vec<usize> = s
        .order
        .iter()
        .copied()
        .filter(|&c| c < 5 || s.with_hours)
        .collect();
    let nl = if s.crlf { "\r\n" } else { "\n" };
    let cell = |v: &str| {
        let q = s.quote_all || v.contains([',', '"']);
        let v = if q {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        };
        if s.pad { format!(" {v} ") } else { v }
    };
    let mut out = String::new();
    if s.bom {
        out.push('\u{feff}');
    }
    let header: Vec<String> = cols
        .iter()
        .map(|&c| {
            if s.upper_header {
                HEADER[c].to_uppercase()
            } else {
                HEADER[c].to_string()
            }
        })
        .collect();
    out.push_str(&header.join(","));
    out.push_str(nl);
    for o in offices {
        let values = [
            o.code.as_str(),
            &o.name,
            &o.division,
            &o.district,
            &o.upazila,
            o.hours.as_deref().unwrap_or(""),
        ];
        let line: Vec<String> = cols.iter().map(|&c| cell(values[c])).collect();
        out.push_str(&line.join(","));
        out.push_str(nl);
        if s.blank_lines {
            out.push_str(nl);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Report queries

/// Near-valid instants: dates and RFC 3339 times with fields out of range.
pub fn instant() -> BoxedStrategy<String> {
    let date =
        (0u32..12_000, 0u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"));
    prop_oneof![
        date.clone(),
        (
            date,
            0u32..26,
            0u32..61,
            0u32..62,
            "(\\.[0-9]{1,12})?",
            prop_oneof![
                Just("Z".to_string()),
                (0u32..30, 0u32..61, any::<bool>()).prop_map(|(h, m, neg)| format!(
                    "{}{h:02}:{m:02}",
                    if neg { '-' } else { '+' }
                )),
                Just(String::new()),
                Just("+0600".to_string()),
            ]
        )
            .prop_map(|(d, h, mi, s, frac, off)| format!("{d}T{h:02}:{mi:02}:{s:02}{frac}{off}")),
        Just("2026-11-29T09:00:00+06:00".to_string()),
        Just("2026-11-30".to_string()),
        Just("-009999-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59.999Z".to_string()),
        text(),
    ]
    .boxed()
}

pub fn schedule() -> BoxedStrategy<String> {
    let tz = prop_oneof![
        Just("Asia/Dhaka"),
        Just("UTC"),
        Just("Etc/GMT+14"),
        Just("America/St_Johns"),
        Just("../../etc/passwd"),
        Just("Asia/../Asia/Dhaka"),
        Just(""),
        Just("posix/Asia/Dhaka"),
    ];
    let days = prop_oneof![
        Just("sun-thu".to_string()),
        Just("fri-sat".to_string()),
        Just("sat-fri".to_string()),
        Just("mon,wed,,fri".to_string()),
        Just("sunday-thursday".to_string()),
        text(),
    ];
    let hours = (0u32..30, 0u32..70, 0u32..30, 0u32..70)
        .prop_map(|(a, b, c, d)| format!("{a:02}:{b:02}-{c:02}:{d:02}"));
    prop_oneof![
        Just("office".to_string()),
        Just("always".to_string()),
        Just("ALWAYS".to_string()),
        (tz, days, hours).prop_map(|(t, d, h)| format!("office:{t}:{d}:{h}")),
        text(),
    ]
    .boxed()
}

pub fn number() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-0".to_string()),
        Just("1e400".to_string()),
        Just("18446744073709551616".to_string()),
        Just(" 5 ".to_string()),
        text(),
    ]
    .boxed()
}

pub fn group_by() -> BoxedStrategy<String> {
    prop_oneof![
        Just("device".to_string()),
        Just("DIVISION".to_string()),
        Just(" upazila ".to_string()),
        text(),
    ]
    .boxed()
}

/// The ten parameters, each absent or a value (structure-aware or arbitrary).
pub fn params() -> BoxedStrategy<Vec<Option<String>>> {
    (
        prop::option::weighted(0.9, instant()),
        prop::option::weighted(0.9, instant()),
        prop::option::of(group_by()),
        prop::option::of(schedule()),
        prop::option::of(number()),
        prop::option::of(number()),
        prop::collection::vec(prop::option::weighted(0.15, text()), 4),
    )
        .prop_map(|(f, t, b, s, target, limit, branch)| {
            let mut v = vec![f, t, b, s, target, limit];
            v.extend(branch);
            v
        })
        .boxed()
}

pub fn raw(v: &[Option<String>]) -> RawQuery<'_> {
    let g = |i: usize| v[i].as_deref();
    RawQuery {
        from: g(0),
        to: g(1),
        by: g(2),
        schedule: g(3),
        target: g(4),
        limit: g(5),
        division: g(6),
        district: g(7),
        upazila: g(8),
        office: g(9),
    }
}

pub const NAMES: [&str; 10] = [
    "from", "to", "by", "schedule", "target", "limit", "division", "district", "upazila", "office",
];
