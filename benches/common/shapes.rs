//! The simulated device the storage and ingest benchmarks share: its three
//! links and the minute summary each one sends, with the agent's default
//! shapes (one active link probed every half second, two standbys every five).

use linkwatch::wire::LinkKind;
use linkwatch::wire::v1::Body;
use rand::Rng;
use rand::rngs::StdRng;

/// The three links of the simulated device (the first active, two standby).
pub const LINKS: [(&str, LinkKind); 3] = [
    ("enp1s0", LinkKind::Broadband),
    ("wlp2s0", LinkKind::Wifi),
    ("wwan0", LinkKind::Mobile),
];

/// One minute's summary of link `link` (an index into [`LINKS`]): a few
/// lost probes one minute in ten, RTTs typical of the link's kind.
pub fn link_minutes(rng: &mut StdRng, link: usize) -> Body {
    let (name, kind) = LINKS[link];
    let sent: u32 = if link == 0 { 120 } else { 12 };
    let lost: u32 = if rng.random_bool(0.1) {
        rng.random_range(1..=3)
    } else {
        0
    };
    let base = match kind {
        LinkKind::Broadband => 18.0,
        LinkKind::Wifi => 25.0,
        LinkKind::Mobile => 55.0,
    };
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let p50: f64 = base + rng.random_range(0.0..15.0);
    let p95 = p50 * rng.random_range(1.1..2.0);
    let max = p95 * rng.random_range(1.0..1.6);
    Body::LinkMinutes {
        link: name.into(),
        kind,
        minutes: 1,
        sent,
        lost,
        rtt_p50_ms: Some(r2(p50)),
        rtt_p95_ms: Some(r2(p95)),
        rtt_max_ms: Some(r2(max)),
        bytes: u64::from(sent) * 168 + rng.random_range(0..400),
    }
}
