//! The reports page (`GET /reports`) and its CSV (`GET /reports/csv`): pick
//! a period of whole days in Asia/Dhaka (presets or two dates, the last one
//! included), a grouping (device, office, upazila, district, division), a
//! schedule (office hours or always), an optional target and branch; see
//! the table worst first, paginated; download it. The figures are the
//! uptime API's ([`report::run_report`] with the same parameters, the
//! collector's holidays included), within the viewer's branch; the CSV is
//! the API's `format=csv` byte for byte ([`report::render_csv`]). The
//! parameters are checked here (400 naming the field) and turned into the
//! API's ([`ReportParams::raw`]); a branch outside the viewer's is 404, as
//! on the fleet pages. Reports are made in tasks of their own, at most
//! [`CONCURRENT`] at once and [`QUEUED`] in the making (else 503), and a
//! report made is shown again for [`KEEP_MS`] (paging through it and
//! downloading it give the same figures without making it again; the page
//! says when it was made; one slower than the page's time limit is shown
//! on a later view).

use super::WebState;
use super::fleet::{PAGE, level_word, page_param, pager};
use super::i18n::{Lang, T, digits, num, time, tr};
use super::layout::page as frame;
use super::session::{PageError, Viewer, fields, store_err, viewer};
use super::urls::{REPORTS_CSV_PATH, REPORTS_PATH, default_days, fleet_url, urlencode_path};
use crate::collector::last_seen::now_ms;
use crate::collector::model::{Branch, Level, Office};
use crate::collector::report::{
    self, GroupBy, MAX_RANGE_DAYS, NO_OFFICE, RawQuery, Report, ReportQuery,
};
use crate::shared::time::parse_date;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use jiff::ToSpan;
use jiff::civil::Date;
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The page.
pub const PATH: &str = REPORTS_PATH;
/// Its table as CSV.
pub const CSV_PATH: &str = REPORTS_CSV_PATH;
/// Reports made at once (each reads every device of its branch); the rest
/// wait, within the page's time limit.
pub const CONCURRENT: usize = 2;

const PARAMS: &[&str] = &[
    "from", "until", "by", "schedule", "target", "level", "name", "page",
];

/// A report's parameters as the page takes them: whole days in Asia/Dhaka,
/// `until` included.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportParams {
    pub from: Date,
    pub until: Date,
    pub by: GroupBy,
    /// As written (`office`, `always`, or any schedule the API takes).
    pub schedule: String,
    pub target: Option<String>,
    pub branch: Option<(Level, String)>,
    /// `from` and the day after `until` as the API's `from` and `to`.
    api_window: (String, String),
}

fn bad(msg: String) -> PageError {
    PageError::BadRequest(msg)
}

fn date_field(field: &str, v: &str) -> Result<Date, PageError> {
    parse_date(v.trim()).ok_or_else(|| {
        bad(format!(
            "`{field}` = `{}` is not a date (YYYY-MM-DD)",
            v.trim()
        ))
    })
}

pub use super::i18n::today;

mod making;
use making::make;
pub(super) use making::premake;
pub use making::{KEEP_MS, Made, PREMADE, QUEUED};
#[cfg(test)]
use making::{KEPT, MAX_KEPT_ROWS, kept};

impl ReportParams {
    /// The page's parameters, checked (400 naming the field); by default the
    /// last 7 whole days, by office, in office hours.
    pub fn parse(
        q: &std::collections::HashMap<&str, String>,
        today: Date,
    ) -> Result<Self, PageError> {
        let get = |k: &str| {
            q.get(k)
                .map(String::as_str)
                .filter(|s| !s.trim().is_empty())
        };
        let until = match get("until") {
            Some(v) => date_field("until", v)?,
            None => default_days(today).1,
        };
        // A week ending on `until`, as the default days are.
        let from = match get("from") {
            Some(v) => date_field("from", v)?,
            None => until.checked_sub(6.days()).unwrap_or(until),
        };
        if until.tomorrow().is_err() {
            return Err(bad("`until` is too far ahead".into()));
        }
        if until < from {
            return Err(bad("`until` is before `from`".into()));
        }
        let days = from.until(until).map(|s| s.get_days()).unwrap_or(i32::MAX);
        if i64::from(days) + 1 > MAX_RANGE_DAYS {
            return Err(bad(format!(
                "from `from` to `until` is more than {MAX_RANGE_DAYS} days"
            )));
        }
        let by = report::parse_by(get("by")).map_err(|e| bad(e.message))?;
        let schedule = get("schedule").unwrap_or("office").trim().to_string();
        report::parse_schedule(Some(&schedule)).map_err(|e| bad(e.message))?;
        let target = get("target").map(|t| t.trim().to_string());
        let branch = match (get("level"), get("name")) {
            (None, None) => None,
            (Some(l), Some(n)) => Some((
                Level::parse(l.trim()).ok_or_else(|| {
                    bad("`level` must be division, district, upazila or office".into())
                })?,
                n.to_string(),
            )),
            _ => return Err(bad("give both `level` and `name`, or neither".into())),
        };
        let p = ReportParams::new(from, until, by, schedule, target, branch);
        // Everything else the API checks (the target's range).
        ReportQuery::parse(&p.raw()).map_err(|e| bad(e.message))?;
        Ok(p)
    }

