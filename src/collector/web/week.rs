//! The fleet page's week and alerts, within the viewer's branch:
//! - the offices with the lowest uptime over the last 7 whole days in
//!   Asia/Dhaka, in office hours (the reports' default schedule), made by
//!   the reports' own code ([`report::run_report`], from the roll-ups
//!   where they are current), as `GET /api/v1/reports/uptime?by=office`
//!   gives them. Kept for a few minutes per branch and week; computed in a
//!   task of its own, which the page waits for only briefly (a large fleet
//!   whose roll-ups are behind is read device by device: the page says so
//!   and shows it on a later view rather than making the fleet wait);
//! - the open alerts the viewer may see (the API's rule: an alert about an
//!   office inside the branch, or any alert for the whole hierarchy): how
//!   many, and the newest few.

use super::WebState;
use super::i18n::{Lang, T, dhaka, digits, num, time, tr};
use super::session::{PageError, Viewer, store_err};
use super::urls::{fleet_url, urlencode_path};
use crate::collector::access::Access;
use crate::collector::alerts::model::{AlertKind, OpenAlert, Subject};
use crate::collector::model::{Branch, Level, Office};
use crate::collector::report::{self, GroupBy, ReportQuery};
use crate::collector::store::StoreError;
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Offices shown.
pub const WORST: usize = 5;
/// Open alerts shown.
pub const NEWEST: usize = 5;
/// How long a week's figures are shown before they are made again.
pub const KEEP_MS: i64 = 10 * 60_000;
/// How long a page waits for the week's figures before showing it without.
pub const WAIT: Duration = Duration::from_secs(2);

/// The week's worst offices, as made at `made_ms`.
#[derive(Debug, Clone)]
pub struct Week {
    pub from_ms: i64,
    pub to_ms: i64,
    pub made_ms: i64,
    /// Office code, its name, devices, uptime in percent; worst first,
    /// every office with figures (a page shows the worst [`WORST`] within
    /// its branch).
    pub rows: Vec<(String, String, u32, f64)>,
}

/// The branch a viewer sees, as a key.
type Key = (Option<(Level, String)>, i64);

/// The weeks made, by branch and window, and those being made.
#[derive(Debug, Default)]
pub struct WeekCache {
    made: BTreeMap<Key, Week>,
    making: std::collections::BTreeSet<Key>,
}

/// A week being made: its mark in the cache, removed when dropped.
struct Making(Arc<Mutex<WeekCache>>, Key);

impl Drop for Making {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.making.remove(&self.1);
    }
}

/// `[from, to)`: the 7 whole days before today in Asia/Dhaka.
pub fn last_week(now_ms: i64) -> Option<(i64, i64)> {
    let tz = dhaka();
    let today = jiff::Timestamp::from_millisecond(now_ms)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let start = today.checked_sub(jiff::Span::new().days(7)).ok()?;
    let from = tz.to_timestamp(start.at(0, 0, 0, 0)).ok()?;
    let to = tz.to_timestamp(today.at(0, 0, 0, 0)).ok()?;
    Some((from.as_millisecond(), to.as_millisecond()))
}

/// The worst offices of `[from, to)` that `access` may see: the report by
/// office, offices with figures only.
async fn make(
    ws: &WebState,
    access: &Access,
    (from_ms, to_ms): (i64, i64),
    now_ms: i64,
) -> Result<Week, String> {
    let q = ReportQuery {
        from_ms,
        to_ms,
        by: GroupBy::Office,
        // With the collector's holidays, as the API and the reports page.
        schedule: report::parse_schedule(None)
            .map_err(|e| e.to_string())?
            .with_holidays(ws.api.holidays().clone()),
        target_pct: None,
        limit: None,
        branch: None,
    };
    let store = ws.api.store();
    let r = report::run_report(store.as_ref(), &q, Some(access), now_ms)
        .await
        .map_err(|e| e.to_string())?;
    let names: BTreeMap<String, String> = store
        .list_offices()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|o| (o.code, o.name))
        .collect();
    let rows = r
        .rows
        .into_iter()
        .filter_map(|row| {
            let pct = row.uptime_pct?;
            let name = names.get(&row.group)?.clone();
            Some((row.group, name, row.devices, pct))
        })
        .collect();
    Ok(Week {
        from_ms,
        to_ms,
        made_ms: now_ms,
        rows,
    })
}

