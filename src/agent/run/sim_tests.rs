//! Simulation tests of the whole agent loop: the real loop, workers, health,
//! evidence and policy on a [`fakes::FakeHost`] and a [`fakes::FakeProber`]
//! under tokio's paused clock, so minutes of failover run in milliseconds
//! without root. They cover the scenarios of `tests/failover_netns.rs` and
//! `tests/evidence_netns.rs` as the loop sees them, and assert what a user
//! notices: the chosen link and the routes the host was told to install,
//! the published status (`online`, link states, failover), and the records.

mod fakes;

use super::main_loop::{Inputs, Signal};
use super::state::Agent;
use crate::agent::record::{Recorder, Stamp, ToSpool};
use crate::agent::status::{Control, Shared};
use crate::config::agent::AgentConfig;
use crate::shared::time::Clock;
use crate::wire::v1::Body;
use crate::wire::{AgentStatus, LinkState};
use fakes::{FakeHost, FakeProber};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const LINKS: [&str; 3] = ["bb0", "wl0", "mb0"];

/// The failover tests' configuration (`tests/failover_netns.rs`): standby
/// links probed every second, a 3 s hold-down.
fn fast(mode: &str, extra_failover: &str) -> String {
    format!(
        r#"presets = []
probes = [
  {{ type = "icmp", target = "192.0.2.1" }},
  {{ type = "icmp", target = "192.0.2.2" }},
  {{ type = "icmp", target = "203.0.113.10" }},
]
[discovery]
enabled = false
[health]
interval_standby = "1s"
interval_metered_standby = "1s"
[failover]
mode = "{mode}"
hold_down = "3s"
{extra_failover}
[upload]
spool_path = "/nonexistent/linkwatch-sim/spool.db"
heartbeat = "1s"
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
    )
}

/// The evidence tests' configuration (`tests/evidence_netns.rs`): default
/// schedules and thresholds.
fn default_schedules(mode: &str) -> String {
    format!(
        r#"presets = []
probes = [
  {{ type = "icmp", target = "192.0.2.1" }},
  {{ type = "icmp", target = "192.0.2.2" }},
  {{ type = "icmp", target = "203.0.113.10" }},
]
[discovery]
enabled = false
[failover]
mode = "{mode}"
[upload]
spool_path = "/nonexistent/linkwatch-sim/spool.db"
heartbeat = "1s"
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
    )
}

/// One simulated device running the agent loop.
struct Sim {
    host: Arc<FakeHost>,
    prober: Arc<FakeProber>,
    shared: Arc<Shared>,
    /// What the loop and the workers recorded, with the (virtual) time.
    spool: Arc<Mutex<Vec<(Instant, Body)>>>,
    control: mpsc::UnboundedSender<Control>,
    signals: mpsc::UnboundedSender<Signal>,
    task: JoinHandle<()>,
}

impl Sim {
    fn start(config: &str) -> Sim {
        let cfg = AgentConfig::parse(config, Path::new("sim.toml")).expect("config");
        let host = FakeHost::with_links(&LINKS);
        let prober = Arc::new(FakeProber::default());
        let clock = Clock::new();
        let shared = Shared::new("sim".into(), clock);
        let mut agent = Agent::new(
            cfg,
            Path::new("/nonexistent/linkwatch-sim/sim.toml"),
            host.clone(),
            prober.clone(),
            shared.clone(),
            clock,
            "sim".into(),
        );
        let (recorder, mut rx) = Recorder::new(Stamp::now());
        agent.recorder = recorder;
        let spool = Arc::new(Mutex::new(vec![]));
        let written = spool.clone();
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    ToSpool::Record(_, _, body) => {
                        written.lock().unwrap().push((Instant::now(), body))
                    }
                    ToSpool::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        let (control, control_rx) = mpsc::unbounded_channel();
        let (signals, signals_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            agent.start().await.expect("agent starts");
            let inputs = Inputs {
                control: control_rx,
                signals: signals_rx,
            };
            agent.run_loop(inputs, None).await;
        });
        Sim {
            host,
            prober,
            shared,
            spool,
            control,
            signals,
            task,
        }
    }

    fn status(&self) -> AgentStatus {
        self.shared.snapshot()
    }

    fn chosen(&self) -> Option<String> {
        self.status().failover.chosen
    }

    fn state(&self, link: &str) -> (LinkState, Option<String>) {
        let s = self.status();
        let l = s.links.iter().find(|l| l.name == link).expect("link shown");
        (l.state, l.reason.clone())
    }

    /// Everything recorded so far, with the (virtual) time it was handed over.
    fn records(&self) -> Vec<(Instant, Body)> {
        self.spool.lock().unwrap().clone()
    }

    /// The failovers recorded since `t0`: `(from, to, cause)`.
    fn failovers_since(&self, t0: Instant) -> Vec<(Option<String>, Option<String>, String)> {
        self.records()
            .into_iter()
            .filter(|(at, _)| *at >= t0)
            .filter_map(|(_, b)| match b {
                Body::Failover {
                    from, to, cause, ..
                } => Some((from, to, cause)),
                _ => None,
            })
            .collect()
    }

    /// Wait (in simulated time) until `cond` holds; how long that took.
    async fn until(&self, what: &str, within: Duration, cond: impl Fn(&Sim) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if cond(self) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() <= within,
                "no {what} within {within:?}: {:#?}\nroutes: {:?}",
                self.status(),
                self.host.own_v4()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until `link` carries the agent's first route and is chosen.
    async fn route_on(&self, link: &str, within: Duration) -> Duration {
        self.until(&format!("route on {link}"), within, |s| {
            s.host.route().as_deref() == Some(link) && s.chosen().as_deref() == Some(link)
        })
        .await
    }

    async fn state_is(&self, link: &str, state: LinkState, within: Duration) -> Duration {
        self.until(&format!("{link} {state}"), within, |s| {
            s.state(link).0 == state
        })
        .await
    }

    async fn prefer(&self, link: Option<&str>) -> Result<String, String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.control
            .send(Control::Prefer {
                link: link.map(str::to_string),
                reply,
            })
            .expect("loop running");
        rx.await.expect("an answer")
    }

    /// SIGTERM: the loop stops and gives the routing table back.
    async fn stop(self) -> Arc<FakeHost> {
        self.signals.send(Signal::Stop("SIGTERM")).expect("running");
        self.task.await.expect("loop ends cleanly");
        self.host
    }
}

