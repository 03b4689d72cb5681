//! Failover on a laptop whose routes NetworkManager owns (root only; a real NetworkManager in
//! the network-namespace testbed, see `tests/common/nm.rs`). Prints figures, never pass/fail:
//!
//! the active link's upstream is cut silently (the ISP drops what it forwards; carrier stays)
//! → the kernel's default route (`ip route get 192.0.2.1`, polled every 10 ms) is on a working
//! link. Side by side, in the same run:
//! - WITH the agent (`failover.mode = "auto"`, which picks `networkmanager`; default health
//!   settings; hold-down 2 s): N trials (default 20). The split into detection (cut → the
//!   agent's decision, from its JSON log) and applying (decision → kernel route, through
//!   NetworkManager's Reapply) is printed too;
//! - NetworkManager ALONE with its defaults (connectivity checking against the testbed's
//!   check URI at its default interval, 300 s; it moves the route when its check fails, by
//!   penalising the link's metric): M trials (default 5), each capped at 360 s and each cut
//!   at a random phase of NetworkManager's check period (a random wait of 0 to 300 s after
//!   it last found the link working), so the median is fair and a trial takes about 5 minutes.
//!   The check's host name resolves from a hosts file here (as systemd-resolved would resolve
//!   it per link): NetworkManager's best case;
//! - the same, but the check's host name resolved through DNS, as on Debian without
//!   systemd-resolved: one trial capped at 360 s (the resolution goes out through the link
//!   carrying the default route, the dead one);
//! - NetworkManager ALONE without connectivity checking (Debian's default when the
//!   connectivity package is not installed): one trial capped at 60 s (it never moves the
//!   route on a silent cut).
//!
//! `cargo bench --bench networkmanager -- [--trials N] [--nm-trials M] [--nm-cap SECS]
//!  [--no-nm-alone] [--no-dns-trial]`

#[path = "../tests/common/mod.rs"]
mod common;

use common::agent::Agent;
use common::nm::{Connectivity, NmBed, NmOptions, nm_available};
use common::{Uplink, wait_until};
use linkwatch::wire::LinkState;
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant, SystemTime};

const TARGET: Duration = Duration::from_secs(5);

fn agent_config() -> String {
    r#"presets = []
probes = [
  { type = "icmp", target = "192.0.2.1" },
  { type = "icmp", target = "192.0.2.2" },
  { type = "icmp", target = "203.0.113.10" },
]
[agent]
status_listen = "127.0.0.1:9477"
log_format = "json"
log_level = "info"
[discovery]
enabled = false
[failover]
mode = "auto"
hold_down = "2s"
hold_down_max = "2s"
[[link]]
name = "bb0"
kind = "broadband"
[[link]]
name = "wl0"
kind = "wifi"
[[link]]
name = "mb0"
kind = "mobile"
"#
    .to_string()
}

/// Times at which the agent logged "chosen link changed" to `to`.
fn decisions(agent: &Agent, to: &str) -> Vec<SystemTime> {
    let Ok(f) = std::fs::File::open(&agent.log) else {
        return vec![];
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            let fields = &v["fields"];
            if fields["message"] != "chosen link changed"
                || fields["to"] != format!("Some(\"{to}\")")
            {
                return None;
            }
            let ts = v["timestamp"].as_str()?;
            humantime::parse_rfc3339_weak(ts.trim_end_matches('Z')).ok()
        })
        .collect()
}

/// Polls the kernel's route every `every` until it is on `link`; the time since `t0`, or None
/// after `cap`.
fn route_on(
    nm: &NmBed,
    link: Uplink,
    t0: Instant,
    every: Duration,
    cap: Duration,
) -> Option<Duration> {
    loop {
        if nm.kernel_route(false) == link.iface() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() >= cap {
            return None;
        }
        std::thread::sleep(every);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (median, worst) of `v`, sorted in place.
fn stats(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], *v.last().unwrap())
}

fn with_agent(trials: usize) -> Vec<Duration> {
    let nm = NmBed::new(NmOptions::default());
    let prefix = nm.agent_prefix();
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let bus = nm.bus_address();
    let agent = Agent::spawn_env(
        &nm.tb,
        &agent_config(),
        &prefix,
        &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)],
    );
    wait_until(Duration::from_secs(10), "agent status listener", || {
        agent.try_status().is_some()
    });
    agent.all_up();
    wait_until(Duration::from_secs(15), "networkmanager mode", || {
        agent.status().failover.mode == "networkmanager"
    });
    let mut total = vec![];
    let mut detect = vec![];
    let mut apply = vec![];
    let mut rng = rand::rng();
    for i in 0..trials {
        // bb0 carries the route and is up; a random phase against the probe rounds.
        wait_until(Duration::from_secs(30), "route back on bb0", || {
            nm.kernel_route(false) == "bb0"
        });
        agent.wait_state("bb0", LinkState::Up, Duration::from_secs(30), |_| {});
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1300)));
        let before = decisions(&agent, "wl0").len();
        let wall = SystemTime::now();
        let t0 = Instant::now();
        nm.tb.cut_upstream(Uplink::Broadband);
        let took = route_on(
            &nm,
            Uplink::Wifi,
            t0,
            Duration::from_millis(10),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|| panic!("trial {i}: route never moved\n{}", agent.log_tail()));
        total.push(took);
        let mut d = vec![];
        wait_until(Duration::from_secs(5), "decision logged", || {
            d = decisions(&agent, "wl0");
            d.len() > before
        });
        let decided = d[before].duration_since(wall).unwrap_or_default();
        detect.push(decided);
        apply.push(took.saturating_sub(decided));
        eprintln!(
            "  with the agent, trial {}: {:.0} ms (decision after {:.0} ms)",
            i + 1,
            ms(took),
            ms(decided)
        );
        nm.tb.heal_upstream(Uplink::Broadband);
    }
    let (med, worst) = stats(&mut total);
    let (dmed, dworst) = stats(&mut detect);
    let (amed, aworst) = stats(&mut apply);
    println!(
        "WITH the agent: cut -> kernel route on a working link: n={} median={:.0} ms worst={:.0} ms (target worst <= {:.0} ms)",
        total.len(),
        ms(med),
        ms(worst),
        ms(TARGET)
    );
    println!(
        "  of which detection (cut -> decision): median={:.0} ms worst={:.0} ms; applying (decision -> kernel route through NetworkManager): median={:.0} ms worst={:.0} ms",
        ms(dmed),
        ms(dworst),
        ms(amed),
        ms(aworst)
    );
    total
}