/// The week's worst offices for `v`, if made within [`WAIT`] (or made
/// lately); `None` while they are being made.
pub async fn worst(ws: &WebState, access: &Access, now_ms: i64) -> Option<Week> {
    let window = last_week(now_ms)?;
    let key: Key = (
        access
            .branch
            .as_ref()
            .map(|b: &Branch| (b.level, b.name.clone())),
        window.0,
    );
    let cache: Arc<Mutex<WeekCache>> = ws.week.clone();
    {
        let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = c.made.get(&key)
            && now_ms - w.made_ms < KEEP_MS
        {
            return Some(w.clone());
        }
        // One task per branch and week at a time.
        if c.making.contains(&key) {
            return c.made.get(&key).cloned();
        }
        c.making.insert(key.clone());
        c.made.retain(|_, w| now_ms - w.made_ms < KEEP_MS * 6);
    }
    let (ws2, access, key2) = (ws.clone(), access.clone(), key.clone());
    let task = tokio::spawn(async move {
        // Ends the mark however the task ends (error or panic included).
        let _making = Making(ws2.week.clone(), key2.clone());
        let made = make(&ws2, &access, window, now_ms).await;
        let mut c = ws2.week.lock().unwrap_or_else(|p| p.into_inner());
        match made {
            Ok(w) => {
                c.made.insert(key2, w.clone());
                Some(w)
            }
            Err(e) => {
                tracing::warn!("dashboard: the week's worst offices: {e}");
                None
            }
        }
    });
    match tokio::time::timeout(WAIT, task).await {
        Ok(Ok(w)) => w,
        _ => {
            let c = cache.lock().unwrap_or_else(|p| p.into_inner());
            c.made.get(&key).cloned()
        }
    }
}

/// May `access` see an alert about `office`? (The alerts API's rule.)
fn sees(access: &Access, office: Option<&str>, offices: &BTreeMap<String, Office>) -> bool {
    match (&access.branch, office) {
        (None, _) => true,
        (Some(b), Some(code)) => offices.get(code).is_some_and(|o| b.contains(o)),
        (Some(_), None) => false,
    }
}

/// The open alerts `v` may see, newest first (none when the store keeps no
/// alerts).
pub async fn open_alerts(
    ws: &WebState,
    v: &Viewer,
    offices: &BTreeMap<String, Office>,
) -> Result<Vec<OpenAlert>, PageError> {
    let mut open = match ws.api.store().open_alerts().await {
        Ok(a) => a,
        Err(StoreError::Unsupported(_)) => return Ok(Vec::new()),
        Err(e) => return Err(store_err(e)),
    };
    open.retain(|a| sees(&v.access, a.office.as_deref(), offices));
    open.sort_by_key(|a| std::cmp::Reverse((a.opened_ms, a.id)));
    Ok(open)
}

fn kind_word(lang: Lang, k: AlertKind) -> &'static str {
    tr(
        lang,
        match k {
            AlertKind::Unreachable => T::Unreachable,
            AlertKind::OfficeOffline => T::OfficeOffline,
            AlertKind::NotRunning => T::NotRunning,
            AlertKind::Failover => T::Failover,
            AlertKind::LinkDown => T::LinkDown,
            AlertKind::MeteredTraffic => T::MeteredTraffic,
        },
    )
}