#[tokio::test(start_paused = true)]
async fn silent_cut_fails_over_and_heal_fails_back_only_after_the_hold_down() {
    let sim = Sim::start(&fast("routes", ""));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    assert_eq!(sim.host.own_v4().len(), 3, "{:?}", sim.host.own_v4());
    assert!(sim.status().online);

    let t0 = Instant::now();
    sim.prober.cut("bb0", true);
    let took = sim.route_on("wl0", Duration::from_secs(10)).await;
    let s = sim.status();
    assert_eq!(s.failover.cause, "current-down");
    assert!(s.online, "wl0 works: {s:#?}");
    assert_eq!(sim.state("bb0").0, LinkState::Down);
    assert_eq!(
        sim.failovers_since(t0),
        [(
            Some("bb0".into()),
            Some("wl0".into()),
            "current-down".into()
        )]
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    sim.prober.cut("bb0", false);
    sim.state_is("bb0", LinkState::Up, Duration::from_secs(15))
        .await;
    let up_at = Instant::now();
    // While bb0 waits out its hold-down, the route stays on wl0 and status says why.
    assert_eq!(sim.host.route().as_deref(), Some("wl0"));
    let s = sim.status();
    assert_eq!(
        s.failover.pending.as_ref().map(|p| p.0.as_str()),
        Some("bb0"),
        "{:#?}",
        s.failover
    );
    sim.route_on("bb0", Duration::from_secs(10)).await;
    let waited = up_at.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "failed back after {waited:?}, before the 3 s hold-down"
    );
    assert_eq!(sim.status().failover.cause, "fail-back");
    assert_eq!(sim.host.own_v4().len(), 3, "{:?}", sim.host.own_v4());

    let host = sim.stop().await;
    assert!(host.own_v4().is_empty(), "own routes removed at stop");
    assert_eq!(host.removals(), 2, "at start and at stop");
}

/// On a busy start the best link's first round comes back last: the first
/// choice waits for it instead of taking wl0 and failing back a hold-down
/// later (one failover record, `initial` to bb0).
#[tokio::test(start_paused = true)]
async fn a_slow_first_round_on_the_best_link_is_waited_for() {
    let t0 = Instant::now();
    let sim = Sim::start(&fast("routes", ""));
    sim.prober.slow("bb0", Duration::from_millis(700));
    sim.route_on("bb0", Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        sim.failovers_since(t0),
        [(None, Some("bb0".into()), "initial".into())]
    );
    assert_eq!(sim.status().failover.switches, 1);
}