fn nm_alone(trials: usize, cap: Duration, check_host_in_hosts: bool) -> (Vec<Duration>, usize) {
    let nm = NmBed::new(NmOptions {
        check_host_in_hosts,
        ..NmOptions::default()
    });
    let how = if check_host_in_hosts {
        "check host from the hosts file"
    } else {
        "check host resolved through DNS"
    };
    let mut moved = vec![];
    let mut capped = 0;
    let mut rng = rand::rng();
    for i in 0..trials {
        // NetworkManager found bb0 working again when its route came back (its last check);
        // cut at a random phase of its 300 s period.
        wait_until(Duration::from_secs(400), "route back on bb0", || {
            nm.kernel_route(false) == "bb0"
        });
        let phase = Duration::from_secs(rng.random_range(0..300));
        std::thread::sleep(phase);
        let t0 = Instant::now();
        nm.tb.cut_upstream(Uplink::Broadband);
        match route_on(&nm, Uplink::Wifi, t0, Duration::from_millis(100), cap) {
            Some(t) => {
                eprintln!(
                    "  NetworkManager alone ({how}), trial {}: {:.1} s (cut {} s into its period)",
                    i + 1,
                    t.as_secs_f64(),
                    phase.as_secs()
                );
                moved.push(t);
            }
            None => {
                eprintln!(
                    "  NetworkManager alone ({how}), trial {}: not moved within {} s (cut {} s into its period)",
                    i + 1,
                    cap.as_secs(),
                    phase.as_secs()
                );
                capped += 1;
            }
        }
        nm.tb.heal_upstream(Uplink::Broadband);
    }
    match moved.len() {
        0 => println!(
            "NetworkManager ALONE (connectivity check every 300 s, its default; {how}): n={trials}: the route never moved within {} s",
            cap.as_secs()
        ),
        _ => {
            let (med, worst) = stats(&mut moved);
            println!(
                "NetworkManager ALONE (connectivity check every 300 s, its default; {how}): n={trials} median={:.1} s worst={:.1} s{}",
                med.as_secs_f64(),
                worst.as_secs_f64(),
                if capped > 0 {
                    format!(
                        " ({capped} trial(s) not moved within the {} s cap: worst > cap)",
                        cap.as_secs()
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    (moved, capped)
}

fn nm_alone_unchecked(cap: Duration) {
    let nm = NmBed::new(NmOptions {
        connectivity: Connectivity::Off,
        ..NmOptions::default()
    });
    let t0 = Instant::now();
    nm.tb.cut_upstream(Uplink::Broadband);
    match route_on(&nm, Uplink::Wifi, t0, Duration::from_millis(100), cap) {
        Some(t) => println!(
            "NetworkManager ALONE without connectivity checking: moved after {:.1} s",
            t.as_secs_f64()
        ),
        None => println!(
            "NetworkManager ALONE without connectivity checking (Debian's default): n=1, the route never moved within {} s (it has no way to notice a silent cut)",
            cap.as_secs()
        ),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    if !nm_available() {
        println!("networkmanager bench skipped (needs root and NetworkManager)");
        return;
    }
    let trials = arg("--trials", 20) as usize;
    let nm_trials = arg("--nm-trials", 5) as usize;
    let cap = Duration::from_secs(arg("--nm-cap", 360));
    let started = Instant::now();
    let mut agent = with_agent(trials);
    if args.iter().any(|a| a == "--no-nm-alone") {
        return;
    }
    let (mut alone, capped) = nm_alone(nm_trials, cap, true);
    if !args.iter().any(|a| a == "--no-dns-trial") {
        nm_alone(1, cap, false);
    }
    nm_alone_unchecked(Duration::from_secs(60));
    let (amed, aworst) = stats(&mut agent);
    if !alone.is_empty() {
        let (nmed, nworst) = stats(&mut alone);
        let nworst = if capped > 0 { cap.max(nworst) } else { nworst };
        println!(
            "side by side: median {:.1} s with the agent vs {:.1} s alone ({:.0}x); worst {:.1} s vs {}{:.1} s ({:.0}x)",
            amed.as_secs_f64(),
            nmed.as_secs_f64(),
            nmed.as_secs_f64() / amed.as_secs_f64(),
            aworst.as_secs_f64(),
            if capped > 0 { ">" } else { "" },
            nworst.as_secs_f64(),
            nworst.as_secs_f64() / aworst.as_secs_f64()
        );
    }
    println!("(bench took {:.0} s)", started.elapsed().as_secs_f64());
}
