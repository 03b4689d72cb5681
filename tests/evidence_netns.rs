//! Fresh evidence for real, in network namespaces the tests create: the agent
//! at its default schedules (standby links probed every 5 s, metered ones
//! every 15 s) on a device with three uplinks. Every link's upstream cut at
//! once makes `linkwatch status` say `online: false` within seconds in both
//! modes, and the spool's records (read back through the collector's uptime
//! engine) place the offline moment there too; a standby link that died
//! silently is never chosen; healthy standby links keep their slow schedules
//! (the agent's own probe counters); a metered link that is the only one uses
//! its traffic as evidence.

mod common;

use common::agent::Agent;
use common::{Testbed, Uplink, testbed_available, wait_until};
use linkwatch::collector::uptime::{self, DeviceState, Rec};
use linkwatch::wire::LinkState;
use linkwatch::wire::v1::{Body, Record};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The agent's config: default schedules and thresholds, ICMP targets only.
fn config(mode: &str, links: &[(&str, &str)], targets: &[&str], extra_health: &str) -> String {
    let probes: Vec<String> = targets
        .iter()
        .map(|t| format!("  {{ type = \"icmp\", target = \"{t}\" }},"))
        .collect();
    let links: Vec<String> = links
        .iter()
        .map(|(n, k)| format!("[[link]]\nname = \"{n}\"\nkind = \"{k}\"\n"))
        .collect();
    format!(
        r#"presets = []
probes = [
{}
]

[agent]
status_listen = "127.0.0.1:9477"
log_format = "text"
log_level = "debug"

[discovery]
enabled = false

[health]
{extra_health}

[failover]
mode = "{mode}"

[upload]
heartbeat = "1s"

{}"#,
        probes.join("\n"),
        links.join("\n")
    )
}

const THREE: [(&str, &str); 3] = [("bb0", "broadband"), ("wl0", "wifi"), ("mb0", "mobile")];
const TARGETS: [&str; 3] = ["192.0.2.1", "192.0.2.2", "203.0.113.10"];

fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Every record in the agent's spool, read beside the running agent through
/// a read-only connection (`Spool::batch` would hand them out).
fn spool_records(agent: &Agent) -> Vec<Rec> {
    use sqlx::Row;
    use sqlx::sqlite::SqliteConnectOptions;
    let opts = SqliteConnectOptions::new()
        .filename(agent.spool_path())
        .read_only(true)
        .busy_timeout(Duration::from_secs(5));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            use sqlx::ConnectOptions;
            let mut c = opts.connect().await.expect("open the spool");
            let rows = sqlx::query(
                "SELECT seq, seq_end, at_ms, mono_ms, boot_id, body FROM records ORDER BY seq",
            )
            .fetch_all(&mut c)
            .await
            .expect("read the spool");
            rows.iter()
                .map(|r| {
                    let seq = r.get::<i64, _>(0) as u64;
                    let seq_end = r.get::<i64, _>(1) as u64;
                    Rec::from(Record {
                        seq,
                        seq_end: (seq_end != seq).then_some(seq_end),
                        at: r.get(2),
                        mono_ms: r.get::<i64, _>(3) as u64,
                        boot_id: r.get(4),
                        body: serde_json::from_str(&r.get::<String, _>(5)).expect("a record body"),
                    })
                })
                .collect()
        })
}

