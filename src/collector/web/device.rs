//! A device's page: its facts (last upload, agent version, operating system,
//! host name, state now), a day, a week or 30 days up to a day in
//! Asia/Dhaka (`span`) as an SVG timeline of the device and of each link
//! (the same timeline the API's `/api/v1/devices/{name}/timeline` answers),
//! and each link's state at the end of that window. A device outside the
//! viewer's branch is 404.

use super::WebState;
use super::fleet::state_word;
use super::i18n::{T, dhaka, digits, time, tr};
use super::layout::page as frame;
use super::now::{self, NowState};
use super::session::{PageError, fields, store_err, viewer};
use super::svg::{link_state, marks, timeline_svg};
use super::urls::urlencode_path;
use crate::collector::http::{ReadError, visible_device};
use crate::collector::last_seen::now_ms;
use crate::collector::timeline::device_timeline_of;
use crate::collector::uptime::Timeline;
use crate::wire::v1::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use maud::html;

/// How many state-setting records are searched for the newest facts.
const FACTS_LOOKBACK: i64 = 64;

/// What the agent said about the device (its newest `facts` record).
struct Facts {
    hostname: String,
    os: String,
    agent_version: String,
}

/// The day `day` names (`YYYY-MM-DD`), or today in Asia/Dhaka; 400 otherwise.
fn day_param(v: Option<&String>, now: i64) -> Result<Date, PageError> {
    match v {
        None => Ok(jiff::Timestamp::from_millisecond(now)
            .map(|t| t.to_zoned_datetime(dhaka()).date())
            .unwrap_or_default()),
        Some(s) => Some(s.trim())
            .filter(|s| s.len() == 10)
            .and_then(|s| s.parse::<Date>().ok())
            .filter(|d| d.year() >= 2000 && d.year() <= 2200)
            .ok_or_else(|| PageError::BadRequest("`day` must be a date, YYYY-MM-DD".into())),
    }
}

/// How many days the timeline shows (`span`: `day`, the default, `week`
/// or `month`, 30 days); 400 otherwise.
fn span_param(v: Option<&String>) -> Result<(&'static str, i64), PageError> {
    match v.map(|s| s.trim()) {
        None | Some("day") => Ok(("day", 1)),
        Some("week") => Ok(("week", 7)),
        Some("month") => Ok(("month", 30)),
        Some(_) => Err(PageError::BadRequest(
            "`span` must be day, week or month".into(),
        )),
    }
}

/// `[start, end)` of `day` in Asia/Dhaka, Unix ms.
fn day_bounds(day: Date) -> Option<(i64, i64)> {
    let tz = dhaka();
    let start = tz.to_timestamp(day.at(0, 0, 0, 0)).ok()?;
    let end = tz.to_timestamp(day.tomorrow().ok()?.at(0, 0, 0, 0)).ok()?;
    Some((start.as_millisecond(), end.as_millisecond()))
}

