//! The tables the collector-side subcommands print: role holders (API
//! tokens, dashboard users) and the office hierarchy (times in the zone of [`Times`]).

use super::Times;
use linkwatch::collector::store;

/// One row of a table of role holders (API tokens, dashboard users): name,
/// role, branch, one column of its own, and when it was made.
pub struct RoleRow<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub branch: Option<String>,
    pub own: &'a str,
    pub created_ms: i64,
}

/// The role holders as a table; `own` heads the column of their own, and
/// `empty` is the line printed when there are none.
pub fn render_role_holders(rows: &[RoleRow], own: &str, empty: &str, times: &Times) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let branch = |r: &RoleRow| r.branch.clone().unwrap_or_else(|| "(all)".to_string());
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    let wb = rows
        .iter()
        .map(|r| branch(r).len())
        .max()
        .unwrap_or(0)
        .max(6);
    let wo = rows
        .iter()
        .map(|r| r.own.len())
        .max()
        .unwrap_or(0)
        .max(own.len());
    let _ = writeln!(
        out,
        "{:<w$}  {:<5}  {:<wb$}  {:<wo$}  CREATED",
        "NAME", "ROLE", "BRANCH", own
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:<wb$}  {:<wo$}  {}",
            r.name,
            r.role,
            branch(r),
            r.own,
            times.ms(r.created_ms)
        );
    }
    if rows.is_empty() {
        out.push_str(empty);
        out.push('\n');
    }
    out
}

pub fn render_tokens(list: &[store::ApiToken], times: &Times) -> String {
    let rows: Vec<RoleRow> = list
        .iter()
        .map(|t| RoleRow {
            name: &t.name,
            role: t.role.as_str(),
            branch: t.branch.as_ref().map(|b| b.to_string()),
            own: if t.revoked { "yes" } else { "no" },
            created_ms: t.created_at_ms,
        })
        .collect();
    render_role_holders(
        &rows,
        "REVOKED",
        "(no API tokens: make one with `linkwatch token add NAME --role read`)",
        times,
    )
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