    fn new(
        from: Date,
        until: Date,
        by: GroupBy,
        schedule: String,
        target: Option<String>,
        branch: Option<(Level, String)>,
    ) -> Self {
        let to = until.tomorrow().unwrap_or(until);
        ReportParams {
            from,
            until,
            by,
            schedule,
            target,
            branch,
            api_window: (from.to_string(), to.to_string()),
        }
    }

    /// The same report as the uptime API's parameters (`to` is the day
    /// after `until`, not included).
    pub fn raw(&self) -> RawQuery<'_> {
        let (from, to) = (&self.api_window.0, &self.api_window.1);
        let (mut division, mut district, mut upazila, mut office) = (None, None, None, None);
        if let Some((level, name)) = &self.branch {
            let slot = match level {
                Level::Division => &mut division,
                Level::District => &mut district,
                Level::Upazila => &mut upazila,
                Level::Office => &mut office,
            };
            *slot = Some(name.as_str());
        }
        RawQuery {
            from: Some(from.as_str()),
            to: Some(to.as_str()),
            by: Some(self.by.as_str()),
            schedule: Some(&self.schedule),
            target: self.target.as_deref(),
            limit: None,
            division,
            district,
            upazila,
            office,
        }
    }

    /// The address of this report at `path` (the page or its CSV), page `page`.
    pub fn url(&self, path: &str, page: usize) -> String {
        let mut q: Vec<(&str, String)> = vec![
            ("from", self.from.to_string()),
            ("until", self.until.to_string()),
            ("by", self.by.to_string()),
            ("schedule", self.schedule.clone()),
        ];
        if let Some(t) = &self.target {
            q.push(("target", t.clone()));
        }
        if let Some((l, n)) = &self.branch {
            q.push(("level", l.as_str().to_string()));
            q.push(("name", n.clone()));
        }
        if page > 1 {
            q.push(("page", page.to_string()));
        }
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    }

    /// The same report over `from..=until`.
    fn over(&self, from: Date, until: Date) -> ReportParams {
        let p = self.clone();
        ReportParams::new(from, until, p.by, p.schedule, p.target, p.branch)
    }
}

/// The offices by code as last read, with the catalog version then.
pub type OfficesRead = Option<(i64, Arc<BTreeMap<String, Office>>)>;

/// The offices by code (for their names), read again only when the
/// catalog changed (a store that cannot tell: every time).
async fn offices(ws: &WebState) -> Result<Arc<BTreeMap<String, Office>>, PageError> {
    let store = ws.api.store();
    let version = store.catalog_version().await.map_err(store_err)?;
    {
        let read = ws.offices.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(v), Some((at, o))) = (version, read.as_ref())
            && v == *at
        {
            return Ok(o.clone());
        }
    }
    let all: BTreeMap<String, Office> = store
        .list_offices()
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|o| (o.code.clone(), o))
        .collect();
    let all = Arc::new(all);
    if let Some(v) = version {
        *ws.offices.lock().unwrap_or_else(|e| e.into_inner()) = Some((v, all.clone()));
    }
    Ok(all)
}

/// A length of time: `2d 3h`, `6h 30m`, `45m` (`২ দিন ৩ ঘ` in Bangla).
pub fn duration(lang: Lang, ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    let (d, h, m) = (m / 1440, m / 60 % 24, m % 60);
    let (ud, uh, um) = match lang {
        Lang::En => ("d", "h", "m"),
        Lang::Bn => (" দিন", " ঘ", " মি"),
    };
    let text = if d > 0 {
        format!("{d}{ud} {h}{uh}")
    } else if h > 0 {
        format!("{h}{uh} {m}{um}")
    } else {
        format!("{m}{um}")
    };
    digits(lang, &text)
}

/// A percentage with one decimal, or a dash.
pub fn percent(lang: Lang, v: Option<f64>) -> String {
    match v {
        Some(p) => digits(lang, &format!("{p:.1}%")),
        None => "–".into(),
    }
}

