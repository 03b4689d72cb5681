//! The tables the collector-side subcommands print: devices, API tokens and
//! the office hierarchy (times in the zone of [`Times`]).

use super::Times;
use linkwatch::collector::store;

pub fn render_tokens(list: &[store::ApiToken], times: &Times) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let branch = |t: &store::ApiToken| {
        t.branch
            .as_ref()
            .map_or_else(|| "(all)".to_string(), |b| b.to_string())
    };
    let w = list.iter().map(|t| t.name.len()).max().unwrap_or(0).max(4);
    let wb = list
        .iter()
        .map(|t| branch(t).len())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{:<w$}  {:<5}  {:<wb$}  {:<7}  CREATED",
        "NAME", "ROLE", "BRANCH", "REVOKED"
    );
    for t in list {
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:<wb$}  {:<7}  {}",
            t.name,
            t.role.as_str(),
            branch(t),
            if t.revoked { "yes" } else { "no" },
            times.ms(t.created_at_ms)
        );
    }
    if list.is_empty() {
        out.push_str("(no API tokens: make one with `linkwatch token add NAME --role read`)\n");
    }
    out
}

/// The hierarchy as an indented tree, sorted by name at every level.
pub fn render_offices(offices: &[store::Office], devices: &[store::Device]) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut tree: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, Vec<&store::Office>>>> =
        BTreeMap::new();
    for o in offices {
        tree.entry(&o.division)
            .or_default()
            .entry(&o.district)
            .or_default()
            .entry(&o.upazila)
            .or_default()
            .push(o);
    }
    let count = |code: &str| {
        devices
            .iter()
            .filter(|d| !d.revoked && d.office.as_deref() == Some(code))
            .count()
    };
    let mut out = String::new();
    for (division, districts) in &tree {
        let _ = writeln!(out, "{division} (division)");
        for (district, upazilas) in districts {
            let _ = writeln!(out, "  {district} (district)");
            for (upazila, list) in upazilas {
                let _ = writeln!(out, "    {upazila} (upazila)");
                let mut list = list.clone();
                list.sort_by(|a, b| a.code.cmp(&b.code));
                for o in list {
                    let n = count(&o.code);
                    let _ = writeln!(
                        out,
                        "      {}  {}  [{} device{}{}]",
                        o.code,
                        o.name,
                        n,
                        if n == 1 { "" } else { "s" },
                        o.hours
                            .as_deref()
                            .map(|h| format!(", hours {h}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    let unplaced = devices.iter().filter(|d| d.office.is_none()).count();
    if offices.is_empty() {
        out.push_str("(no offices: import them with `linkwatch device import FILE`)\n");
    }
    let _ = writeln!(
        out,
        "{} offices; {} devices, {} of them in no office",
        offices.len(),
        devices.len(),
        unplaced
    );
    out
}
