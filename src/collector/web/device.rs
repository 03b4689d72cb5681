//! A device's page: its facts (last upload, agent version, operating system,
//! host name, state now), the last 24 hours, 7 or 30 days up to now, or a
//! day, a week or 30 days up to a day in Asia/Dhaka (`span`, `day`) as an
//! SVG timeline of the device and of each link
//! (the same timeline the API's `/api/v1/devices/{name}/timeline` answers),
//! each link's state at the end of that window, the window's outages with
//! their causes (the report's own [`uptime::figures`]), and on a day's page
//! each link's probe quality (loss, median RTT, from its `link_minutes`
//! records) and the failovers. A device outside the viewer's branch is 404.

use super::WebState;
use super::fleet::state_word;
use super::i18n::{T, dhaka, digits, num, time, tr};
use super::layout::page as frame;
use super::now::{self, NowState};
use super::session::{PageError, fields, store_err, viewer};
use super::svg::{link_state, marks, timeline_svg};
use super::urls::urlencode_path;
use crate::collector::http::{ReadError, visible_device};
use crate::collector::last_seen::now_ms;
use crate::collector::report;
use crate::collector::timeline::device_timeline_of;
use crate::collector::uptime::{self, OutageCause, Rec, Timeline};
use crate::wire::v1::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use maud::html;
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

/// How many state-setting records are searched for the newest facts.
const FACTS_LOOKBACK: i64 = 64;

/// What the agent said about the device (its newest `facts` record).
struct Facts {
    hostname: String,
    os: String,
    agent_version: String,
}

/// One link's probes over a window.
#[derive(Debug, Default, PartialEq)]
struct Quality {
    sent: u64,
    lost: u64,
    /// `(rtt_p50_ms, minutes)` of each summary that has one.
    rtts: Vec<(f64, u32)>,
}

impl Quality {
    fn loss_pct(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.lost as f64 * 100.0 / self.sent as f64)
    }

    /// The median of the summaries' median RTTs, each weighted by the
    /// minutes it covers.
    fn rtt_median(&self) -> Option<f64> {
        let mut v = self.rtts.clone();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: u64 = v.iter().map(|&(_, m)| u64::from(m)).sum();
        let mut seen = 0u64;
        v.into_iter().find_map(|(rtt, m)| {
            seen += u64::from(m);
            (seen * 2 >= total).then_some(rtt)
        })
    }
}

/// Each link's probes in `[from, to)`, by name, from its `link_minutes`
/// records (placed by their wall-clock time).
fn link_quality(recs: &[Rec], from: i64, to: i64) -> BTreeMap<String, Quality> {
    let mut out: BTreeMap<String, Quality> = BTreeMap::new();
    for r in recs.iter().filter(|r| (from..to).contains(&r.at_ms)) {
        if let Body::LinkMinutes {
            link,
            minutes,
            sent,
            lost,
            rtt_p50_ms,
            ..
        } = &r.body
        {
            let q = out.entry(link.clone()).or_default();
            q.sent += u64::from(*sent);
            q.lost += u64::from(*lost);
            if let Some(rtt) = rtt_p50_ms.filter(|v| v.is_finite()) {
                q.rtts.push((rtt, (*minutes).max(1)));
            }
        }
    }
    out
}

/// A change of the chosen link: when, from, to, the agent's cause.
type Change<'a> = (i64, Option<&'a str>, Option<&'a str>, &'a str);