/// `GET /devices/{name}?day=YYYY-MM-DD`.
pub(super) async fn page(
    State(ws): State<WebState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let v = viewer(&ws, &headers).await?;
    let q = fields(uri.query().unwrap_or(""), &["day", "span"])?;
    let now = now_ms();
    let day = day_param(q.get("day"), now)?;
    let (span, days) = span_param(q.get("span"))?;
    let out_of_range = || PageError::BadRequest("`day` is out of range".into());
    let first = day
        .checked_sub(jiff::Span::new().days(days - 1))
        .map_err(|_| out_of_range())?;
    let (from, _) = day_bounds(first).ok_or_else(out_of_range)?;
    let (_, to) = day_bounds(day).ok_or_else(out_of_range)?;
    let d = match visible_device(&ws.api, &v.access, &name).await {
        Ok(d) => d,
        Err(ReadError::NotFound(_)) => return Err(PageError::NotFound),
        Err(e) => return Err(store_err(format!("{e:?}"))),
    };
    let store = ws.api.store();
    let last = store
        .transitions_before(d.id, i64::MAX, FACTS_LOOKBACK)
        .await
        .map_err(store_err)?;
    let tail = &last[last.len().saturating_sub(now::TRANSITIONS as usize)..];
    let state = now::state_now(&d, tail, now, ws.opts.silence);
    let facts = last
        .iter()
        .rev()
        .filter(|r| r.kind == "facts")
        .find_map(|r| match serde_json::from_str::<Body>(&r.body).ok()? {
            Body::Facts {
                hostname,
                os,
                agent_version,
                ..
            } => Some(Facts {
                hostname,
                os,
                agent_version,
            }),
            _ => None,
        });
    let tl = if from < now {
        device_timeline_of(store.as_ref(), &d, from, to.min(now), now)
            .await
            .map_err(store_err)?
    } else {
        Timeline::default()
    };
    let lang = v.lang;
    let path = format!("/devices/{}", urlencode_path(&d.name));
    let url = |dd: Date, sp: &str| {
        if sp == "day" {
            format!("{path}?day={dd}")
        } else {
            format!("{path}?day={dd}&span={sp}")
        }
    };
    let step = jiff::Span::new().days(days);
    let prev = day.checked_sub(step).ok().map(|dd| url(dd, span));
    let next = day
        .checked_add(step)
        .ok()
        .filter(|_| to < now)
        .map(|dd| url(dd, span));
    let back = url(day, span);
    let heading = if days == 1 {
        digits(lang, &day.to_string())
    } else {
        digits(lang, &format!("{first} – {day}"))
    };
    let unknown = tr(lang, T::Unknown);
    let body = html! {
        h1 { (tr(lang, T::Device)) ": " (d.name) }
        dl.facts {
            dt { (tr(lang, T::State)) }
            dd class={"state-" (state.as_str())} data-now=(state.as_str()) { (state_word(lang, state)) }
            dt { (tr(lang, T::Office)) }
            dd { (d.office.as_deref().unwrap_or(tr(lang, T::NoOffice))) }
            dt { (tr(lang, T::LastSeen)) }
            dd { @match d.seen.last_upload_ms { Some(t) => (time(lang, t)), None => (tr(lang, T::Never)) } }
            dt { (tr(lang, T::AgentVersion)) }
            dd { (facts.as_ref().map_or(unknown, |f| f.agent_version.as_str())) }
            dt { (tr(lang, T::Os)) }
            dd { (facts.as_ref().map_or(unknown, |f| f.os.as_str())) }
            dt { (tr(lang, T::Host)) }
            dd { (facts.as_ref().map_or(unknown, |f| f.hostname.as_str())) }
        }
        h2 { (tr(lang, T::Timeline)) ": " (heading) }
        nav.pager {
            @if let Some(p) = &prev { a rel="prev" href=(p) { (tr(lang, if days == 1 { T::PrevDay } else { T::Prev })) } }
            @for (sp, word) in [("day", T::Day), ("week", T::Week), ("month", T::Month)] {
                @if sp == span { strong { (tr(lang, word)) } } @else { a href=(url(day, sp)) data-span=(sp) { (tr(lang, word)) } }
            }
            @if let Some(n) = &next { a rel="next" href=(n) { (tr(lang, if days == 1 { T::NextDay } else { T::Next })) } }
        }
        (timeline_svg(lang, &tl, from, to, &marks(lang, from, days)))
        p.note {
            @for s in [NowState::Online, NowState::Offline, NowState::NotRunning] {
                span class={"state-" (s.as_str())} { "■ " (state_word(lang, s)) } " "
            }
            " · " (tr(lang, T::TimesIn))
        }
        h2 { (tr(lang, T::Links)) }
        div.wide { table {
            thead { tr { th { (tr(lang, T::Link)) } th { (tr(lang, T::State)) } th { (tr(lang, T::Since)) } } }
            tbody {
                @for (link, (_, ivs)) in &tl.links {
                    @if let Some(iv) = ivs.last() {
                        tr data-link=(link) {
                            td { (link) }
                            td data-state=(format!("{:?}", iv.state).to_lowercase()) { (link_state(lang, iv.state).0) }
                            td { (time(lang, iv.start)) }
                        }
                    }
                }
            }
        } }
    };
    Ok(frame(lang, &d.name, Some(&v), &back, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_dhaka_days_and_bad_ones_are_refused() {
        let day: Date = "2026-11-01".parse().unwrap();
        let (a, b) = day_bounds(day).unwrap();
        assert_eq!(b - a, 24 * 3_600_000);
        // 00:00 in Dhaka is 18:00 UTC the day before.
        assert_eq!(a, 1_793_469_600_000);
        for bad in ["2026-13-01", "yesterday", "1800-01-01", "2026-11-01T00:00"] {
            assert!(day_param(Some(&bad.to_string()), 0).is_err(), "{bad}");
        }
    }
}
