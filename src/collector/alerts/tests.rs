//! Tests of the alert engine, driven by a simulated clock: devices that
//! upload every five minutes (or not), ticks every 15 s over hours and
//! days, decisions applied to an in-memory list of open alerts as the
//! store would. Scenarios per topic in `tests/`; property tests in
//! `tests/props.rs`.

use super::annotate::Annotation;
use super::contacts::{Contact, Language, Routing};
use super::rules::*;
use super::*;
use crate::collector::model::Office;
use crate::shared::schedule::{parse_holidays, parse_schedule};
use std::collections::BTreeMap;

mod annotation;
mod escalation;
mod gateways;
mod grouping;
mod props;
mod silence;
mod silence_props;

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;
pub const TICK: i64 = 15_000;
pub const UPLOAD: i64 = 5 * MIN;

/// Unix ms of a local time in Asia/Dhaka, 2026 (29 November is a Sunday).
pub fn at(month: i8, day: i8, h: i8, m: i8) -> i64 {
    jiff::tz::TimeZone::get("Asia/Dhaka")
        .unwrap()
        .to_timestamp(jiff::civil::date(2026, month, day).at(h, m, 0, 0))
        .unwrap()
        .as_millisecond()
}

/// Sunday 29 November 2026 at `h:m`, Dhaka.
pub fn sun(h: i8, m: i8) -> i64 {
    at(11, 29, h, m)
}

pub fn office(code: &str, upazila: &str, district: &str, division: &str) -> Office {
    Office {
        code: code.into(),
        name: format!("{upazila} office {code}"),
        division: division.into(),
        district: district.into(),
        upazila: upazila.into(),
        hours: None,
    }
}

pub fn offices() -> Vec<Office> {
    vec![
        office("savar-uno", "Savar", "Dhaka", "Dhaka"),
        office("savar-ac", "Savar", "Dhaka", "Dhaka"),
        office("keraniganj", "Keraniganj", "Dhaka", "Dhaka"),
        office("pirganj", "Pirganj", "Rangpur", "Rangpur"),
    ]
}

pub fn rule(name: &str, kind: RuleKind) -> Rule {
    let links = matches!(
        kind,
        RuleKind::Failover | RuleKind::LinkDown | RuleKind::MeteredTraffic
    );
    Rule {
        name: name.into(),
        kind,
        schedule: parse_schedule(if links { "always" } else { "office" }).unwrap(),
        devices: if links {
            DeviceFilter::Gateways
        } else {
            DeviceFilter::All
        },
        branch: None,
        after_ms: 0,
        escalate_after_ms: Some(30 * MIN),
    }
}

pub fn ruleset(rules: Vec<Rule>) -> RuleSet {
    RuleSet {
        rules,
        grace_ms: 2 * MIN,
        upload_interval_ms: UPLOAD,
        grouping: OfficeGrouping::default(),
    }
}

pub fn contact(name: &str, branch: &str, language: Language) -> Contact {
    Contact {
        name: name.into(),
        branch: BranchSpec::parse(branch).unwrap(),
        language,
        email: Some(format!("{name}@example.gov.bd")),
        phone: None,
        channels: vec!["hook".into()],
        origin: "test".into(),
    }
}

/// Contacts at the Savar UNO office, Dhaka district and Dhaka division.
pub fn routing() -> Routing {
    Routing::new(vec![
        contact("uno", "office:savar-uno", Language::Bn),
        contact("ac", "office:savar-ac", Language::En),
        contact("dc-dhaka", "district:Dhaka / Dhaka", Language::En),
        contact("div-dhaka", "division:Dhaka", Language::Bn),
        contact("ministry", "ministry", Language::En),
    ])
}

/// A simulated device: uploads every five minutes at its phase from
/// `since`, except during outages (it uploads its backlog at the end of
/// one) and announced stops (the stop record is uploaded when it stops;
/// it uploads again when it restarts).
#[derive(Debug, Clone)]
pub struct Dev {
    pub name: String,
    pub office: Option<String>,
    pub gateway: bool,
    pub since: i64,
    pub phase: i64,
    /// `[cut, back)`: nothing uploaded.
    pub outages: Vec<(i64, i64)>,
    /// `[stop, start)`: stopped cleanly.
    pub stops: Vec<(i64, i64)>,
    pub links: Option<GatewayLinks>,
}

impl Dev {
    pub fn new(name: &str, office: &str) -> Dev {
        Dev {
            name: name.into(),
            office: Some(office.into()).filter(|o: &String| !o.is_empty()),
            gateway: false,
            since: sun(0, 0) - 7 * 24 * HOUR,
            phase: 0,
            outages: Vec::new(),
            stops: Vec::new(),
            links: None,
        }
    }
    pub fn phase(mut self, ms: i64) -> Dev {
        self.phase = ms;
        self
    }
    pub fn gateway(mut self) -> Dev {
        self.gateway = true;
        self
    }
    pub fn outage(mut self, cut: i64, back: i64) -> Dev {
        self.outages.push((cut, back));
        self
    }
    pub fn stop(mut self, stop: i64, start: i64) -> Dev {
        self.stops.push((stop, start));
        self
    }