/// The failovers in `[from, to)` (the chosen link changed), in order.
fn failovers(recs: &[Rec], from: i64, to: i64) -> Vec<Change<'_>> {
    recs.iter()
        .filter(|r| (from..to).contains(&r.at_ms))
        .filter_map(|r| match &r.body {
            Body::Failover {
                from: a,
                to: b,
                cause,
                ..
            } if a != b => Some((r.at_ms, a.as_deref(), b.as_deref(), cause.as_str())),
            _ => None,
        })
        .collect()
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
    // Without `day`, the window is the span up to now (the last 24 hours,
    // 7 or 30 days), so just after midnight the page still shows the
    // device's last hours; with it, whole days in Asia/Dhaka.
    let rolling = !q.contains_key("day");
    let day = day_param(q.get("day"), now)?;
    let (span, days) = span_param(q.get("span"))?;
    let out_of_range = || PageError::BadRequest("`day` is out of range".into());
    let first = day
        .checked_sub(jiff::Span::new().days(days - 1))
        .map_err(|_| out_of_range())?;
    let (from, to) = if rolling {
        (now - days * DAY_MS, now)
    } else {
        let (from, _) = day_bounds(first).ok_or_else(out_of_range)?;
        let (_, to) = day_bounds(day).ok_or_else(out_of_range)?;
        (from, to)
    };
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
    let backlog = store.spool_backlog(d.id).await.map_err(store_err)?;
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
    let outages = uptime::figures(&tl, &[], &[(from, to.min(now))]).outages;
    // A day's records for the probes and failovers (longer windows would
    // read every minute summary of weeks).
    let recs = if days == 1 && from < now {
        report::records_around(store.as_ref(), &d, from, to.min(now))
            .await
            .map_err(store_err)?
    } else {
        Vec::new()
    };
    let quality = link_quality(&recs, from, to);
    let changes = failovers(&recs, from, to);
    let lang = v.lang;
    // A figure in the page's digits, or a dash when there is none.
    let shown = |v: Option<String>| v.map_or_else(|| "–".to_string(), |v| digits(lang, &v));
    let path = format!("/devices/{}", urlencode_path(&d.name));
    let url = |dd: Option<Date>, sp: &str| match (dd, sp) {
        (None, "day") => path.clone(),
        (None, sp) => format!("{path}?span={sp}"),
        (Some(dd), "day") => format!("{path}?day={dd}"),
        (Some(dd), sp) => format!("{path}?day={dd}&span={sp}"),
    };
    let shown_day = (!rolling).then_some(day);
    // Paging steps whole spans back from today (the rolling window's
    // span before it) or from the day shown.
    let step = jiff::Span::new().days(days);
    let prev = day.checked_sub(step).ok().map(|dd| url(Some(dd), span));
    let next = day
        .checked_add(step)
        .ok()
        .filter(|_| !rolling && to < now)
        .map(|dd| url(Some(dd), span));
    let back = url(shown_day, span);
    let heading = match (rolling, days) {
        (true, 1) => tr(lang, T::Last24h).to_string(),
        (true, 7) => tr(lang, T::Last7).to_string(),
        (true, _) => tr(lang, T::Last30).to_string(),
        (false, 1) => digits(lang, &day.to_string()),
        (false, _) => digits(lang, &format!("{first} – {day}")),
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
            dt { (tr(lang, T::Backlog)) }
            @match backlog {
                None => dd data-backlog="" { (unknown) },
                Some(b) if b.records == 0 => dd data-backlog="0" { (tr(lang, T::BacklogNone)) },
                Some(b) => dd data-backlog=(b.records) {
                    (num(lang, i64::try_from(b.records).unwrap_or(i64::MAX))) " " (tr(lang, T::BacklogRecords))
                    @if let Some(t) = b.oldest_at { ", " (tr(lang, T::Oldest)) " " (time(lang, t)) }
                },
            }
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
                @if sp == span { strong { (tr(lang, word)) } } @else { a href=(url(shown_day, sp)) data-span=(sp) { (tr(lang, word)) } }
            }
            @if let Some(n) = &next { a rel="next" href=(n) { (tr(lang, if days == 1 { T::NextDay } else { T::Next })) } }
            @if !rolling { a href=(url(None, span)) data-rolling { (tr(lang, T::UpToNow)) } }
        }
        (timeline_svg(lang, &tl, from, to, &marks(lang, from, to, days)))
        p.note {
            @for s in [NowState::Online, NowState::Offline, NowState::NotRunning] {
                span class={"state-" (s.as_str())} { "■ " (state_word(lang, s)) } " "
            }
            " · " (tr(lang, T::TimesIn))
        }
        h2 { (tr(lang, T::Links)) }
        div.wide { table {
            thead { tr {
                th { (tr(lang, T::Link)) } th { (tr(lang, T::State)) } th { (tr(lang, T::Since)) }
                @if days == 1 { th { (tr(lang, T::Loss)) } th { (tr(lang, T::Rtt)) } th { (tr(lang, T::Probes)) } }
            } }
            tbody {
                @for (link, (_, ivs)) in &tl.links {
                    @if let Some(iv) = ivs.last() {
                        tr data-link=(link) {
                            td { (link) }
                            td data-state=(format!("{:?}", iv.state).to_lowercase()) { (link_state(lang, iv.state).0) }
                            td { (time(lang, iv.start)) }
                            @if days == 1 {
                                @let q = quality.get(link);
                                @let loss = q.and_then(Quality::loss_pct).map(|p| format!("{p:.1}"));
                                @let rtt = q.and_then(Quality::rtt_median).map(|r| format!("{r:.1}"));
                                td data-loss=(loss.clone().unwrap_or_default()) { (shown(loss.map(|p| p + " %"))) }
                                td data-rtt=(rtt.clone().unwrap_or_default()) { (shown(rtt)) }
                                td { (digits(lang, &q.map_or(0, |q| q.sent).to_string())) }
                            }
                        }
                    }
                }
            }
        } }
        h2 { (tr(lang, T::Outages)) }
        @if outages.is_empty() {
            p.note data-outages="0" { (tr(lang, T::NoOutages)) }
        } @else {
            div.wide { table data-outages=(outages.len()) {
                thead { tr { th { (tr(lang, T::Start)) } th { (tr(lang, T::End)) } th { (tr(lang, T::Duration)) } th { (tr(lang, T::Cause)) } } }
                tbody {
                    @for o in &outages {
                        tr data-cause=(match o.cause { OutageCause::AllLinksDown => "all_links_down", OutageCause::DeviceOff => "device_off" }) {
                            td { (time(lang, o.start)) }
                            td { (time(lang, o.end)) }
                            td { (digits(lang, &((o.end - o.start + 59_999) / 60_000).to_string())) }
                            td { (tr(lang, match o.cause { OutageCause::AllLinksDown => T::AllLinksDown, OutageCause::DeviceOff => T::DeviceOff })) }
                        }
                    }
                }
            } }
        }
        h2 { (tr(lang, T::LinkChanges)) }
        @if days > 1 {
            p.note { (tr(lang, T::OnADay)) }
        } @else if changes.is_empty() {
            p.note data-failovers="0" { (tr(lang, T::NoFailovers)) }
        } @else {
            div.wide { table data-failovers=(changes.len()) {
                thead { tr { th { (tr(lang, T::Since)) } th { (tr(lang, T::FromLink)) } th { (tr(lang, T::ToLink)) } th { (tr(lang, T::Reason)) } } }
                tbody {
                    @for (at, a, b, cause) in &changes {
                        tr {
                            td { (time(lang, *at)) }
                            td { @match a { Some(l) => (l), None => em { (tr(lang, T::NoLink)) } } }
                            td { @match b { Some(l) => (l), None => em { (tr(lang, T::NoLink)) } } }
                            td { (cause) }
                        }
                    }
                }
            } }
            // Reports count only switches from one link to another.
            @let counted = changes.iter().filter(|c| c.1.is_some() && c.2.is_some()).count();
            p.note data-counted=(counted) { (num(lang, counted as i64)) " " (tr(lang, T::CountedFailovers)) }
        }
    };
    Ok(frame(lang, &d.name, Some(&v), &back, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::LinkKind;

    fn rec(at_ms: i64, body: Body) -> Rec {
        Rec {
            seq: 1,
            seq_end: 1,
            at_ms,
            mono_ms: 0,
            boot_id: "b".into(),
            body,
        }
    }

    fn minutes(at: i64, link: &str, minutes: u32, sent: u32, lost: u32, rtt: Option<f64>) -> Rec {
        rec(
            at,
            Body::LinkMinutes {
                link: link.into(),
                kind: LinkKind::Broadband,
                minutes,
                sent,
                lost,
                rtt_p50_ms: rtt,
                rtt_p95_ms: None,
                rtt_max_ms: None,
                bytes: 0,
            },
        )
    }

    #[test]
    fn link_quality_sums_probes_and_weights_the_median_rtt_by_minutes() {
        let recs = [
            minutes(-1, "wan", 1, 100, 100, Some(900.0)), // before the window
            minutes(0, "wan", 1, 60, 6, Some(10.0)),
            minutes(60_000, "wan", 3, 180, 0, Some(30.0)),
            minutes(240_000, "wan", 1, 60, 60, None), // all lost: no RTT
            minutes(0, "lte", 1, 60, 0, Some(80.0)),
            minutes(300_000, "wan", 1, 100, 100, Some(900.0)), // after it
        ];
        let q = link_quality(&recs, 0, 300_000);
        let wan = &q["wan"];
        assert_eq!((wan.sent, wan.lost), (300, 66));
        assert_eq!(wan.loss_pct(), Some(22.0));
        // 1 minute at 10 ms, 3 at 30 ms: the median minute is at 30 ms.
        assert_eq!(wan.rtt_median(), Some(30.0));
        assert_eq!(q["lte"].rtt_median(), Some(80.0));
        assert_eq!(Quality::default().loss_pct(), None);
        assert_eq!(Quality::default().rtt_median(), None);
    }

    #[test]
    fn failovers_are_changes_of_the_chosen_link_in_the_window() {
        let f = |at, a: Option<&str>, b: Option<&str>| {
            rec(
                at,
                Body::Failover {
                    from: a.map(String::from),
                    to: b.map(String::from),
                    cause: "down".into(),
                    reason: String::new(),
                },
            )
        };
        let recs = [
            f(5, Some("wan"), Some("lte")),
            f(6, Some("lte"), Some("lte")), // no change
            f(7, None, Some("wan")),
            f(50, Some("wan"), Some("lte")), // after the window
        ];
        assert_eq!(
            failovers(&recs, 0, 50),
            [
                (5, Some("wan"), Some("lte"), "down"),
                (7, None, Some("wan"), "down")
            ]
        );
    }

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
