//! Late-data annotation: the backlog of a silent device, read by the
//! uptime engine, says what happened; the recovery notice says it.

use super::*;
use crate::collector::alerts::annotate::{Happened, annotate};
use crate::collector::alerts::message::Templates;
use crate::collector::uptime::{Params, Rec};
use crate::wire::v1::{Body, LifecycleEvent, LinkFact};
use crate::wire::{LinkKind, LinkState};

/// Records of one device; monotonic time follows the wall clock per boot.
struct Recs {
    seq: u64,
    boot: String,
    t0: i64,
    v: Vec<Rec>,
}

impl Recs {
    fn new() -> Recs {
        Recs {
            seq: 0,
            boot: String::new(),
            t0: 0,
            v: Vec::new(),
        }
    }
    fn push(&mut self, t: i64, body: Body) -> &mut Self {
        self.seq += 1;
        self.v.push(Rec {
            seq: self.seq,
            seq_end: self.seq,
            at_ms: t,
            mono_ms: (t - self.t0) as u64,
            boot_id: self.boot.clone(),
            body,
        });
        self
    }
    fn boot(&mut self, id: &str, t: i64) -> &mut Self {
        self.boot = id.into();
        self.t0 = t - 30_000;
        self.push(
            t,
            Body::Lifecycle {
                event: LifecycleEvent::Start,
                boot_time: None,
                detail: None,
            },
        );
        let links = [("eth0", LinkKind::Broadband), ("wwan0", LinkKind::Mobile)]
            .map(|(n, k)| LinkFact {
                name: n.into(),
                kind: k,
                metered: k == LinkKind::Mobile,
                priority: 1,
            })
            .to_vec();
        self.push(
            t,
            Body::Facts {
                hostname: "laptop-1".into(),
                os: "Debian".into(),
                agent_version: "0.1.0".into(),
                links,
            },
        )
    }
    fn link(&mut self, t: i64, name: &str, from: LinkState, to: LinkState) -> &mut Self {
        let kind = if name == "eth0" {
            LinkKind::Broadband
        } else {
            LinkKind::Mobile
        };
        self.push(
            t,
            Body::LinkState {
                link: name.into(),
                kind,
                from,
                to,
                reason: None,
            },
        )
    }
    fn hbs(&mut self, from: i64, to: i64, online: bool) -> &mut Self {
        let mut t = from + MIN;
        while t <= to {
            self.push(t, Body::Heartbeat { online, count: 1 });
            t += MIN;
        }
        self
    }
    fn stop(&mut self, t: i64) -> &mut Self {
        self.push(
            t,
            Body::Lifecycle {
                event: LifecycleEvent::Stop,
                boot_time: None,
                detail: Some("clean stop".into()),
            },
        )
    }
    /// Booted at 08:30 with both links up, online until `t`.
    fn online_until(t: i64) -> Recs {
        let mut r = Recs::new();
        r.boot("b1", sun(8, 30))
            .link(sun(8, 30) + 5_000, "eth0", LinkState::Down, LinkState::Up)
            .link(sun(8, 30) + 6_000, "wwan0", LinkState::Down, LinkState::Up)
            .hbs(sun(8, 30), t, true);
        r
    }
}

fn tz() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Dhaka").unwrap()
}

#[test]
fn all_links_down_from_to_with_the_links() {
    let mut r = Recs::online_until(sun(10, 2));
    r.link(sun(10, 2) + 1_000, "eth0", LinkState::Up, LinkState::Down)
        .link(sun(10, 2) + 2_000, "wwan0", LinkState::Up, LinkState::Down)
        .hbs(sun(10, 2), sun(10, 47), false)
        .link(sun(10, 47) + 1_000, "eth0", LinkState::Down, LinkState::Up)
        .hbs(sun(10, 47), sun(10, 50), true);
    let a = annotate(
        &r.v,
        sun(10, 0),
        sun(10, 50),
        sun(10, 50),
        &Params::default(),
    );
    assert_eq!(a.spans.len(), 1, "{a:?}");
    let s = &a.spans[0];
    assert_eq!(s.what, Happened::AllLinksDown);
    assert_eq!(
        (s.start_ms, s.end_ms),
        (sun(10, 2) + 2_000, sun(10, 47) + 1_000)
    );
    assert_eq!(s.links, ["eth0", "wwan0"]);
    let en = crate::collector::alerts::message::happened(&a, sun(10, 50), &tz(), Language::En);
    assert_eq!(en, "all links down from 10:02 to 10:47 (eth0, wwan0)");
    let bn = crate::collector::alerts::message::happened(&a, sun(10, 50), &tz(), Language::Bn);
    assert_eq!(bn, "১০:০২ থেকে ১০:৪৭ পর্যন্ত সব লিংক বন্ধ (eth0, wwan0)");
}

