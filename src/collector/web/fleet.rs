//! "Fleet now": devices online, offline, not running, silent and without
//! data, by division, with drill-down to district, upazila, office and the
//! office's devices; only the viewer's branch (another branch is 404, as in
//! the API); paginated. The states come from [`super::states`] (bulk reads,
//! kept per device); the whole branch's page also shows the open alerts and
//! the week's worst offices ([`super::week`]).

use super::WebState;
use super::i18n::{Lang, T, num, time, today, tr};
use super::layout::page as frame;
use super::now::{self, Counts, NowState, Row};
use super::session::{PageError, fields, viewer};
use super::states::states;
use super::urls::{fleet_url, reports_url, urlencode_path};
use super::week;
use crate::collector::access::resolve_branch;
use crate::collector::last_seen::now_ms;
use crate::collector::model::{Branch, Device, Level, Office};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// Rows per page.
pub const PAGE: usize = 50;
/// Highest page number accepted.
const MAX_PAGE: usize = 1_000_000;

/// The word of a state.
pub fn state_word(lang: Lang, s: NowState) -> &'static str {
    tr(
        lang,
        match s {
            NowState::Online => T::Online,
            NowState::Offline => T::Offline,
            NowState::NotRunning => T::NotRunning,
            NowState::Silent => T::Silent,
            NowState::NoData => T::NoData,
        },
    )
}

/// The word of a level of the hierarchy.
pub(super) fn level_word(lang: Lang, l: Level) -> &'static str {
    tr(
        lang,
        match l {
            Level::Division => T::Division,
            Level::District => T::District,
            Level::Upazila => T::Upazila,
            Level::Office => T::Office,
        },
    )
}

/// The page number `page` (1 when not given); 400 when not a whole number
/// from 1 to a million.
pub fn page_param(v: Option<&String>) -> Result<usize, PageError> {
    match v {
        None => Ok(1),
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(PageError::BadRequest(format!(
                "`page` must be a whole number from 1 to {MAX_PAGE}"
            ))),
        },
    }
}

fn tiles(lang: Lang, c: &Counts) -> Markup {
    html! {
        div.tiles {
            @for s in NowState::ALL {
                div class={"tile " (s.as_str())} data-count=(s.as_str()) {
                    b { (num(lang, c.get(s))) } (state_word(lang, s))
                }
            }
            div.tile data-count="total" { b { (num(lang, c.total())) } (tr(lang, T::Total)) }
        }
    }
}

/// Links to the pages before and after `page` of `rows` rows ([`PAGE`] a
/// page), `url` making a page number's address; nothing for one page.
pub(super) fn pager(lang: Lang, page: usize, rows: usize, url: impl Fn(usize) -> String) -> Markup {
    let pages = rows.div_ceil(PAGE).max(1);
    html! {
        @if pages > 1 {
            nav.pager {
                @if page > 1 { a rel="prev" href=(url(page - 1)) { (tr(lang, T::Prev)) } }
                span { (tr(lang, T::Page)) " " (num(lang, page as i64)) " / " (num(lang, pages as i64)) }
                @if page < pages { a rel="next" href=(url(page + 1)) { (tr(lang, T::Next)) } }
            }
        }
    }
}

/// Links up the hierarchy to `branch`.
fn crumbs(lang: Lang, branch: Option<&Branch>, offices: &BTreeMap<String, Office>) -> Markup {
    let Some(b) = branch else { return html! {} };
    let Some(o) = offices.values().find(|o| b.contains(o)) else {
        return html! {};
    };
    let up: Vec<Branch> = Level::ALL
        .iter()
        .take_while(|l| **l != b.level)
        .map(|l| Branch {
            level: *l,
            name: l.name_of(o),
        })
        .collect();
    html! {
        nav.crumbs {
            a href="/fleet" { (tr(lang, T::Whole)) } " › "
            @for u in &up { a href=(fleet_url(Some(u), 1)) { (u.level.short_of(o)) } " › " }
            strong { (level_word(lang, b.level)) ": " (if b.level == Level::Office { o.name.as_str() } else { b.level.short_of(o) }) }
        }
    }
}

fn group_table(lang: Lang, level: Level, rows: &[Row], page: usize) -> Markup {
    html! {
        div.wide { table {
            thead { tr {
                th { (level_word(lang, level)) }
                @for s in NowState::ALL { th.n { (state_word(lang, s)) } }
                th.n { (tr(lang, T::Total)) }
            } }
            tbody {
                @for r in rows.iter().skip((page - 1) * PAGE).take(PAGE) {
                    tr {
                        td { @match &r.key {
                            Some(k) => a href=(fleet_url(Some(&Branch { level, name: k.clone() }), 1)) { (r.label) },
                            None => em { (tr(lang, T::NoOffice)) },
                        } }
                        @for s in NowState::ALL { td.n { (num(lang, r.counts.get(s))) } }
                        td.n { (num(lang, r.counts.total())) }
                    }
                }
            }
        } }
    }
}