/// The open alerts' section: how many, the newest few (nothing when none).
pub fn alerts_section(lang: Lang, open: &[OpenAlert]) -> Markup {
    if open.is_empty() {
        return html! {};
    }
    let office = |code: &str| {
        fleet_url(
            Some(&Branch {
                level: Level::Office,
                name: code.to_string(),
            }),
            1,
        )
    };
    html! {
        section.alerts data-open-alerts=(open.len()) {
            h2 { (tr(lang, T::OpenAlerts)) ": " (num(lang, open.len() as i64)) }
            div.wide { table {
                thead { tr {
                    th { (tr(lang, T::Alert)) } th { (tr(lang, T::Subject)) }
                    th { (tr(lang, T::Since)) } th { (tr(lang, T::Acknowledged)) }
                } }
                tbody {
                    @for a in open.iter().take(NEWEST) {
                        tr data-alert=(a.id) {
                            td { (kind_word(lang, a.kind)) }
                            td { @match &a.key.subject {
                                Subject::Device { device } => a href={"/devices/" (urlencode_path(device))} { (device) },
                                Subject::Office { office: code } => a href=(office(code)) { (code) },
                                Subject::Link { device, link } => {
                                    a href={"/devices/" (urlencode_path(device))} { (device) } " · " (link)
                                },
                            } }
                            td { (time(lang, a.since_ms)) }
                            td { @match &a.acked { Some(_) => (tr(lang, T::Yes)), None => (tr(lang, T::No)) } }
                        }
                    }
                }
            } }
        }
    }
}

/// The week's section: the worst offices, or that they are being made.
/// The week's worst [`WORST`] offices within `within` (the page's branch;
/// `None`: all the viewer sees), and a link to the whole report.
pub fn week_section(
    lang: Lang,
    week: Option<&Week>,
    within: Option<&Branch>,
    offices: &BTreeMap<String, Office>,
) -> Markup {
    let inside =
        |code: &str| within.is_none_or(|b| offices.get(code).is_some_and(|o| b.contains(o)));
    let day = |ms: i64| {
        let t = time(lang, ms);
        t.split(' ').next().unwrap_or_default().to_string()
    };
    html! {
        section.week {
            h2 { (tr(lang, T::WorstOffices)) }
            @match week {
                None => p.note data-week="making" { (tr(lang, T::Making)) },
                Some(w) => {
                    @let rows: Vec<_> = w.rows.iter().filter(|r| inside(&r.0)).take(WORST).collect();
                    p.note {
                        (day(w.from_ms)) " – " (day(w.to_ms - 1)) ", " (tr(lang, T::OfficeHours))
                        " · " a href=(super::urls::reports_url(within, super::i18n::today(w.to_ms))) { (tr(lang, T::Reports)) }
                    }
                    @if rows.is_empty() {
                        p data-week="empty" { (tr(lang, T::NoFigures)) }
                    } @else {
                        div.wide { table data-week="worst" {
                            thead { tr {
                                th { (tr(lang, T::Office)) } th.n { (tr(lang, T::Devices)) }
                                th.n { (tr(lang, T::Uptime)) }
                            } }
                            tbody {
                                @for (code, name, devices, pct) in rows {
                                    tr data-office=(code) {
                                        td { a href=(fleet_url(Some(&Branch { level: Level::Office, name: code.clone() }), 1)) { (name) " (" (code) ")" } }
                                        td.n { (num(lang, i64::from(*devices))) }
                                        td.n data-uptime=(format!("{pct:.1}")) { (digits(lang, &format!("{pct:.1}%"))) }
                                    }
                                }
                            }
                        } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_week_is_the_seven_whole_days_before_today_in_dhaka() {
        // 2026-11-29T04:00:00Z is 10:00 on the 29th in Dhaka.
        let now = 1_795_924_800_000;
        let (from, to) = last_week(now).unwrap();
        assert_eq!(time(Lang::En, from), "2026-11-22 00:00");
        assert_eq!(time(Lang::En, to), "2026-11-29 00:00");
        // 23:30 UTC on the 28th is already the 29th in Dhaka.
        let late = 1_795_908_600_000;
        assert_eq!(time(Lang::En, late), "2026-11-29 05:30");
        assert_eq!(last_week(late), Some((from, to)));
    }
}