/// The agent's Prometheus counters `linkwatch_probes_total`, summed per
/// (link, probe kind).
fn probe_counts(tb: &Testbed) -> HashMap<(String, String), u64> {
    let out = tb
        .exec_dev([
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9477/metrics').read().decode())",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let label = |line: &str, key: &str| -> String {
        line.split(&format!("{key}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    let mut m = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_prefix("linkwatch_probes_total{") {
            let v: u64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
            *m.entry((label(line, "link"), label(line, "probe")))
                .or_insert(0) += v;
        }
    }
    m
}

fn icmp(counts: &HashMap<(String, String), u64>, link: &str) -> u64 {
    counts
        .get(&(link.to_string(), "icmp".to_string()))
        .copied()
        .unwrap_or(0)
}

/// Cut every upstream at once (one thread each).
fn cut_all(tb: &Testbed) {
    std::thread::scope(|s| {
        for link in Uplink::ALL {
            s.spawn(move || tb.cut_upstream(link));
        }
    });
}

/// Cut every upstream at once; `status` is offline within the deadline, and
/// the spool says the same. Returns how long `status` took.
fn every_upstream_cut(mode: &str) -> Duration {
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config(mode, &THREE, &TARGETS, ""));
    agent.all_up();
    wait_until(Duration::from_secs(10), "online", || agent.status().online);
    // Standby links on their slow schedules for a while.
    std::thread::sleep(Duration::from_millis(3300));
    let t0 = SystemTime::now();
    let start = Instant::now();
    cut_all(&tb);
    let mut seen = None;
    while seen.is_none() {
        let s = agent.status();
        if !s.online {
            seen = Some((start.elapsed(), SystemTime::now(), s));
        } else {
            assert!(
                start.elapsed() < Duration::from_secs(4),
                "{mode}: still online {:?} after every upstream was cut: {s:#?}\nlog:\n{}",
                start.elapsed(),
                agent.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (took, seen_at, s) = seen.unwrap();
    eprintln!("{mode}: status offline {took:?} after the cut");
    assert_eq!(s.failover.mode, mode);
    // It stays offline, and every link goes down.
    for l in ["bb0", "wl0", "mb0"] {
        agent.wait_state(l, LinkState::Down, Duration::from_secs(3), |s| {
            assert!(!s.online, "back online without a working link: {s:#?}");
        });
    }
    assert_eq!(agent.status().failover.chosen, None);

    // The spool: every link's `down`, and heartbeats saying offline after.
    let mut recs = vec![];
    wait_until(
        Duration::from_secs(5),
        "three link downs and two offline heartbeats in the spool",
        || {
            recs = spool_records(&agent);
            let downs = recs
                .iter()
                .filter(|r| {
                    matches!(
                        &r.body,
                        Body::LinkState {
                            to: LinkState::Down,
                            ..
                        }
                    ) && r.at_ms >= wall_ms(t0)
                })
                .count();
            let offline_beats = recs
                .iter()
                .filter(|r| {
                    matches!(r.body, Body::Heartbeat { online: false, .. })
                        && r.at_ms > wall_ms(seen_at) + 1200
                })
                .count();
            downs >= 3 && offline_beats >= 2
        },
    );
    for r in recs.iter().filter(|r| r.at_ms > wall_ms(seen_at) + 200) {
        if let Body::Heartbeat { online, .. } = r.body {
            assert!(
                !online,
                "a heartbeat after the offline moment says online: {r:?}"
            );
        }
    }
    // The collector's engine places the offline moment where status did.
    let now = wall_ms(SystemTime::now());
    let params = uptime::Params {
        heartbeat_ms: 1000,
        ..uptime::Params::default()
    };
    let tl = uptime::timeline(&recs, recs[0].at_ms, now, now, &params);
    let off = tl
        .device
        .iter()
        .find(|i| i.state == DeviceState::Offline && i.end > wall_ms(t0))
        .unwrap_or_else(|| panic!("no offline interval after the cut: {:#?}", tl.device));
    let from_cut = off.start - wall_ms(t0);
    let from_status = off.start - wall_ms(seen_at);
    eprintln!(
        "{mode}: the records make the device offline {from_cut} ms after the cut ({from_status} ms from status)"
    );
    assert!(
        (0..=3500).contains(&from_cut),
        "{mode}: offline {from_cut} ms after the cut: {:#?}",
        tl.device
    );
    assert!(
        from_status.abs() <= 1000,
        "{mode}: records and status disagree by {from_status} ms"
    );
    assert_eq!(off.end, now, "{mode}: offline until now: {:#?}", tl.device);
    assert!(
        tl.device
            .iter()
            .filter(|i| i.start < off.start && i.end > wall_ms(t0) - 3000)
            .all(|i| i.state == DeviceState::Online),
        "{mode}: online up to the cut: {:#?}",
        tl.device
    );
    took
}

#[test]
fn every_upstream_cut_at_once_is_offline_within_seconds_in_observe_mode() {
    if !testbed_available() {
        return;
    }
    every_upstream_cut("observe");
}

#[test]
fn every_upstream_cut_at_once_is_offline_within_seconds_in_routes_mode() {
    if !testbed_available() {
        return;
    }
    every_upstream_cut("routes");
}

/// The interface the kernel would use for internet traffic.
fn kernel_route(tb: &Testbed) -> String {
    let out = common::run(&mut tb.exec_dev(["ip", "-j", "route", "get", "192.0.2.1"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j route get");
    v[0]["dev"].as_str().unwrap_or_default().to_string()
}

/// The links the agent's log says it chose, in order.
fn choices(agent: &Agent) -> Vec<String> {
    agent
        .log_text()
        .lines()
        .filter(|l| l.contains("chosen link changed"))
        .map(|l| {
            l.split(" to=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn a_standby_link_that_died_silently_earlier_is_never_chosen() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", &THREE, &TARGETS, ""));
    agent.all_up();
    wait_until(Duration::from_secs(5), "route on bb0", || {
        kernel_route(&tb) == "bb0"
    });
    // wl0's upstream dies; a second later, before its next 5 s round can
    // tell, bb0's does too.
    tb.cut_upstream(Uplink::Wifi);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(agent.state("wl0").0, LinkState::Up, "not yet probed");
    tb.cut_upstream(Uplink::Broadband);
    wait_until(Duration::from_secs(6), "route on mb0", || {
        kernel_route(&tb) == "mb0"
    });
    let s = agent.status();
    assert_eq!(
        s.failover.chosen.as_deref(),
        Some("mb0"),
        "{:#?}",
        s.failover
    );
    assert_eq!(s.failover.cause, "current-down");
    // Nothing works any more: no link rather than wl0. (mb0, metered and
    // carrying the route, uses its traffic as evidence: with none here, its
    // next 20 s round finds it dead.)
    tb.cut_upstream(Uplink::Mobile);
    wait_until(Duration::from_secs(30), "no link chosen", || {
        agent.status().failover.chosen.is_none()
    });
    agent.wait_state("wl0", LinkState::Down, Duration::from_secs(3), |_| {});
    let chosen = choices(&agent);
    assert!(
        chosen.iter().all(|c| !c.contains("wl0")),
        "wl0 was chosen: {chosen:?}\nlog:\n{}",
        agent.log_tail()
    );
    assert_eq!(chosen.len(), 3, "bb0, mb0, none: {chosen:?}");
    // Once wl0 works again, it is proven and chosen.
    tb.heal_upstream(Uplink::Wifi);
    wait_until(Duration::from_secs(15), "route on wl0", || {
        kernel_route(&tb) == "wl0"
    });
}

#[test]
fn healthy_standby_links_keep_their_slow_schedule() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let health = "interval_standby = \"2s\"\ninterval_metered_standby = \"3s\"";
    let agent = Agent::start(&tb, &config("routes", &THREE, &TARGETS, health));
    agent.all_up();
    // The first choice is bb0 (even when another link answers first on a busy
    // machine), with no fail-back pending and the kernel's route on it.
    wait_until(
        Duration::from_secs(10),
        "bb0 chosen, nothing pending",
        || {
            let f = agent.status().failover;
            f.chosen.as_deref() == Some("bb0") && f.pending.is_none()
        },
    );
    wait_until(Duration::from_secs(5), "route on bb0", || {
        kernel_route(&tb) == "bb0"
    });
    let switches = agent.status().failover.switches;
    // Settled: the first rounds after start are over.
    std::thread::sleep(Duration::from_secs(2));
    let count = |secs: u64| {
        let a = probe_counts(&tb);
        std::thread::sleep(Duration::from_secs(secs));
        let b = probe_counts(&tb);
        ["bb0", "wl0", "mb0"].map(|l| icmp(&b, l) - icmp(&a, l))
    };
    // 24 s healthy: one target per standby round, every target on bb0.
    let [bb, wl, mb] = count(24);
    eprintln!("healthy 24 s: icmp probes bb0 {bb}, wl0 {wl}, mb0 {mb}");
    assert_eq!(
        agent.status().failover.switches,
        switches,
        "no switch while healthy"
    );
    assert!((10..=14).contains(&wl), "wl0 every 2 s: {wl}");
    assert!((6..=10).contains(&mb), "mb0 every 3 s: {mb}");
    assert!(bb >= 120, "bb0 every 500 ms, 3 targets: {bb}");
    // 20 % loss on bb0: a round fails only when all three targets are lost,
    // so the standby links see at most a few confirmation rounds.
    tb.set_loss(Uplink::Broadband, 20);
    let [_, wl, mb] = count(24);
    eprintln!("20% loss on bb0, 24 s: icmp probes wl0 {wl}, mb0 {mb}");
    assert!(wl <= 14 + 3 * 3, "wl0: {wl}");
    assert!(mb <= 10 + 3 * 3, "mb0: {mb}");
    tb.clear_loss(Uplink::Broadband);
    // While bb0 fails, the standby links are confirmed at once, with every
    // target (the test sees extra rounds when there are some).
    let a = probe_counts(&tb);
    tb.cut_upstream(Uplink::Broadband);
    agent.wait_state("bb0", LinkState::Down, Duration::from_secs(5), |_| {});
    let b = probe_counts(&tb);
    assert!(icmp(&b, "mb0") - icmp(&a, "mb0") >= 3, "mb0 confirmed");
    tb.heal_upstream(Uplink::Broadband);
    wait_until(Duration::from_secs(30), "route back on bb0", || {
        kernel_route(&tb) == "bb0"
    });
    // And back to the slow schedule.
    std::thread::sleep(Duration::from_secs(1));
    let [_, wl, mb] = count(12);
    eprintln!("after the outage, 12 s: icmp probes wl0 {wl}, mb0 {mb}");
    assert!((4..=8).contains(&wl), "wl0: {wl}");
    assert!((2..=6).contains(&mb), "mb0: {mb}");
}

#[test]
fn a_metered_only_link_uses_its_traffic_as_evidence() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    // The laptop has mobile data only.
    tb.remove_link(Uplink::Broadband);
    tb.remove_link(Uplink::Wifi);
    let cfg = config(
        "observe",
        &[("mb0", "mobile")],
        &["192.0.2.1", "192.0.2.2"],
        "",
    )
    .replace(
        "probes = [\n",
        "probes = [\n  { type = \"dns\", server = \"198.51.100.53:53\", name = \"probe.test\" },\n",
    );
    let agent = Agent::start(&tb, &cfg);
    agent.wait_state("mb0", LinkState::Up, Duration::from_secs(10), |_| {});
    // Steady traffic of the officer's own (not to a probe target).
    let mut traffic = tb
        .exec_dev(["ping", "-n", "-q", "-i", "0.2", "203.0.113.10"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let a = probe_counts(&tb);
    std::thread::sleep(Duration::from_secs(20));
    let b = probe_counts(&tb);
    let probes = icmp(&b, "mb0") - icmp(&a, "mb0");
    eprintln!("metered only link, 20 s of steady traffic: {probes} icmp probes");
    // One target every 20 s (was every target every second: 40 here).
    assert!(probes <= 4, "{probes} probes in 20 s");
    // The application check ran right after start (then every 10 min; an
    // address event may ask for one more), although the traffic watch wakes
    // the worker every 100 ms.
    let dns = b.get(&("mb0".to_string(), "dns".to_string())).copied();
    assert!(matches!(dns, Some(1..=2)), "{b:?}");
    assert!(agent.status().online);
    // The upstream dies while the traffic flows: down within seconds.
    let start = Instant::now();
    tb.cut_upstream(Uplink::Mobile);
    agent.wait_state("mb0", LinkState::Down, Duration::from_secs(4), |_| {});
    eprintln!(
        "metered only link: down {:?} after the cut, with traffic",
        start.elapsed()
    );
    assert!(!agent.status().online);
    let _ = traffic.kill();
    let _ = traffic.wait();
}

#[test]
fn a_sudden_failover_to_a_stale_standby_link_is_recorded_once() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", &THREE, &TARGETS, ""));
    agent.all_up();
    wait_until(Duration::from_secs(5), "route on bb0", || {
        kernel_route(&tb) == "bb0"
    });
    // Right after one of wl0's 5 s rounds, wait 3 s: its last clean round is
    // older than 2.5 s when bb0 loses its carrier.
    let before = icmp(&probe_counts(&tb), "wl0");
    wait_until(Duration::from_secs(7), "a round on wl0", || {
        icmp(&probe_counts(&tb), "wl0") > before
    });
    std::thread::sleep(Duration::from_secs(3));
    let t0 = SystemTime::now();
    tb.drop_carrier(Uplink::Broadband);
    wait_until(Duration::from_secs(3), "route on wl0", || {
        kernel_route(&tb) == "wl0"
    });
    wait_until(Duration::from_secs(3), "wl0 chosen", || {
        agent.status().failover.chosen.as_deref() == Some("wl0")
    });
    // One failover, from bb0 to the confirmed wl0: whether the policy had
    // to wait for wl0's confirmation round (cause `confirming` meanwhile) or
    // wl0's round, kicked when the kernel moved the default route to it, was
    // in first. (Which one comes first is a race of a millisecond here; the
    // waiting itself is checked by the policy's tests.)
    let mut moves = vec![];
    wait_until(Duration::from_secs(5), "the failover in the spool", || {
        moves = spool_records(&agent)
            .into_iter()
            .filter(|r| r.at_ms >= wall_ms(t0))
            .filter_map(|r| match r.body {
                Body::Failover {
                    from, to, cause, ..
                } => Some((from, to, cause)),
                _ => None,
            })
            .collect();
        !moves.is_empty()
    });
    assert_eq!(
        moves,
        [(
            Some("bb0".to_string()),
            Some("wl0".to_string()),
            "current-down".to_string()
        )]
    );
    assert_eq!(
        agent.status().failover.switches,
        2,
        "the first pick and this one"
    );
}