fn device_table(lang: Lang, devices: &[(&Device, NowState)], page: usize) -> Markup {
    html! {
        div.wide { table {
            thead { tr { th { (tr(lang, T::Device)) } th { (tr(lang, T::State)) } th { (tr(lang, T::LastSeen)) } } }
            tbody {
                @for (d, s) in devices.iter().skip((page - 1) * PAGE).take(PAGE) {
                    tr {
                        td { a href={"/devices/" (urlencode_path(&d.name))} { (d.name) } }
                        td class={"state-" (s.as_str())} { (state_word(lang, *s)) }
                        td { @match d.seen.last_upload_ms { Some(t) => (time(lang, t)), None => (tr(lang, T::Never)) } }
                    }
                }
            }
        } }
    }
}

/// `GET /fleet`.
pub(super) async fn page(
    State(ws): State<WebState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let v = viewer(&ws, &headers).await?;
    let q = fields(uri.query().unwrap_or(""), &["level", "name", "page"])?;
    let page_no = page_param(q.get("page"))?;
    let level = match q.get("level") {
        None => None,
        Some(l) => Some(Level::parse(l.trim()).ok_or_else(|| {
            PageError::BadRequest("`level` must be division, district, upazila or office".into())
        })?),
    };
    let (devices, offices) = states(&ws, &v.access).await?;
    let visible = v
        .access
        .visible_offices(&offices.values().cloned().collect::<Vec<_>>());
    let parent = match (level, q.get("name")) {
        (None, None) => None,
        (Some(l), Some(n)) => {
            Some(resolve_branch(l, n, &visible).map_err(|_| PageError::NotFound)?)
        }
        _ => {
            return Err(PageError::BadRequest(
                "give both `level` and `name`, or neither".into(),
            ));
        }
    };
    // Every page above an office: the week's worst offices within it; the
    // whole branch's page: the open alerts too.
    let (alerts, worst) = if now::child_level(parent.as_ref()).is_some() {
        let whole = parent.is_none();
        let (week, open) = tokio::join!(week::worst(&ws, &v.access, now_ms()), async {
            if whole {
                week::open_alerts(&ws, &v, &offices).await
            } else {
                Ok(Vec::new())
            }
        });
        (
            if whole {
                week::alerts_section(v.lang, &open?)
            } else {
                html! {}
            },
            week::week_section(v.lang, week.as_ref(), parent.as_ref(), &offices),
        )
    } else {
        (html! {}, html! {})
    };
    let lang = v.lang;
    let pairs: Vec<(&Device, NowState)> = devices.iter().map(|(d, s)| (d, *s)).collect();
    let back = fleet_url(parent.as_ref(), page_no);
    let body = match now::child_level(parent.as_ref()) {
        Some(child) => {
            let (all, rows) = now::group(&pairs, &offices, parent.as_ref(), child);
            html! {
                h1 { (tr(lang, T::Fleet)) }
                (crumbs(lang, parent.as_ref(), &offices))
                (tiles(lang, &all))
                p { a href=(reports_url(parent.as_ref(), today(now_ms()))) { (tr(lang, T::Reports)) } }
                (alerts)
                (group_table(lang, child, &rows, page_no))
                (pager(lang, page_no, rows.len(), |p| fleet_url(parent.as_ref(), p)))
                (worst)
                p.note { (tr(lang, T::TimesIn)) }
            }
        }
        None => {
            let b = parent.as_ref().expect("devices are listed under an office");
            let mut inside: Vec<(&Device, NowState)> = pairs
                .into_iter()
                .filter(|(d, _)| b.contains_device(d, &offices))
                .collect();
            inside.sort_by(|x, y| x.0.name.cmp(&y.0.name));
            let mut all = Counts::default();
            inside.iter().for_each(|(_, s)| all.add(*s));
            html! {
                h1 { (tr(lang, T::Fleet)) }
                (crumbs(lang, parent.as_ref(), &offices))
                (tiles(lang, &all))
                p { a href=(reports_url(parent.as_ref(), today(now_ms()))) { (tr(lang, T::Reports)) } }
                (device_table(lang, &inside, page_no))
                (pager(lang, page_no, inside.len(), |p| fleet_url(parent.as_ref(), p)))
                p.note { (tr(lang, T::TimesIn)) }
            }
        }
    };
    Ok(frame(lang, tr(lang, T::Fleet), Some(&v), &back, body).into_response())
}
