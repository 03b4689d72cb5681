//! A timeline drawn as SVG on the server (pure): one band for the device
//! (online / offline / not running / no data) and one per link (up /
//! degraded / down / absent) over a day, a week or a month, with marks in
//! Asia/Dhaka ([`marks`]: every three hours over a day, every day over
//! longer), each piece titled with its state and times. At most one piece
//! per pixel column is drawn, so a month of a flapping link stays small.
//! No script, no external file.

use super::i18n::{Lang, T, dhaka, digits, time, tr};
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

/// One band's pieces, each drawn from where the ones before end and at
/// least a pixel wide; one that would end there is left out (time runs one
/// way, so at most one piece per pixel column).
fn band<S: Copy>(
    lang: Lang,
    y: i64,
    ivs: &[Interval<S>],
    from: i64,
    to: i64,
    word: impl Fn(S) -> (&'static str, &'static str),
    class: impl Fn(S) -> &'static str,
) -> Markup {
    let mut covered = i64::MIN;
    let mut shown = Vec::new();
    for iv in ivs {
        let (x0, x1) = (x(iv.start, from, to), x(iv.end, from, to));
        if x1 <= x0 && iv.end <= iv.start {
            continue;
        }
        // Drawn from where the pieces before end, at least a pixel wide.
        let start = x0.max(covered);
        let end = x1.max(x0 + 1);
        if end <= start {
            continue;
        }
        covered = end;
        shown.push((start, end - start, x1 > x0, iv));
    }
    html! {
        @for (x0, w, titled, iv) in shown {
                @let (name, colour) = word(iv.state);
                // Titled when at least a pixel wide (a month of a link
                // flapping every minute stays under 100 KB).
                rect x=(x0) y=(y) width=(w) height=(BAND) fill=(colour)
                    data-state=(class(iv.state)) {
                    @if titled {
                        title {
                            (name) ": " (time(lang, iv.start)) " – " (time(lang, iv.end))
                            @if let Some(c) = &iv.cause { " (" (c) ")" }
                        }
                    }
                }
        }
    }
}

/// The marks of a window `[from, to]` in Asia/Dhaka: over `days <= 1`,
/// every three hours on the clock, labelled with the hour; over longer,
/// every midnight, labelled with the day of the month (every fifth when
/// more than a week). The window need not start on a mark (the device
/// page's last 24 hours). Dhaka keeps one offset all year, so the offset
/// at `from` holds for the whole window.
pub fn marks(lang: Lang, from: i64, to: i64, days: i64) -> Vec<(i64, Option<String>)> {
    const HOUR: i64 = 3_600_000;
    let step = if days <= 1 { 3 * HOUR } else { 24 * HOUR };
    let offset = jiff::Timestamp::from_millisecond(from)
        .map(|t| i64::from(dhaka().to_offset(t).seconds()) * 1000)
        .unwrap_or(6 * HOUR);
    let local = from + offset;
    let first = local + (step - local.rem_euclid(step)) % step - offset;
    let local_time = |t: i64| {
        jiff::Timestamp::from_millisecond(t)
            .map(|ts| ts.to_zoned_datetime(dhaka()))
            .ok()
    };
    (0..)
        .map(|k| (k, first + k * step))
        .take_while(|&(_, t)| t <= to)
        .map(|(k, t)| {
            let label = if days <= 1 {
                local_time(t).map(|z| digits(lang, &format!("{:02}", z.hour())))
            } else if days <= 7 || k % 5 == 0 {
                local_time(t).map(|z| digits(lang, &z.day().to_string()))
            } else {
                None
            };
            (t, label)
        })
        .collect()
}

/// The SVG of `tl` over `[from, to)`, with `marks` (see [`marks`]).
pub fn timeline_svg(
    lang: Lang,
    tl: &Timeline,
    from: i64,
    to: i64,
    marks: &[(i64, Option<String>)],
) -> Markup {
    let rows = 1 + tl.links.len() as i64;
    let height = TOP + rows * (BAND + GAP) + 4;
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (height)}
            role="img" aria-label=(tr(lang, T::Timeline)) {
            @for (t, label) in marks.iter().filter(|(t, _)| *t <= to) {
                @let hx = x(*t, from, to);
                line x1=(hx) x2=(hx) y1=(TOP - 4) y2=(height) stroke="#d0d7de" stroke-width="1" {}
                @if let Some(l) = label {
                    text x=(hx) y=(TOP - 8) font-size="11" text-anchor="middle" fill="#57606a" { (l) }
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
        let s = timeline_svg(Lang::En, &tl, from, to, &marks(Lang::En, from, to, 1)).into_string();
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
        let bn = timeline_svg(Lang::Bn, &tl, from, to, &marks(Lang::Bn, from, to, 1)).into_string();
        assert!(bn.contains(">০৬<"), "hour marks in Bangla digits");
    }

    #[test]
    fn marks_of_days_weeks_and_months() {
        // 2026-11-29 00:00 in Dhaka.
        let from = 1_795_888_800_000;
        let day = marks(Lang::En, from, from + 86_400_000, 1);
        assert_eq!(day.len(), 9);
        assert_eq!(day[2], (from + 6 * 3_600_000, Some("06".into())));
        let week = marks(Lang::En, from, from + 7 * 86_400_000, 7);
        assert_eq!(week.len(), 8);
        let labels: Vec<_> = week.iter().map(|(_, l)| l.clone().unwrap()).collect();
        assert_eq!(labels, ["29", "30", "1", "2", "3", "4", "5", "6"]);
        let month = marks(Lang::Bn, from, from + 30 * 86_400_000, 30);
        assert_eq!(month.len(), 31);
        assert_eq!(month.iter().filter(|(_, l)| l.is_some()).count(), 7);
        assert_eq!(month[5].1.as_deref(), Some("৪"));
        // The last 24 hours up to 00:26 on the 29th: marks on the clock's
        // three hours from 03:00 on the 28th to midnight, not every three
        // hours from 00:26.
        let now = from + 26 * 60_000;
        let last = marks(Lang::En, now - 86_400_000, now, 1);
        assert_eq!(last.len(), 8);
        assert_eq!(last[0], (from - 21 * 3_600_000, Some("03".into())));
        assert_eq!(last[7], (from, Some("00".into())));
        let week = marks(Lang::En, now - 7 * 86_400_000, now, 7);
        let labels: Vec<_> = week.iter().map(|(_, l)| l.clone().unwrap()).collect();
        assert_eq!(labels, ["23", "24", "25", "26", "27", "28", "29"]);
        assert_eq!(week[6].0, from);
    }

    #[test]
    fn at_most_one_piece_per_pixel_column() {
        // A month of a link flapping every minute: 43,200 intervals.
        let from = 1_795_888_800_000;
        let to = from + 30 * 86_400_000;
        let ivs: Vec<Interval<LinkState>> = (0..43_200)
            .map(|i| Interval {
                start: from + i * 60_000,
                end: from + (i + 1) * 60_000,
                state: if i % 2 == 0 {
                    LinkState::Up
                } else {
                    LinkState::Down
                },
                cause: None,
            })
            .collect();
        let mut tl = Timeline::default();
        tl.links.insert("wl0".into(), (LinkKind::Wifi, ivs));
        let s = timeline_svg(Lang::En, &tl, from, to, &marks(Lang::En, from, to, 30)).into_string();
        let rects = s.matches("<rect").count();
        assert!(rects <= (WIDTH - LABEL) as usize, "{rects} pieces");
        assert!(s.len() < 100_000, "{} bytes", s.len());
    }
}