#[test]
fn powered_off_and_agent_stopped() {
    // Power cut at 10:02 (no stop record), booted again at 10:40.
    let mut r = Recs::online_until(sun(10, 2));
    r.boot("b2", sun(10, 40))
        .link(sun(10, 40) + 5_000, "eth0", LinkState::Down, LinkState::Up)
        .hbs(sun(10, 40), sun(10, 45), true);
    let a = annotate(
        &r.v,
        sun(10, 0),
        sun(10, 45),
        sun(10, 45),
        &Params::default(),
    );
    let what: Vec<Happened> = a.spans.iter().map(|s| s.what).collect();
    // The five seconds offline after boot are left out.
    assert_eq!(what, vec![Happened::PoweredOff], "{a:?}");
    assert_eq!(a.spans[0].start_ms, sun(10, 2));
    assert_eq!(a.spans[0].end_ms, sun(10, 40));
    // A clean stop instead.
    let mut r = Recs::online_until(sun(10, 2));
    r.stop(sun(10, 2) + 10_000)
        .boot("b2", sun(10, 40))
        .link(sun(10, 40) + 5_000, "eth0", LinkState::Down, LinkState::Up)
        .hbs(sun(10, 40), sun(10, 45), true);
    let a = annotate(
        &r.v,
        sun(10, 0),
        sun(10, 45),
        sun(10, 45),
        &Params::default(),
    );
    assert_eq!(
        a.spans.iter().map(|s| s.what).collect::<Vec<_>>(),
        vec![Happened::AgentStopped]
    );
    let en = crate::collector::alerts::message::happened(&a, sun(10, 45), &tz(), Language::En);
    assert_eq!(en, "agent stopped from 10:02 to 10:40");
    // Online all along: the uploads failed, not the links.
    let r = Recs::online_until(sun(10, 50));
    let a = annotate(
        &r.v,
        sun(10, 0),
        sun(10, 50),
        sun(10, 50),
        &Params::default(),
    );
    assert!(a.is_empty(), "{a:?}");
    let en = crate::collector::alerts::message::happened(&a, sun(10, 50), &tz(), Language::En);
    assert!(en.contains("uploads failed"), "{en}");
}

#[test]
fn the_recovery_notice_carries_the_annotation() {
    let mut sim = Sim::new(unreachable_only());
    let dev = Dev::new("laptop-1", "keraniganj").outage(sun(10, 1), sun(10, 48));
    sim.run(sun(9, 0), sun(10, 48), std::slice::from_ref(&dev));
    assert_eq!(sim.open.len(), 1);
    // At 10:48 the backlog arrives: the evaluator asks for its annotation.
    let facts = vec![dev.facts(sun(10, 48))];
    let input = Input {
        now_ms: sun(10, 48),
        devices: &facts,
        open: &sim.open,
        silences: &[],
        annotations: &BTreeMap::new(),
    };
    let req = annotation_requests(&sim.ctx, &input);
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].device, "laptop-1");
    assert_eq!((req[0].from_ms, req[0].to_ms), (sun(10, 0), sun(10, 48)));
    let mut r = Recs::online_until(sun(10, 2));
    r.link(sun(10, 2) + 1_000, "eth0", LinkState::Up, LinkState::Down)
        .link(sun(10, 2) + 2_000, "wwan0", LinkState::Up, LinkState::Down)
        .hbs(sun(10, 2), sun(10, 47), false)
        .link(sun(10, 47) + 1_000, "eth0", LinkState::Down, LinkState::Up)
        .hbs(sun(10, 47), sun(10, 48), true);
    let a = annotate(
        &r.v,
        req[0].from_ms,
        req[0].to_ms,
        sun(10, 48),
        &Params::default(),
    );
    sim.annotations.insert("laptop-1".into(), a.clone());
    sim.tick(sun(10, 48), &facts);
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].n.view.annotation.as_ref(), Some(&a));
    assert_eq!(sim.resolved.last().unwrap().annotation.as_ref(), Some(&a));
    let office = &offices()[2];
    let t = Templates::default().render(
        Language::En,
        Event::Recovered,
        &rec[0].n.view,
        Some(office),
        &tz(),
        None,
    );
    assert_eq!(
        t.text,
        "Resolved: Unreachable: laptop-1, Keraniganj office keraniganj, Keraniganj, Dhaka\n\
         From 10:00 to 10:48 (48 min).\n\
         What happened: all links down from 10:02 to 10:47 (eth0, wwan0)"
    );
    let t = Templates::default().render(
        Language::Bn,
        Event::Recovered,
        &rec[0].n.view,
        Some(office),
        &tz(),
        None,
    );
    assert_eq!(
        t.text,
        "সমাধান হয়েছে — যোগাযোগ বিচ্ছিন্ন: laptop-1, Keraniganj office keraniganj, Keraniganj, Dhaka\n\
         ১০:০০ থেকে ১০:৪৮ পর্যন্ত (৪৮ মিনিট)।\n\
         যা ঘটেছিল: ১০:০২ থেকে ১০:৪৭ পর্যন্ত সব লিংক বন্ধ (eth0, wwan0)"
    );
}
