//! Search (`GET /search?q=..&page=..`): places (divisions, districts,
//! upazilas), offices and devices whose name holds the words asked for,
//! within the viewer's branch, paginated. The matching is pure
//! ([`hits`]); the handler reads the states from the fleet pages' copy
//! ([`super::states`]), so a search costs what a fleet page costs.

use super::WebState;
use super::fleet::{PAGE, level_word, page_param, pager, state_word};
use super::i18n::{Lang, T, num, time, tr};
use super::layout::page as frame;
use super::now::NowState;
use super::session::{PageError, fields, viewer};
use super::states::states;
use super::urls::{fleet_url, search_url, urlencode_path};
use crate::collector::model::{Branch, Device, Level, Office};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// Longest query accepted, in characters.
pub const MAX_QUERY: usize = 100;

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit<'a> {
    /// A division, district or upazila, by its short name.
    Place {
        branch: Branch,
        label: String,
    },
    Office(&'a Office),
    Device(&'a Device, NowState),
}

/// The query's words: trimmed, lower case, split on white space; at most
/// [`MAX_QUERY`] characters (else 400 naming `q`).
pub fn words(q: &str) -> Result<Vec<String>, PageError> {
    let q = q.trim();
    if q.chars().count() > MAX_QUERY {
        return Err(PageError::BadRequest(format!(
            "`q` is at most {MAX_QUERY} characters"
        )));
    }
    Ok(q.split_whitespace().map(str::to_lowercase).collect())
}

fn holds_all(text: &str, words: &[String]) -> bool {
    let text = text.to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

/// What `words` find among the `offices` and `devices` (those the viewer
/// may see): places first (division, district, upazila, each by name),
/// then offices (by name; their code or name), then devices (by name).
/// Nothing for no words.
pub fn hits<'a>(
    words: &[String],
    offices: &'a [Office],
    devices: &'a [(Device, NowState)],
) -> Vec<Hit<'a>> {
    if words.is_empty() {
        return Vec::new();
    }
    let mut places: BTreeMap<(Level, String), String> = BTreeMap::new();
    for o in offices {
        for level in [Level::Division, Level::District, Level::Upazila] {
            let short = level.short_of(o);
            if holds_all(short, words) {
                places
                    .entry((level, level.name_of(o)))
                    .or_insert_with(|| short.to_string());
            }
        }
    }
    let mut found: Vec<Hit> = places
        .into_iter()
        .map(|((level, name), label)| Hit::Place {
            branch: Branch { level, name },
            label,
        })
        .collect();
    let mut by_office: Vec<&Office> = offices
        .iter()
        .filter(|o| holds_all(&o.code, words) || holds_all(&o.name, words))
        .collect();
    by_office.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.code.cmp(&b.code)));
    found.extend(by_office.into_iter().map(Hit::Office));
    let mut by_device: Vec<&(Device, NowState)> = devices
        .iter()
        .filter(|(d, _)| holds_all(&d.name, words))
        .collect();
    by_device.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    found.extend(by_device.into_iter().map(|(d, s)| Hit::Device(d, *s)));
    found
}

fn row(lang: Lang, h: &Hit, offices: &BTreeMap<&str, &Office>) -> Markup {
    html! {
        tr {
            @match h {
                Hit::Place { branch, label } => {
                    td { (level_word(lang, branch.level)) }
                    td { a href=(fleet_url(Some(branch), 1)) { (label) } }
                    td { (branch.name) }
                }
                Hit::Office(o) => {
                    td { (tr(lang, T::Office)) }
                    td { a href=(fleet_url(Some(&Branch { level: Level::Office, name: o.code.clone() }), 1)) { (o.name) } }
                    td { (o.code) " · " (o.upazila) ", " (o.district) }
                }
                Hit::Device(d, s) => {
                    td { (tr(lang, T::Device)) }
                    td { a href={"/devices/" (urlencode_path(&d.name))} { (d.name) } }
                    td {
                        span class={"state-" (s.as_str())} { (state_word(lang, *s)) }
                        " · "
                        @match d.office.as_deref().and_then(|c| offices.get(c)) {
                            Some(o) => (o.name),
                            None => (tr(lang, T::NoOffice)),
                        }
                        " · " (tr(lang, T::LastSeen)) ": "
                        @match d.seen.last_upload_ms { Some(t) => (time(lang, t)), None => (tr(lang, T::Never)) }
                    }
                }
            }
        }
    }
}

