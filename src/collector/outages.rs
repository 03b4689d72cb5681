//! Outage lists: every outage of the devices a reader sees over a window and
//! schedule (as the uptime engine finds them, so they match the `outages`
//! count of a report with the same parameters), optionally only those of one
//! group, as JSON or CSV. [`list`] reads the figures
//! ([`crate::collector::report::figures_in_scope`]); the rest is pure.

use crate::collector::access::{Access, Branch};
use crate::collector::csv_writer::{Cell, CsvWriter};
use crate::collector::report::{self, GroupBy, ParamError, ReportError, ReportQuery, group_of, ts};
use crate::collector::store::{Device, Office, Store};
use crate::collector::uptime::{Figures, OutageCause};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One outage of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutageRow {
    pub device: String,
    /// The device's group under the list's `by`.
    pub group: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `start_ms` and `end_ms` in RFC 3339 (UTC).
    pub start: String,
    pub end: String,
    pub duration_ms: i64,
    pub cause: OutageCause,
}

/// An outage list and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutageList {
    pub from_ms: i64,
    pub to_ms: i64,
    pub by: GroupBy,
    /// The one group asked for, if any.
    pub group: Option<String>,
    pub schedule: String,
    pub branch: Option<Branch>,
    pub token_branch: Option<Branch>,
    /// Sorted by start, then device.
    pub outages: Vec<OutageRow>,
}

/// The outage list over `q`'s window and schedule, of the devices `access`
/// sees in `q`'s branch, of group `group` under `q.by` only when given.
pub async fn list(
    store: &dyn Store,
    q: &ReportQuery,
    group: Option<&str>,
    access: &Access,
    now_ms: i64,
) -> Result<OutageList, ReportError> {
    let (per_device, offices, branch) =
        report::figures_in_scope(store, q, Some(access), now_ms, report::Uses::Outages).await?;
    let outages = outage_rows(q.by, group, &per_device, &offices)?;
    Ok(OutageList {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        by: q.by,
        group: group.map(String::from),
        schedule: q.schedule.to_string(),
        branch,
        token_branch: access.branch.clone(),
        outages,
    })
}

/// The outages of `per_device`, of group `group` under `by` only when given.
/// A group none of the devices is in is refused (`group`), naming the
/// groups there are when they are few.
pub fn outage_rows(
    by: GroupBy,
    group: Option<&str>,
    per_device: &[(Device, Figures)],
    offices: &[Office],
) -> Result<Vec<OutageRow>, ParamError> {
    let offices: BTreeMap<String, Office> = offices
        .iter()
        .map(|o| (o.code.clone(), o.clone()))
        .collect();
    let groups: Vec<String> = per_device
        .iter()
        .map(|(d, _)| group_of(by, d, &offices))
        .collect();
    if let Some(g) = group
        && !groups.iter().any(|x| x == g)
    {
        let known: BTreeSet<&str> = groups.iter().map(String::as_str).collect();
        let hint = if known.is_empty() {
            String::new()
        } else if known.len() <= 10 {
            format!(
                ": groups by {by} are {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(" (see the report by {by} for the groups)")
        };
        return Err(ParamError {
            field: "group",
            message: format!("unknown `group` = `{g}` for `by` = {by}{hint}"),
        });
    }
    let mut rows: Vec<OutageRow> = per_device
        .iter()
        .zip(groups)
        .filter(|(_, g)| group.is_none_or(|want| want == g))
        .flat_map(|((d, f), g)| {
            f.outages.iter().map(move |o| OutageRow {
                device: d.name.clone(),
                group: g.clone(),
                start_ms: o.start,
                end_ms: o.end,
                start: ts(o.start),
                end: ts(o.end),
                duration_ms: o.end - o.start,
                cause: o.cause,
            })
        })
        .collect();
    rows.sort_by(|a, b| (a.start_ms, &a.device, a.end_ms).cmp(&(b.start_ms, &b.device, b.end_ms)));
    Ok(rows)
}

pub const CSV_HEADER: &str = "device,group,start,end,start_ms,end_ms,duration_ms,cause";

/// The columns of [`CSV_HEADER`].
pub const CSV_COLUMNS: [&str; 8] = [
    "device",
    "group",
    "start",
    "end",
    "start_ms",
    "end_ms",
    "duration_ms",
    "cause",
];

fn cause_word(c: OutageCause) -> &'static str {
    match c {
        OutageCause::AllLinksDown => "all_links_down",
        OutageCause::DeviceOff => "device_off",
    }
}

/// CSV (through [`CsvWriter`]: names neutralised, figures written as
/// numbers): a header line, then one line per outage (CRLF line ends).
pub fn render_csv(list: &OutageList) -> String {
    let mut w = CsvWriter::new(CSV_COLUMNS);
    for r in &list.outages {
        w.row([
            Cell::text(&r.device),
            Cell::text(&r.group),
            Cell::text(&r.start),
            Cell::text(&r.end),
            Cell::int(r.start_ms),
            Cell::int(r.end_ms),
            Cell::int(r.duration_ms),
            Cell::text(cause_word(r.cause)),
        ]);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::uptime::Outage;

    fn dev(name: &str, office: Option<&str>) -> Device {
        Device {
            id: 1,
            name: name.into(),
            office: office.map(String::from),
            revoked: false,
            acked: 0,
            created_at_ms: 0,
            seen: Default::default(),
        }
    }

    fn with_outages(v: &[(i64, i64, OutageCause)]) -> Figures {
        Figures {
            outages: v
                .iter()
                .map(|&(start, end, cause)| Outage { start, end, cause })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn outages_are_sorted_filtered_by_group_and_unknown_groups_named() {
        let offices = vec![Office {
            code: "o1".into(),
            name: "O".into(),
            division: "Dhaka".into(),
            district: "Dhaka".into(),
            upazila: "Savar".into(),
            hours: None,
        }];
        let per = vec![
            (
                dev("b", Some("o1")),
                with_outages(&[(5_000, 9_000, OutageCause::DeviceOff)]),
            ),
            (
                dev("a", None),
                with_outages(&[(1_000, 2_000, OutageCause::AllLinksDown)]),
            ),
        ];
        let all = outage_rows(GroupBy::Office, None, &per, &offices).unwrap();
        assert_eq!(
            all.iter().map(|r| r.device.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(all[1].duration_ms, 4_000);
        assert_eq!(all[1].group, "o1");
        let one = outage_rows(GroupBy::Office, Some("o1"), &per, &offices).unwrap();
        assert_eq!(one.len(), 1);
        let e = outage_rows(GroupBy::Division, Some("Sylhet"), &per, &offices).unwrap_err();
        assert_eq!(e.field, "group");
        assert!(e.message.contains("`Dhaka`"), "{e}");
        let list = OutageList {
            from_ms: 0,
            to_ms: 10_000,
            by: GroupBy::Office,
            group: None,
            schedule: "always".into(),
            branch: None,
            token_branch: None,
            outages: all,
        };
        assert_eq!(CSV_COLUMNS.join(","), CSV_HEADER);
        let csv = render_csv(&list);
        assert!(
            csv.ends_with(
                "b,o1,1970-01-01T00:00:05Z,1970-01-01T00:00:09Z,5000,9000,4000,device_off\r\n"
            ),
            "{csv}"
        );
    }
}