    /// The last upload at or before `now`, and the stop in force.
    fn last(&self, now: i64) -> (i64, Option<i64>) {
        let mut t = now;
        loop {
            if let Some(&(s, _)) = self.stops.iter().find(|(s, e)| *s <= t && t < *e) {
                return (s, (t == now).then_some(s));
            }
            if let Some(&(c, _)) = self.outages.iter().find(|(c, b)| *c <= t && t < *b) {
                t = c - 1;
                continue;
            }
            let base = self.since + self.phase;
            let regular = base + (t - base).div_euclid(UPLOAD) * UPLOAD;
            let ends = self
                .outages
                .iter()
                .chain(&self.stops)
                .map(|w| w.1)
                .filter(|e| *e <= t)
                .max()
                .unwrap_or(i64::MIN);
            return (regular.max(ends), None);
        }
    }

    pub fn facts(&self, now: i64) -> DeviceFacts {
        if now < self.since {
            return DeviceFacts {
                name: self.name.clone(),
                office: self.office.clone(),
                gateway: self.gateway,
                ..DeviceFacts::default()
            };
        }
        let (last, stopped) = self.last(now);
        // A stop seen from after the restart is not in force.
        let stopped = stopped.filter(|_| self.stops.iter().any(|(s, e)| *s <= now && now < *e));
        DeviceFacts {
            name: self.name.clone(),
            office: self.office.clone(),
            gateway: self.gateway,
            last_record_ms: Some(last),
            last_upload_ms: Some(last),
            next_upload_due_ms: Some(last + UPLOAD),
            stopped: stopped.map(|_| StopKind::Shutdown),
            links_down: Vec::new(),
            links: self.links.clone(),
        }
    }
}

/// A notice as it left, with the alert's id.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: i64,
    pub id: i64,
    pub n: Notification,
}

/// The evaluator over simulated time, with decisions applied in memory.
pub struct Sim {
    pub ctx: Context,
    pub routing: Routing,
    pub open: Vec<OpenAlert>,
    pub next_id: i64,
    pub silences: Vec<Silence>,
    pub annotations: BTreeMap<String, Annotation>,
    pub sent: Vec<Sent>,
    pub opened: Vec<(i64, NewAlert)>,
    pub resolved: Vec<Resolution>,
    pub updates: Vec<AlertUpdate>,
}

impl Sim {
    pub fn new(rules: RuleSet) -> Sim {
        Sim::with(rules, offices(), routing())
    }

    pub fn with(rules: RuleSet, offices: Vec<Office>, routing: Routing) -> Sim {
        Sim {
            ctx: Context::new(rules, offices),
            routing,
            open: Vec::new(),
            next_id: 0,
            silences: Vec::new(),
            annotations: BTreeMap::new(),
            sent: Vec::new(),
            opened: Vec::new(),
            resolved: Vec::new(),
            updates: Vec::new(),
        }
    }

    pub fn tick(&mut self, now: i64, devices: &[DeviceFacts]) -> Decisions {
        let input = Input {
            now_ms: now,
            devices,
            open: &self.open,
            silences: &self.silences,
            annotations: &self.annotations,
        };
        let d = evaluate(&self.ctx, &self.routing, &input);
        let ids = d.apply(&mut self.open, &mut self.next_id);
        for n in &d.notify {
            let id = match n.alert {
                AlertRef::Id(id) => id,
                AlertRef::New(i) => ids[i],
            };
            self.sent.push(Sent {
                at: now,
                id,
                n: n.clone(),
            });
        }
        self.opened
            .extend(d.open.iter().cloned().map(|a| (a.opened_ms, a)));
        self.resolved.extend(d.resolve.iter().cloned());
        self.updates.extend(d.update.iter().cloned());
        d
    }

    /// Tick every 15 s over `[from, to)`.
    pub fn run(&mut self, from: i64, to: i64, devs: &[Dev]) {
        let mut now = from;
        while now < to {
            let facts: Vec<DeviceFacts> = devs.iter().map(|d| d.facts(now)).collect();
            self.tick(now, &facts);
            now += TICK;
        }
    }

    /// The notices of one event.
    pub fn sent_of(&self, event: Event) -> Vec<&Sent> {
        self.sent.iter().filter(|s| s.n.event == event).collect()
    }

    pub fn open_of(&self, kind: AlertKind) -> Vec<&OpenAlert> {
        self.open.iter().filter(|a| a.kind == kind).collect()
    }
}

pub fn unreachable_only() -> RuleSet {
    ruleset(vec![rule("unreachable", RuleKind::Unreachable)])
}

