//! Tests of the traffic watch on a simulated clock: scripted readings, the
//! kernel's counter files read from a directory laid out like sysfs, and a
//! model of a laptop whose only link is metered mobile data (health machine,
//! pace and traffic watch wired as the agent's worker does) for the bounds:
//! dead upstream `down` within 3 s while traffic flows and within 30 s while
//! idle, and the probes a day costs.

use super::*;
use crate::agent::evidence::{self, LinkNow, Mode, PaceParams};
use crate::agent::health::{HealthParams, LinkHealth, Observation, Round};
use crate::wire::LinkState;
use proptest::prelude::*;

const QUIET: Duration = Duration::from_millis(300);

fn c(rx: u64, tx: u64) -> Counters {
    Counters {
        rx_packets: rx,
        tx_packets: tx,
    }
}

#[test]
fn verdicts_of_a_scripted_link() {
    let mut w = TrafficWatch::new(Duration::from_secs(20));
    let at = |ms: u64| Millis(ms);
    // No baseline yet.
    assert_eq!(w.sample(at(0), c(10, 10), QUIET, false), Verdict::Idle);
    assert_eq!(w.sample(at(100), c(10, 10), QUIET, false), Verdict::Idle);
    // Packets in: alive, whatever was sent.
    assert_eq!(w.sample(at(200), c(12, 14), QUIET, false), Verdict::Alive);
    assert_eq!(w.sample(at(300), c(13, 14), QUIET, false), Verdict::Alive);
    // Sent, nothing back: waiting, then unanswered once `quiet` has passed
    // since the reading that first saw it.
    assert_eq!(w.sample(at(400), c(13, 15), QUIET, false), Verdict::Waiting);
    assert_eq!(w.sample(at(500), c(13, 16), QUIET, false), Verdict::Waiting);
    assert_eq!(w.sample(at(600), c(13, 16), QUIET, false), Verdict::Waiting);
    assert_eq!(
        w.sample(at(700), c(13, 17), QUIET, false),
        Verdict::Unanswered
    );
    // Asked once: the next ask needs new unanswered packets.
    assert_eq!(w.sample(at(800), c(13, 17), QUIET, true), Verdict::Idle);
    // The round came back clean (its answers arrive): alive.
    assert_eq!(w.sample(at(900), c(16, 20), QUIET, true), Verdict::Alive);
    w.round_done(true);
    // A one-way stream now: the watch waits 1 s after its last ask...
    let mut asked = None;
    for (i, ms) in (1000..=2500).step_by(100).enumerate() {
        if w.sample(at(ms), c(16, 21 + i as u64), QUIET, false) == Verdict::Unanswered {
            asked = Some(ms);
            break;
        }
    }
    assert_eq!(asked, Some(1700));
    // ...and twice as long after the next clean round.
    w.round_done(true);
    assert_eq!(w.backoff, Duration::from_secs(2));
    // Packets from others (not our probes) end the back-off.
    assert_eq!(w.sample(at(1800), c(17, 40), QUIET, false), Verdict::Alive);
    assert_eq!(w.backoff, Duration::ZERO);
    // Counters going backwards: the interface was re-created.
    assert_eq!(w.sample(at(1900), c(0, 0), QUIET, false), Verdict::Idle);
    assert_eq!(w.sample(at(2000), c(0, 1), QUIET, false), Verdict::Waiting);
    // Nothing at all: idle.
    let mut idle = TrafficWatch::new(Duration::from_secs(20));
    for ms in (0..5000).step_by(100) {
        assert_eq!(idle.sample(at(ms), c(5, 5), QUIET, false), Verdict::Idle);
    }
}

#[test]
fn counters_come_from_the_statistics_files() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("wwan0/statistics");
    std::fs::create_dir_all(&stats).unwrap();
    std::fs::write(stats.join("rx_packets"), "1234\n").unwrap();
    std::fs::write(stats.join("tx_packets"), "99\n").unwrap();
    let snmp6 = dir.path().join("snmp6");
    std::fs::create_dir_all(&snmp6).unwrap();
    let s = Sysfs::with_snmp6(dir.path(), &snmp6);
    // Neither a multicast counter nor IPv6: the plain counters.
    assert_eq!(s.read("wwan0").unwrap(), c(1234, 99));
    // Multicast received and IPv6 multicast sent are left out.
    std::fs::write(stats.join("multicast"), "34\n").unwrap();
    std::fs::write(
        snmp6.join("wwan0"),
        "Ip6InReceives                   \t5\nIp6OutMcastPkts                 \t9\nIp6OutMcastOctets               \t672\n",
    )
    .unwrap();
    assert_eq!(s.read("wwan0").unwrap(), c(1200, 90));
    let e = s.read("ppp0").unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read traffic counter ") && e.contains("ppp0/statistics/rx_packets"),
        "{e}"
    );
    std::fs::write(stats.join("tx_packets"), "lots\n").unwrap();
    let e = s.read("wwan0").unwrap_err().to_string();
    assert!(
        e.contains("tx_packets does not hold a number: \"lots\""),
        "{e}"
    );
}