fn by_word(lang: Lang, by: GroupBy) -> &'static str {
    match by {
        GroupBy::Device => tr(lang, T::Device),
        GroupBy::Office => level_word(lang, Level::Office),
        GroupBy::Upazila => level_word(lang, Level::Upazila),
        GroupBy::District => level_word(lang, Level::District),
        GroupBy::Division => level_word(lang, Level::Division),
    }
}

/// A row's group, linked to its fleet or device page.
fn group_cell(lang: Lang, by: GroupBy, group: &str, offices: &BTreeMap<String, Office>) -> Markup {
    if group == NO_OFFICE && by != GroupBy::Device {
        return html! { em { (tr(lang, T::NoOffice)) } };
    }
    let level = match by {
        GroupBy::Device => {
            return html! { a href={"/devices/" (urlencode_path(group))} { (group) } };
        }
        GroupBy::Office => Level::Office,
        GroupBy::Upazila => Level::Upazila,
        GroupBy::District => Level::District,
        GroupBy::Division => Level::Division,
    };
    let href = fleet_url(
        Some(&Branch {
            level,
            name: group.to_string(),
        }),
        1,
    );
    html! {
        @match (level, offices.get(group)) {
            (Level::Office, Some(o)) => { a href=(href) { (o.name) } " " small { (o.code) } },
            _ => a href=(href) { (group) },
        }
    }
}

fn table(lang: Lang, r: &Report, offices: &BTreeMap<String, Office>, page: usize) -> Markup {
    let target = r.target_pct.is_some();
    html! {
        div.wide { table.report {
            thead { tr {
                th { (by_word(lang, r.by)) }
                th.n { (tr(lang, T::Devices)) }
                th.n { (tr(lang, T::Uptime)) }
                @if target { th { (tr(lang, T::MeetsTarget)) } }
                th.n { (tr(lang, T::Offline)) }
                th.n { (tr(lang, T::NotRunning)) }
                th.n { (tr(lang, T::Outages)) }
                th.n { (tr(lang, T::Longest)) }
                th.n { (tr(lang, T::Failovers)) }
                th.n { (tr(lang, T::Loss)) }
                th.n { (tr(lang, T::Rtt)) }
            } }
            tbody {
                @for row in r.rows.iter().skip((page - 1) * PAGE).take(PAGE) {
                    tr data-group=(row.group) {
                        td { (group_cell(lang, r.by, &row.group, offices)) }
                        td.n { (num(lang, i64::from(row.devices))) }
                        td.n data-uptime=(row.uptime_pct.map(|p| format!("{p:.3}")).unwrap_or_default()) {
                            (percent(lang, row.uptime_pct))
                        }
                        @if target { td { @match row.compliant {
                            Some(true) => (tr(lang, T::Yes)),
                            Some(false) => strong { (tr(lang, T::No)) },
                            None => "–",
                        } } }
                        td.n { (duration(lang, row.offline_ms)) }
                        td.n { (duration(lang, row.not_running_ms)) }
                        td.n { (num(lang, i64::from(row.outages))) }
                        td.n { @match row.longest_outage_ms { Some(ms) => (duration(lang, ms)), None => "–" } }
                        td.n { (num(lang, i64::from(row.failovers))) }
                        td.n { (percent(lang, row.loss_pct)) }
                        td.n { @match row.rtt_p50_ms { Some(v) => (digits(lang, &format!("{v:.1}"))), None => "–" } }
                    }
                }
            }
        } }
    }
}

/// Quick periods: today, the last 7 whole days, this month, last month.
fn presets(lang: Lang, p: &ReportParams, today: Date) -> Markup {
    let yesterday = today.yesterday().unwrap_or(today);
    let first = today.first_of_month();
    let last_month_end = first.yesterday().unwrap_or(first);
    let choices = [
        (T::Today, today, today),
        (
            T::Last7,
            yesterday.checked_sub(6.days()).unwrap_or(yesterday),
            yesterday,
        ),
        (T::ThisMonth, first, today),
        (
            T::LastMonth,
            last_month_end.first_of_month(),
            last_month_end,
        ),
    ];
    html! {
        nav.presets {
            @for (word, from, until) in choices {
                @if p.from == from && p.until == until {
                    strong { (tr(lang, word)) }
                } @else {
                    a href=(p.over(from, until).url(PATH, 1)) { (tr(lang, word)) }
                }
            }
        }
    }
}