#[tokio::test(start_paused = true)]
async fn carrier_loss_on_the_active_link_moves_at_once() {
    let sim = Sim::start(&fast("routes", ""));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    let t0 = Instant::now();
    sim.host.set_carrier("bb0", false);
    let took = sim.route_on("wl0", Duration::from_secs(2)).await;
    assert!(took < Duration::from_millis(100), "moved after {took:?}");
    assert_eq!(
        sim.state("bb0"),
        (LinkState::Down, Some("carrier".into())),
        "the cable, not the ISP"
    );
    assert_eq!(sim.status().failover.cause, "current-down");
    let downs: Vec<_> = sim
        .records()
        .into_iter()
        .filter(|(at, _)| *at >= t0)
        .filter_map(|(_, b)| match b {
            Body::LinkState {
                link, to, reason, ..
            } if link == "bb0" => Some((to, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(downs, [(LinkState::Down, Some("carrier".into()))]);
    // The cable back: up again, and the route follows after the hold-down.
    sim.host.set_carrier("bb0", true);
    sim.route_on("bb0", Duration::from_secs(15)).await;
}

#[tokio::test(start_paused = true)]
async fn a_flapping_primary_gets_a_growing_hold_down() {
    let sim = Sim::start(&fast("routes", ""));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    let mut waits = vec![];
    for _ in 0..3 {
        sim.host.set_carrier("bb0", false);
        sim.route_on("wl0", Duration::from_secs(3)).await;
        sim.host.set_carrier("bb0", true);
        sim.state_is("bb0", LinkState::Up, Duration::from_secs(15))
            .await;
        let up = Instant::now();
        sim.route_on("bb0", Duration::from_secs(40)).await;
        waits.push(up.elapsed());
    }
    assert!(waits[0] >= Duration::from_millis(2500), "{waits:?}");
    assert!(
        waits[1] >= Duration::from_millis(5500),
        "hold-down doubles: {waits:?}"
    );
    assert!(
        waits[2] >= Duration::from_millis(11000),
        "and doubles again: {waits:?}"
    );
    assert!(waits[2] < Duration::from_secs(14), "{waits:?}");
}

#[tokio::test(start_paused = true)]
async fn prefer_moves_the_route_and_auto_gives_it_back() {
    let sim = Sim::start(&fast("routes", ""));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    let msg = sim.prefer(Some("mb0")).await.expect("accepted");
    assert!(msg.contains("mb0"), "{msg}");
    sim.route_on("mb0", Duration::from_secs(3)).await;
    let s = sim.status();
    assert_eq!(s.failover.preferred.as_deref(), Some("mb0"));
    assert_eq!(s.failover.cause, "manual");

    let err = sim.prefer(Some("nosuch0")).await.unwrap_err();
    assert!(err.contains("unknown link `nosuch0`"), "{err}");
    assert_eq!(sim.chosen().as_deref(), Some("mb0"));

    sim.prefer(None).await.expect("accepted");
    sim.route_on("bb0", Duration::from_secs(3)).await;
    assert_eq!(sim.status().failover.preferred, None);
    let manual: Vec<_> = sim
        .failovers_since(Instant::now() - Duration::from_secs(3600))
        .into_iter()
        .map(|(_, to, cause)| (to, cause))
        .collect();
    assert_eq!(
        manual,
        [
            (Some("bb0".into()), "initial".into()),
            (Some("mb0".into()), "manual".into()),
            (Some("bb0".into()), "manual-cleared".into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn observe_mode_never_touches_routes_but_still_chooses() {
    let sim = Sim::start(&fast("observe", ""));
    sim.until("bb0 chosen", Duration::from_secs(5), |s| {
        s.chosen().as_deref() == Some("bb0")
    })
    .await;
    sim.prober.cut("bb0", true);
    sim.until("wl0 chosen", Duration::from_secs(10), |s| {
        s.chosen().as_deref() == Some("wl0")
    })
    .await;
    let host = sim.stop().await;
    assert_eq!(host.synced(), 0, "no route asked for");
    assert_eq!(host.removals(), 0, "not even removed");
}

#[tokio::test(start_paused = true)]
async fn a_route_deleted_behind_the_agents_back_is_repaired() {
    let sim = Sim::start(&fast("routes", ""));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    let before = sim.host.own_v4();
    sim.host.delete_own_routes_of("bb0");
    assert_eq!(sim.host.route().as_deref(), Some("wl0"));
    sim.until("bb0's route back", Duration::from_secs(1), |s| {
        s.host.own_v4() == before
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn failover_flushes_the_old_links_tracked_flows() {
    let sim = Sim::start(&fast("routes", "conntrack_flush = \"on-failover\""));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    assert!(
        sim.host.flushed().is_empty(),
        "the first pick flushes nothing"
    );
    sim.prober.cut("bb0", true);
    sim.route_on("wl0", Duration::from_secs(10)).await;
    sim.until("bb0's flows flushed", Duration::from_secs(1), |s| {
        s.host.flushed() == ["bb0"]
    })
    .await;
}

/// Every upstream cut at once (`tests/evidence_netns.rs`): offline within
/// seconds in the status and in the records, every link down, none chosen.
async fn every_upstream_cut(mode: &str) {
    let sim = Sim::start(&default_schedules(mode));
    sim.until("online", Duration::from_secs(10), |s| s.status().online)
        .await;
    // Standby links on their slow schedules for a while.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let t0 = Instant::now();
    for l in LINKS {
        sim.prober.cut(l, true);
    }
    let took = sim
        .until("offline", Duration::from_secs(4), |s| !s.status().online)
        .await;
    let offline_at = Instant::now();
    assert!(took <= Duration::from_secs(4), "{mode}: {took:?}");
    assert_eq!(sim.status().failover.mode, mode);
    for l in LINKS {
        sim.state_is(l, LinkState::Down, Duration::from_secs(3))
            .await;
        assert!(!sim.status().online, "back online without a working link");
    }
    assert_eq!(sim.chosen(), None);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let recs = sim.records();
    let downs = recs
        .iter()
        .filter(|(at, b)| {
            *at >= t0
                && matches!(
                    b,
                    Body::LinkState {
                        to: LinkState::Down,
                        ..
                    }
                )
        })
        .count();
    assert_eq!(downs, 3, "{mode}: a down record per link");
    let beats: Vec<bool> = recs
        .iter()
        .filter(|(at, _)| *at > offline_at + Duration::from_millis(200))
        .filter_map(|(_, b)| match b {
            Body::Heartbeat { online, .. } => Some(*online),
            _ => None,
        })
        .collect();
    assert!(beats.len() >= 2, "{mode}: heartbeats go on: {beats:?}");
    assert!(
        beats.iter().all(|o| !o),
        "{mode}: a heartbeat after the offline moment says online: {beats:?}"
    );
    let online_before = recs
        .iter()
        .any(|(at, b)| *at < t0 && matches!(b, Body::Heartbeat { online: true, .. }));
    assert!(online_before, "{mode}: online heartbeats before the cut");
}

#[tokio::test(start_paused = true)]
async fn every_upstream_cut_at_once_is_offline_within_seconds_in_observe_mode() {
    every_upstream_cut("observe").await;
}

#[tokio::test(start_paused = true)]
async fn every_upstream_cut_at_once_is_offline_within_seconds_in_routes_mode() {
    every_upstream_cut("routes").await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_link_that_died_silently_earlier_is_never_chosen() {
    let sim = Sim::start(&default_schedules("routes"));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    let t0 = Instant::now();
    // wl0's upstream dies; a second later, before its next 5 s round can
    // tell, bb0's does too.
    sim.prober.cut("wl0", true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sim.state("wl0").0, LinkState::Up, "not yet probed");
    sim.prober.cut("bb0", true);
    sim.route_on("mb0", Duration::from_secs(6)).await;
    assert_eq!(sim.status().failover.cause, "current-down");
    // Nothing works any more: no link rather than wl0.
    sim.prober.cut("mb0", true);
    sim.until("no link chosen", Duration::from_secs(30), |s| {
        s.chosen().is_none()
    })
    .await;
    sim.state_is("wl0", LinkState::Down, Duration::from_secs(3))
        .await;
    let moves: Vec<_> = sim
        .failovers_since(t0)
        .into_iter()
        .map(|(_, to, _)| to)
        .collect();
    assert_eq!(moves, [Some("mb0".into()), None], "never wl0");
    // Once wl0 works again, it is proven and chosen.
    sim.prober.cut("wl0", false);
    sim.route_on("wl0", Duration::from_secs(15)).await;
}

#[tokio::test(start_paused = true)]
async fn a_sudden_failover_to_a_stale_standby_link_is_recorded_once() {
    let sim = Sim::start(&default_schedules("routes"));
    sim.route_on("bb0", Duration::from_secs(5)).await;
    // Right after one of wl0's 5 s rounds, wait 3 s: its last clean round
    // is older than 2.5 s when bb0 loses its carrier.
    let before = sim.prober.sent("wl0");
    sim.until("a round on wl0", Duration::from_secs(7), |s| {
        s.prober.sent("wl0") > before
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t0 = Instant::now();
    sim.host.set_carrier("bb0", false);
    sim.route_on("wl0", Duration::from_secs(3)).await;
    assert_eq!(
        sim.failovers_since(t0),
        [(
            Some("bb0".into()),
            Some("wl0".into()),
            "current-down".into()
        )]
    );
    assert_eq!(
        sim.status().failover.switches,
        2,
        "the first pick and this one"
    );
}