/// `GET /search`.
pub(super) async fn page(
    State(ws): State<WebState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let v = viewer(&ws, &headers).await?;
    let q = fields(uri.query().unwrap_or(""), &["q", "page"])?;
    let page_no = page_param(q.get("page"))?;
    let text = q.get("q").map(String::as_str).unwrap_or("");
    let words = words(text)?;
    let lang = v.lang;
    let shown = if words.is_empty() {
        html! {}
    } else {
        let (devices, offices) = states(&ws, &v.access).await?;
        let visible = v
            .access
            .visible_offices(&offices.values().cloned().collect::<Vec<_>>());
        let by_code: BTreeMap<&str, &Office> =
            visible.iter().map(|o| (o.code.as_str(), o)).collect();
        let all = hits(&words, &visible, &devices);
        html! {
            p { (num(lang, all.len() as i64)) " " (tr(lang, T::Matches)) }
            @if all.is_empty() {
                p { (tr(lang, T::NoMatches)) }
            } @else {
                div.wide { table { tbody {
                    @for h in all.iter().skip((page_no - 1) * PAGE).take(PAGE) { (row(lang, h, &by_code)) }
                } } }
                (pager(lang, page_no, all.len(), |p| search_url(text, p)))
            }
        }
    };
    let body = html! {
        h1 { (tr(lang, T::Search)) }
        form.search method="get" action="/search" role="search" {
            input type="search" name="q" value=(text.trim()) maxlength=(MAX_QUERY) aria-label=(tr(lang, T::Search));
            button type="submit" { (tr(lang, T::Search)) }
        }
        (shown)
        p.note { (tr(lang, T::TimesIn)) }
    };
    let back = search_url(text, page_no);
    Ok(frame(lang, tr(lang, T::Search), Some(&v), &back, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::model::LastSeen;

    fn office(code: &str, name: &str, div: &str, dist: &str, upa: &str) -> Office {
        Office {
            code: code.into(),
            name: name.into(),
            division: div.into(),
            district: dist.into(),
            upazila: upa.into(),
            hours: None,
        }
    }

    fn dev(id: i64, name: &str, office: &str) -> (Device, NowState) {
        (
            Device {
                id,
                name: name.into(),
                office: Some(office.into()),
                revoked: false,
                acked: 0,
                created_at_ms: 0,
                seen: LastSeen::default(),
            },
            NowState::Online,
        )
    }

    fn labels(h: &[Hit]) -> Vec<String> {
        h.iter()
            .map(|h| match h {
                Hit::Place { branch, .. } => format!("{}:{}", branch.level, branch.name),
                Hit::Office(o) => format!("office:{}", o.code),
                Hit::Device(d, _) => format!("device:{}", d.name),
            })
            .collect()
    }

    #[test]
    fn places_offices_and_devices_in_that_order_every_word_anywhere_in_a_name() {
        let offices = [
            office("dhk-savar-uno", "UNO Savar", "Dhaka", "Dhaka", "Savar"),
            office("dhk-savar-ac", "AC Land Savar", "Dhaka", "Dhaka", "Savar"),
            office("ctg-dc", "DC Office", "Chattogram", "Chattogram", "Kotwali"),
        ];
        let devices = [
            dev(1, "savar-gw1", "dhk-savar-uno"),
            dev(2, "ctg-laptop", "ctg-dc"),
            dev(3, "SAVAR-laptop-2", "dhk-savar-ac"),
        ];
        let w = words("  Savar ").unwrap();
        assert_eq!(
            labels(&hits(&w, &offices, &devices)),
            [
                "upazila:Dhaka / Dhaka / Savar",
                "office:dhk-savar-ac",
                "office:dhk-savar-uno",
                "device:SAVAR-laptop-2",
                "device:savar-gw1",
            ]
        );
        // Every word must be in the one name.
        let w = words("savar laptop").unwrap();
        assert_eq!(
            labels(&hits(&w, &offices, &devices)),
            ["device:SAVAR-laptop-2"]
        );
        // A district and division of the same name are two places.
        let w = words("dhaka").unwrap();
        assert_eq!(
            labels(&hits(&w, &offices, &devices)),
            ["division:Dhaka", "district:Dhaka / Dhaka"]
        );
        // Offices by code too; Bangla and markup are plain text.
        let w = words("ctg-dc").unwrap();
        assert_eq!(labels(&hits(&w, &offices, &devices)), ["office:ctg-dc"]);
        assert!(hits(&words("").unwrap(), &offices, &devices).is_empty());
        assert!(hits(&words("<script>").unwrap(), &offices, &devices).is_empty());
        assert!(hits(&words("সাভার").unwrap(), &offices, &devices).is_empty());
    }

    #[test]
    fn a_query_over_the_limit_is_refused_naming_q() {
        assert!(words(&"x".repeat(MAX_QUERY)).is_ok());
        // Characters, not bytes: 100 Bangla letters are fine.
        assert!(words(&"স".repeat(MAX_QUERY)).is_ok());
        match words(&"x".repeat(MAX_QUERY + 1)) {
            Err(PageError::BadRequest(m)) => assert!(m.contains("`q`"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
