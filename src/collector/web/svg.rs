//! A day's timeline drawn as SVG on the server (pure): one band for the
//! device (online / offline / not running / no data) and one per link (up /
//! degraded / down / absent), hour marks every three hours in Asia/Dhaka,
//! each piece titled with its state and times. No script, no external file.

use super::i18n::{Lang, T, digits, time, tr};
use crate::collector::uptime::{DeviceState, Interval, Timeline};
use crate::wire::LinkState;
use maud::{Markup, html};

const WIDTH: i64 = 960;
const LABEL: i64 = 130;
const BAND: i64 = 22;
const GAP: i64 = 8;
const TOP: i64 = 22;

/// The word and colour of a device state.
pub fn device_state(lang: Lang, s: DeviceState) -> (&'static str, &'static str) {
    match s {
        DeviceState::Online => (tr(lang, T::Online), "#1a7f37"),
        DeviceState::Offline => (tr(lang, T::Offline), "#c62828"),
        DeviceState::NotRunning => (tr(lang, T::NotRunning), "#6e7781"),
        DeviceState::NoData => (tr(lang, T::NoData), "#eaeef2"),
    }
}

/// The word and colour of a link state.
pub fn link_state(lang: Lang, s: LinkState) -> (&'static str, &'static str) {
    match s {
        LinkState::Up => (tr(lang, T::Up), "#1a7f37"),
        LinkState::Degraded => (tr(lang, T::Degraded), "#d4a72c"),
        LinkState::Down => (tr(lang, T::Down), "#c62828"),
        LinkState::Absent => (tr(lang, T::Absent), "#afb8c1"),
    }
}

/// x of `t` in a window `[from, to)`.
fn x(t: i64, from: i64, to: i64) -> i64 {
    let span = (to - from).max(1);
    LABEL + (t.clamp(from, to) - from) * (WIDTH - LABEL - 10) / span
}

/// One band's pieces.
fn band<S: Copy>(
    lang: Lang,
    y: i64,
    ivs: &[Interval<S>],
    from: i64,
    to: i64,
    word: impl Fn(S) -> (&'static str, &'static str),
    class: impl Fn(S) -> &'static str,
) -> Markup {
    html! {
        @for iv in ivs {
            @let (x0, x1) = (x(iv.start, from, to), x(iv.end, from, to));
            @if x1 > x0 || iv.end > iv.start {
                @let (name, colour) = word(iv.state);
                rect x=(x0) y=(y) width=((x1 - x0).max(1)) height=(BAND) fill=(colour)
                    data-state=(class(iv.state)) {
                    title {
                        (name) ": " (time(lang, iv.start)) " – " (time(lang, iv.end))
                        @if let Some(c) = &iv.cause { " (" (c) ")" }
                    }
                }
            }
        }
    }
}

/// The SVG of `tl` over `[from, to)` (a day in Asia/Dhaka).
pub fn timeline_svg(lang: Lang, tl: &Timeline, from: i64, to: i64) -> Markup {
    let rows = 1 + tl.links.len() as i64;
    let height = TOP + rows * (BAND + GAP) + 4;
    let hours: Vec<i64> = (0..=8)
        .map(|i| from + i * 3 * 3_600_000)
        .filter(|t| *t <= to)
        .collect();
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (height)}
            role="img" aria-label=(tr(lang, T::Timeline)) {
            @for h in &hours {
                @let hx = x(*h, from, to);
                line x1=(hx) x2=(hx) y1=(TOP - 4) y2=(height) stroke="#d0d7de" stroke-width="1" {}
                text x=(hx) y=(TOP - 8) font-size="11" text-anchor="middle" fill="#57606a" {
                    (digits(lang, &format!("{:02}", ((h - from) / 3_600_000) % 24)))
                }
            }
            text x="4" y=(TOP + 15) font-size="12" fill="#1f2328" { (tr(lang, T::Device)) }
            (band(lang, TOP, &tl.device, from, to, |s| device_state(lang, s), |s| match s {
                DeviceState::Online => "online",
                DeviceState::Offline => "offline",
                DeviceState::NotRunning => "not_running",
                DeviceState::NoData => "no_data",
            }))
            @for (i, (name, (_, ivs))) in tl.links.iter().enumerate() {
                @let y = TOP + (i as i64 + 1) * (BAND + GAP);
                text x="4" y=(y + 15) font-size="12" fill="#1f2328" { (name) }
                (band(lang, y, ivs, from, to, |s| link_state(lang, s), |s| match s {
                    LinkState::Up => "up",
                    LinkState::Degraded => "degraded",
                    LinkState::Down => "down",
                    LinkState::Absent => "absent",
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::LinkKind;

    #[test]
    fn bands_cover_the_states_and_names_are_escaped() {
        let from = 1_795_924_800_000;
        let to = from + 24 * 3_600_000;
        let mut tl = Timeline {
            device: vec![
                Interval {
                    start: from,
                    end: from + 6 * 3_600_000,
                    state: DeviceState::Online,
                    cause: None,
                },
                Interval {
                    start: from + 6 * 3_600_000,
                    end: to,
                    state: DeviceState::Offline,
                    cause: Some("<b>all links down</b>".into()),
                },
            ],
            ..Timeline::default()
        };
        tl.links.insert(
            "<script>alert(1)</script>".into(),
            (
                LinkKind::Wifi,
                vec![Interval {
                    start: from,
                    end: to,
                    state: LinkState::Down,
                    cause: None,
                }],
            ),
        );
        let s = timeline_svg(Lang::En, &tl, from, to).into_string();
        assert_eq!(s.matches("data-state=\"online\"").count(), 1);
        assert_eq!(s.matches("data-state=\"offline\"").count(), 1);
        assert_eq!(s.matches("data-state=\"down\"").count(), 1);
        assert!(!s.contains("<script>") && !s.contains("<b>"), "{s}");
        assert!(s.contains("&lt;script&gt;"));
        // The offline piece starts a quarter of the way along.
        assert_eq!(
            x(from + 6 * 3_600_000, from, to),
            LABEL + (WIDTH - LABEL - 10) / 4
        );
        let bn = timeline_svg(Lang::Bn, &tl, from, to).into_string();
        assert!(bn.contains(">০৬<"), "hour marks in Bangla digits");
    }
}