#[test]
fn a_silent_officer_alerts_after_the_grace_and_recovers_with_a_notice() {
    let mut sim = Sim::new(unreachable_only());
    // Alone in its office: told at once (nothing to group with).
    let dev = Dev::new("laptop-1", "keraniganj").outage(sun(10, 1), sun(10, 47));
    sim.run(sun(9, 0), sun(12, 0), std::slice::from_ref(&dev));
    // Last upload 10:00, deadline 10:05, grace 2 min: alert at 10:07.
    assert_eq!(sim.opened.len(), 1, "{:?}", sim.opened);
    let (opened, a) = &sim.opened[0];
    assert!(
        *opened >= sun(10, 7) && *opened < sun(10, 7) + TICK,
        "{opened}"
    );
    assert_eq!(a.since_ms, sun(10, 0));
    assert_eq!(a.kind, AlertKind::Unreachable);
    let told = sim.sent_of(Event::Opened);
    assert_eq!(told.len(), 1);
    // No contact at the Keraniganj office: the district's are told.
    assert_eq!(told[0].n.levels, vec![RouteLevel::District]);
    // Back at 10:47: resolved then, and the recovery goes to those told.
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 1);
    assert!(rec[0].at >= sun(10, 47) && rec[0].at < sun(10, 47) + TICK);
    assert!(sim.open.is_empty());
    let esc = sim.sent_of(Event::Escalated);
    assert_eq!(
        esc.len(),
        1,
        "not acknowledged for 30 min: the division hears"
    );
    assert_eq!(esc[0].n.levels, vec![RouteLevel::Division]);
    assert!(esc[0].at >= sun(10, 37) && esc[0].at < sun(10, 37) + TICK);
    assert_eq!(
        rec[0].n.levels,
        vec![RouteLevel::District, RouteLevel::Division]
    );
    assert_eq!(sim.sent.len(), 3);
}

/// A device heard again through an upload that carries only records from
/// before its silence (sent then, delivered late): the recovery waits for
/// records from inside the silence, so its account of what happened is not
/// "online all along" for want of data; silent again meanwhile, it starts
/// over; with records that never catch up (a clock far behind), it is told
/// after the grouping window.
#[test]
fn a_recovery_waits_until_the_records_reach_into_the_silence() {
    let window = OfficeGrouping::default().window_ms;
    assert!(window >= 2 * MIN, "{window}");
    let facts = |upload: i64, record: i64| DeviceFacts {
        name: "laptop-1".into(),
        office: Some("keraniganj".into()),
        last_record_ms: Some(record),
        last_upload_ms: Some(upload),
        next_upload_due_ms: Some(upload + UPLOAD),
        ..DeviceFacts::default()
    };
    let recovered = |sim: &Sim| sim.sent_of(Event::Recovered).len();
    for case in ["catches up", "silent again", "never catches up"] {
        let mut sim = Sim::new(unreachable_only());
        // Last heard 10:00; told at 10:07.
        sim.tick(sun(10, 7), &[facts(sun(10, 0), sun(10, 0))]);
        assert_eq!(sim.sent_of(Event::Opened).len(), 1, "{case}");
        let since = sim.open[0].since_ms;
        // 10:40: an upload sent at 10:00:30 arrives, its newest record
        // from then. Held, not resolved.
        let late = facts(sun(10, 40), sun(10, 0) + 30_000);
        sim.tick(sun(10, 40), std::slice::from_ref(&late));
        assert_eq!(
            recovered(&sim),
            0,
            "{case}: told from records before the silence"
        );
        assert_eq!(sim.open.len(), 1, "{case}");
        assert_eq!(sim.open[0].clearing_since_ms, Some(sun(10, 40)), "{case}");
        assert_eq!(sim.open[0].since_ms, since, "{case}");
        match case {
            "catches up" => {
                // 10:40:05: the uploads with the outage's records.
                sim.tick(
                    sun(10, 40) + 5_000,
                    &[facts(sun(10, 40) + 5_000, sun(10, 40))],
                );
                assert_eq!(recovered(&sim), 1, "{case}");
                assert!(sim.open.is_empty());
            }
            "silent again" => {
                // Silent again past its new deadline and the grace.
                let later = sun(10, 40) + UPLOAD + 3 * MIN;
                sim.tick(later, std::slice::from_ref(&late));
                assert_eq!(recovered(&sim), 0, "{case}");
                assert_eq!(sim.open[0].clearing_since_ms, None, "{case}: starts over");
                assert_eq!(sim.open.len(), 1, "{case}");
            }
            _ => {
                // Uploads keep coming, their records an hour behind.
                let mut t = sun(10, 40);
                while t < sun(10, 40) + window {
                    t += TICK;
                    sim.tick(t, &[facts(t, t - HOUR)]);
                    if t < sun(10, 40) + window {
                        assert_eq!(recovered(&sim), 0, "{case} at {t}");
                    }
                }
                assert_eq!(recovered(&sim), 1, "{case}: told after the window");
                assert!(sim.open.is_empty());
            }
        }
    }
}