proptest! {
    /// Whatever the readings: alive exactly when packets arrived; never
    /// unanswered while every reading saw packets arrive; unanswered only
    /// once `quiet` passed since packets went out unanswered.
    #[test]
    fn verdicts_follow_the_counters(steps in proptest::collection::vec((0u64..3, 0u64..3, any::<bool>()), 1..200)) {
        let mut w = TrafficWatch::new(Duration::from_secs(20));
        let (mut rx, mut tx) = (0u64, 0u64);
        w.sample(Millis(0), c(rx, tx), QUIET, false);
        let mut first_unanswered: Option<u64> = None;
        for (i, (drx, dtx, probing)) in steps.into_iter().enumerate() {
            let at = (i as u64 + 1) * 100;
            rx += drx;
            tx += dtx;
            let v = w.sample(Millis(at), c(rx, tx), QUIET, probing);
            prop_assert_eq!(v == Verdict::Alive, drx > 0);
            if drx > 0 {
                first_unanswered = None;
            } else if dtx > 0 && first_unanswered.is_none() {
                first_unanswered = Some(at);
            }
            if v == Verdict::Unanswered {
                let since = first_unanswered.expect("packets went out unanswered");
                prop_assert!(at - since >= QUIET.as_millis() as u64);
                first_unanswered = None;
            }
        }
    }
}

/// Traffic on the model link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Load {
    Idle,
    /// A request every 200 ms, answered after the RTT while the link works.
    Steady,
    /// A packet every 200 ms that nothing answers (the link works).
    OneWay,
}

/// A laptop whose only link is metered and active, on a 10 ms clock.
struct Laptop {
    health: LinkHealth,
    watch: TrafficWatch,
    pace: PaceParams,
    last_clean: Option<Millis>,
    failing_since: Option<Millis>,
    rx: u64,
    tx: u64,
    /// Answers on their way: arrival times.
    incoming: Vec<u64>,
    /// (done at, sent, answered) of the round in flight.
    flight: Option<(u64, u32, u32)>,
    last_start: Option<u64>,
    kick: bool,
    asked: bool,
    probed: bool,
    dead: bool,
    load: Load,
    now: u64,
    probes: u64,
}

const RTT: u64 = 40;

impl Laptop {
    fn new(load: Load) -> Laptop {
        let pace = PaceParams::default();
        Laptop {
            health: LinkHealth::new(HealthParams::default(), Millis(0)),
            watch: TrafficWatch::new(pace.interval_metered_active * 4),
            pace,
            last_clean: None,
            failing_since: None,
            rx: 0,
            tx: 0,
            incoming: vec![],
            flight: None,
            last_start: None,
            kick: true,
            asked: false,
            probed: false,
            dead: false,
            load,
            now: 0,
            probes: 0,
        }
    }

    fn link_now(&self) -> LinkNow {
        LinkNow {
            active: true,
            metered: true,
            counters: true,
            state: self.health.state(),
            confirming: self.health.confirming(),
            last_clean: self.last_clean,
            confirm_after: None,
            timeout: self.health.timeout(),
        }
    }

    fn send(&mut self) {
        self.tx += 1;
        if !self.dead {
            self.incoming.push(self.now + RTT);
        }
    }