fn form(lang: Lang, p: &ReportParams) -> Markup {
    let schedules: Vec<(String, &str)> = {
        let mut v = vec![
            ("office".to_string(), tr(lang, T::OfficeHours)),
            ("always".to_string(), tr(lang, T::Always)),
        ];
        if !v.iter().any(|(s, _)| *s == p.schedule) {
            v.push((p.schedule.clone(), p.schedule.as_str()));
        }
        v
    };
    html! {
        form.report method="get" action=(PATH) {
            label { (tr(lang, T::FromDay)) " " input type="date" name="from" value=(p.from.to_string()) required; }
            label { (tr(lang, T::UntilDay)) " " input type="date" name="until" value=(p.until.to_string()) required; }
            label { (tr(lang, T::GroupBy)) " " select name="by" {
                @for by in [GroupBy::Device, GroupBy::Office, GroupBy::Upazila, GroupBy::District, GroupBy::Division] {
                    option value=(by.to_string()) selected[by == p.by] { (by_word(lang, by)) }
                }
            } }
            label { (tr(lang, T::Schedule)) " " select name="schedule" {
                @for (value, word) in &schedules {
                    option value=(value) selected[*value == p.schedule] { (word) }
                }
            } }
            label { (tr(lang, T::Target)) " " input type="number" name="target" min="0" max="100" step="0.1" value=(p.target.clone().unwrap_or_default()); }
            @if let Some((level, name)) = &p.branch {
                input type="hidden" name="level" value=(level.as_str());
                input type="hidden" name="name" value=(name);
            }
            button type="submit" { (tr(lang, T::Show)) }
        }
    }
}

/// Who asks (signed in first) and what: the page number and the report's
/// parameters, checked.
async fn asked(
    ws: &WebState,
    headers: &HeaderMap,
    uri: &Uri,
    today: Date,
) -> Result<(Viewer, usize, ReportParams), PageError> {
    let v = viewer(ws, headers).await?;
    let q = fields(uri.query().unwrap_or(""), PARAMS)?;
    let page_no = page_param(q.get("page"))?;
    Ok((v, page_no, ReportParams::parse(&q, today)?))
}

/// `GET /reports`.
pub(super) async fn page(
    State(ws): State<WebState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let today = today(now_ms());
    let (v, page_no, p) = asked(&ws, &headers, &uri, today).await?;
    let ((r, made_ms), offices) = tokio::try_join!(make(&ws, &v.access, &p), offices(&ws))?;
    let lang = v.lang;
    let branch_text = r.branch.as_ref().map(|b| {
        let office_name = (b.level == Level::Office)
            .then(|| offices.get(&b.name).map(|o| o.name.clone()))
            .flatten();
        format!(
            "{}: {}",
            level_word(lang, b.level),
            office_name.unwrap_or_else(|| b.name.clone())
        )
    });
    let body = html! {
        h1 { (tr(lang, T::Reports)) }
        (presets(lang, &p, today))
        (form(lang, &p))
        p.summary {
            (digits(lang, &p.from.to_string())) " – " (digits(lang, &p.until.to_string()))
            " · " (by_word(lang, r.by))
            " · " (if p.schedule == "office" { tr(lang, T::OfficeHours) } else if p.schedule == "always" { tr(lang, T::Always) } else { p.schedule.as_str() })
            @if let Some(b) = &branch_text { " · " (b) }
            " · " (num(lang, r.rows.len() as i64)) " " (tr(lang, T::Rows))
        }
        @if r.rows.is_empty() {
            p { (tr(lang, T::NoFigures)) }
        } @else {
            (table(lang, &r, &offices, page_no))
            (pager(lang, page_no, r.rows.len(), |n| p.url(PATH, n)))
        }
        p { a.download href=(p.url(CSV_PATH, 1)) download { (tr(lang, T::DownloadCsv)) } }
        p.note data-made=(made_ms) {
            (tr(lang, T::MadeAt)) " " (time(lang, made_ms)) " · " (tr(lang, T::TimesIn)) " · " (tr(lang, T::SameAsApi))
        }
    };
    let back = p.url(PATH, page_no);
    Ok(frame(lang, tr(lang, T::Reports), Some(&v), &back, body).into_response())
}

/// `GET /reports/csv`: the table as the uptime API's CSV.
pub(super) async fn csv(
    State(ws): State<WebState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    // `page` is checked as on the page; the CSV is every row.
    let (v, _, p) = asked(&ws, &headers, &uri, today(now_ms())).await?;
    let (r, _) = make(&ws, &v.access, &p).await?;
    // The text of a large report is tens of MB: one of the turns.
    let _turn = ws
        .reports
        .acquire()
        .await
        .map_err(|_| store_err("the collector is stopping"))?;
    let text = report::render_csv(&r);
    let file = format!("linkwatch-uptime-{}-{}-by-{}.csv", p.from, p.until, p.by);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests;
