//! Rendering a report: JSON, CSV (one row per group, [`CSV_HEADER`]) and the
//! command line's table, with the time and duration spellings they share.

use super::*;
use crate::collector::csv_writer::{Cell, CsvWriter};

// ---------------------------------------------------------------------------
// Rendering

/// Pretty JSON.
pub fn render_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}

pub const CSV_HEADER: &str = "group,devices,online_ms,offline_ms,not_running_ms,no_data_ms,\
uptime_pct,uptime,compliant,outages,longest_outage_ms,mean_time_to_recover_ms,\
broadband_ms,wifi_ms,mobile_ms,broadband_pct,wifi_pct,mobile_pct,failovers,rtt_p50_ms,loss_pct";

/// The columns of [`CSV_HEADER`].
pub const CSV_COLUMNS: [&str; 21] = [
    "group",
    "devices",
    "online_ms",
    "offline_ms",
    "not_running_ms",
    "no_data_ms",
    "uptime_pct",
    "uptime",
    "compliant",
    "outages",
    "longest_outage_ms",
    "mean_time_to_recover_ms",
    "broadband_ms",
    "wifi_ms",
    "mobile_ms",
    "broadband_pct",
    "wifi_pct",
    "mobile_pct",
    "failovers",
    "rtt_p50_ms",
    "loss_pct",
];

/// CSV (through [`CsvWriter`]: group names neutralised, figures written as
/// numbers): a header line, then one line per row. `uptime_pct` is empty
/// and `uptime` says `no data` when there is none.
pub fn render_csv(r: &Report) -> String {
    let pct = |v: Option<f64>| Cell::opt(v, |p| Cell::fixed(p, 3));
    let mut w = CsvWriter::new(CSV_COLUMNS);
    for row in &r.rows {
        w.row([
            Cell::text(&row.group),
            Cell::int(row.devices),
            Cell::int(row.online_ms),
            Cell::int(row.offline_ms),
            Cell::int(row.not_running_ms),
            Cell::int(row.no_data_ms),
            pct(row.uptime_pct),
            Cell::text(&row.uptime),
            Cell::opt(row.compliant, Cell::bool),
            Cell::int(row.outages),
            Cell::opt(row.longest_outage_ms, Cell::int),
            Cell::opt(row.mean_time_to_recover_ms, Cell::int),
            Cell::int(row.broadband_ms),
            Cell::int(row.wifi_ms),
            Cell::int(row.mobile_ms),
            pct(row.broadband_pct),
            pct(row.wifi_pct),
            pct(row.mobile_pct),
            Cell::int(row.failovers),
            Cell::opt(row.rtt_p50_ms, |v| Cell::fixed(v, 1)),
            pct(row.loss_pct),
        ]);
    }
    w.finish()
}

/// A duration for people: `6h 30m`, `45m`, `12s`, `0m`.
pub fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    let (h, m) = (s / 3600, (s % 3600) / 60);
    match (h, m) {
        (0, 0) if s > 0 => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

/// RFC 3339 in UTC (`2026-11-29T04:00:00Z`).
pub fn ts(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// The online shares of broadband, Wi-Fi and mobile: `80/0/20%`, `-` without
/// online time.
fn kind_mix(row: &Row) -> String {
    match (row.broadband_pct, row.wifi_pct, row.mobile_pct) {
        (Some(b), Some(w), Some(m)) => format!("{b:.0}/{w:.0}/{m:.0}%"),
        _ => "-".into(),
    }
}

/// Aligned text table with a title line (the window in RFC 3339, UTC).
pub fn render_table(r: &Report) -> String {
    render_table_with(r, ts)
}

/// [`render_table`] with the window shown in the zone `tz`
/// (`2026-11-29 09:00 +06`), as people read it.
pub fn render_table_in(r: &Report, tz: &jiff::tz::TimeZone) -> String {
    render_table_with(r, |ms| {
        Timestamp::from_millisecond(ms)
            .map(|t| {
                t.to_zoned_datetime(tz.clone())
                    .strftime("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|_| ms.to_string())
    })
}

fn render_table_with(r: &Report, ts: impl Fn(i64) -> String) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "uptime by {} from {} to {}, schedule {}{}{}{}",
        r.by,
        ts(r.from_ms),
        ts(r.to_ms),
        r.schedule,
        r.target_pct
            .map(|t| format!(", target {t}%"))
            .unwrap_or_default(),
        r.branch
            .as_ref()
            .map(|b| format!(", {b}"))
            .unwrap_or_default(),
        r.limit.map(|n| format!(", worst {n}")).unwrap_or_default()
    );
    let header = [
        "GROUP",
        "DEVICES",
        "UPTIME",
        "ONLINE",
        "OFFLINE",
        "NOT RUNNING",
        "NO DATA",
        "OUTAGES",
        "LONGEST",
        "MTTR",
        "COMPLIANT",
        "BB/WIFI/MOB",
        "FAILOVERS",
        "RTT",
        "LOSS",
    ];
    let rows: Vec<[String; 15]> = r
        .rows
        .iter()
        .map(|row| {
            [
                row.group.clone(),
                row.devices.to_string(),
                row.uptime.clone(),
                human_ms(row.online_ms),
                human_ms(row.offline_ms),
                human_ms(row.not_running_ms),
                human_ms(row.no_data_ms),
                row.outages.to_string(),
                row.longest_outage_ms.map_or("-".into(), human_ms),
                row.mean_time_to_recover_ms.map_or("-".into(), human_ms),
                match row.compliant {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
                kind_mix(row),
                row.failovers.to_string(),
                row.rtt_p50_ms.map_or("-".into(), |v| format!("{v:.0}ms")),
                row.loss_pct.map_or("-".into(), |v| format!("{v:.1}%")),
            ]
        })
        .collect();
    let mut w = header.map(|h| h.chars().count());
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = w[i] - c.chars().count();
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    if rows.is_empty() {
        out.push_str("(no devices)\n");
    }
    out
}