    fn step(&mut self) {
        self.now += 10;
        let now = self.now;
        let before = self.incoming.len();
        self.incoming.retain(|t| *t > now);
        self.rx += (before - self.incoming.len()) as u64;
        if now.is_multiple_of(200) {
            match self.load {
                Load::Idle => {}
                Load::Steady => self.send(),
                Load::OneWay => self.tx += 1,
            }
        }
        if let Some((done, sent, answered)) = self.flight
            && done <= now
        {
            self.flight = None;
            let round = Round::answered(sent, answered, Duration::from_millis(RTT));
            let clean = round.clean(1);
            if clean {
                self.last_clean = Some(Millis(now));
                self.failing_since = None;
            } else if self.failing_since.is_none() {
                self.failing_since = Some(Millis(now));
            }
            if std::mem::take(&mut self.asked) {
                self.watch.round_done(clean);
            }
            self.health.observe(Millis(now), Observation::Round(round));
        }
        if now.is_multiple_of(100) {
            let probing = std::mem::take(&mut self.probed) || self.flight.is_some();
            let quiet = self.health.timeout();
            let traffic_pace = evidence::pace(&self.link_now(), &self.pace).mode == Mode::Traffic;
            let online = self.health.state().is_online();
            match self
                .watch
                .sample(Millis(now), c(self.rx, self.tx), quiet, probing)
            {
                Verdict::Alive => {
                    self.last_clean = Some(Millis(now));
                    let gap = self.last_start.is_none_or(|s| now - s >= 1000);
                    if !online && self.flight.is_none() && gap && traffic_pace {
                        self.kick = true;
                    }
                }
                Verdict::Unanswered if self.flight.is_none() && online && traffic_pace => {
                    self.asked = true;
                    self.kick = true;
                }
                _ => {}
            }
        }
        let p = evidence::pace(&self.link_now(), &self.pace);
        let due = self.kick
            || self
                .last_start
                .is_none_or(|s| s + p.interval.as_millis() as u64 <= now);
        if due && self.flight.is_none() {
            let sent = if p.all_targets || self.asked { 3 } else { 1 };
            for _ in 0..sent {
                self.send();
            }
            let answered = if self.dead { 0 } else { sent };
            let took = if self.dead {
                self.health.timeout().as_millis() as u64
            } else {
                RTT
            };
            self.flight = Some((now + took, sent, answered));
            self.last_start = Some(now);
            self.kick = false;
            self.probed = true;
            self.probes += u64::from(sent);
        }
    }

    fn run(&mut self, until: u64) {
        while self.now < until {
            self.step();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Dead upstream while traffic flows: `down` within 3 s; while idle:
    /// within 30 s. Back up within 3 s once answers flow again (idle: at the
    /// next slow round).
    #[test]
    fn a_dead_upstream_is_down_within_3_s_with_traffic_and_30_s_idle(phase in 0u64..2_000) {
        for (load, bound) in [(Load::Steady, 3_000), (Load::Idle, 30_000)] {
            let mut l = Laptop::new(load);
            let cut = 60_000 + phase * 10;
            l.run(cut);
            prop_assert_eq!(l.health.state(), LinkState::Up);
            l.dead = true;
            l.run(cut + 40_000);
            prop_assert_eq!(l.health.state(), LinkState::Down);
            let took = l.health.since().0 - cut;
            prop_assert!(took <= bound, "{:?}: down {} ms after the cut", load, took);
            // Back: within 3 s when traffic tells, at the next slow round when idle.
            let heal = l.now;
            l.dead = false;
            l.run(heal + 30_000);
            prop_assert_eq!(l.health.state(), LinkState::Up);
            let back = l.health.since().0 - heal;
            let bound = if load == Load::Steady { 3_000 } else { 23_000 };
            prop_assert!(back <= bound, "{:?}: up {} ms after the heal", load, back);
        }
    }
}

/// The probes six hours cost the metered only link: about one a round every
/// 20 s whether idle or carrying traffic (the traffic is the evidence), and
/// a one-way stream (nothing ever answers it) at most twice that.
#[test]
fn six_hours_of_the_only_link_cost_few_probes() {
    let hours = 6 * 3_600_000;
    let mut per_day = vec![];
    for load in [Load::Idle, Load::Steady, Load::OneWay] {
        let mut l = Laptop::new(load);
        l.run(60_000);
        let p0 = l.probes;
        l.run(60_000 + hours);
        assert_eq!(l.health.state(), LinkState::Up, "{load:?}");
        assert_eq!(l.health.transitions(), 1, "{load:?}: no false down");
        per_day.push(l.probes - p0);
    }
    let rounds = 6 * 3_600 / 20;
    assert!(per_day[0] <= rounds + 5, "idle: {per_day:?}");
    assert!(per_day[1] <= rounds + 5, "steady: {per_day:?}");
    assert!(per_day[2] <= 2 * rounds, "one-way: {per_day:?}");
}
