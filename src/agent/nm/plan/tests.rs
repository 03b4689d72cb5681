use super::*;
use proptest::prelude::*;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn bases(v: &[(&str, u32)]) -> HashMap<String, u32> {
    v.iter().map(|(n, m)| (n.to_string(), *m)).collect()
}

/// The effective metric of each planned link.
fn effective(
    plan: &BTreeMap<String, Option<u32>>,
    bases: &HashMap<String, u32>,
) -> Vec<(String, u32)> {
    plan.iter()
        .map(|(l, m)| (l.clone(), m.unwrap_or(bases[l])))
        .collect()
}

fn permutations(items: &[String]) -> Vec<Vec<String>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = vec![];
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

#[test]
fn a_laptop_with_a_dead_ethernet_upstream_moves_only_ethernet_behind_wifi() {
    let b = bases(&[("eth0", 100), ("wlan0", 600), ("wwan0", 700)]);
    let p = plan_family(&names(&["wlan0", "eth0", "wwan0"]), &b);
    assert_eq!(p["wlan0"], None);
    assert_eq!(p["eth0"], Some(601));
    assert_eq!(p["wwan0"], None);
    // Both fixed links dead: mobile first, the others behind it in the policy's order.
    let p = plan_family(&names(&["wwan0", "wlan0", "eth0"]), &b);
    assert_eq!(
        effective(&p, &b),
        vec![
            ("eth0".into(), 702),
            ("wlan0".into(), 701),
            ("wwan0".into(), 700)
        ]
    );
    // The natural order needs nothing.
    let p = plan_family(&names(&["eth0", "wlan0", "wwan0"]), &b);
    assert!(p.values().all(Option::is_none), "{p:?}");
}

#[test]
fn links_without_a_route_in_the_family_are_not_planned() {
    let b = bases(&[("eth0", 100)]);
    let p = plan_family(&names(&["wlan0", "eth0"]), &b);
    assert_eq!(p.len(), 1);
    assert_eq!(p["eth0"], None);
}

/// Every order of up to four links over metrics with ties, neighbours and the top of the
/// range: the planned metrics rise along the order, the first link is never moved, a link is
/// moved exactly when its own metric does not sort it after the link before it, and a moved
/// link sits right behind that link.
#[test]
fn every_order_over_every_metric_combination_rises_along_the_order() {
    let values = [0u32, 1, 100, 101, 600, u32::MAX - 1, u32::MAX];
    let links = names(&["a", "b", "c", "d"]);
    let mut checked = 0;
    for n in 1..=4usize {
        let set = &links[..n];
        // Every assignment of values to the n links.
        let mut idx = vec![0usize; n];
        loop {
            let b: HashMap<String, u32> = set
                .iter()
                .zip(&idx)
                .map(|(l, &i)| (l.clone(), values[i]))
                .collect();
            for order in permutations(set) {
                let p = plan_family(&order, &b);
                assert_eq!(p.len(), n);
                assert_eq!(p[&order[0]], None, "first link moved: {order:?} {b:?}");
                let mut prev: Option<u32> = None;
                for l in &order {
                    let eff = p[l].unwrap_or(b[l]);
                    match prev {
                        Some(pv) if b[l] <= pv => {
                            assert_eq!(p[l], Some(pv.saturating_add(1)), "{order:?} {b:?}");
                            if pv < u32::MAX {
                                assert!(eff > pv);
                            }
                        }
                        _ => assert_eq!(p[l], None, "{l} moved needlessly: {order:?} {b:?}"),
                    }
                    prev = Some(eff);
                }
                checked += 1;
            }
            // Next assignment.
            let mut k = 0;
            while k < n {
                idx[k] += 1;
                if idx[k] < values.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == n {
                break;
            }
        }
    }
    // 7 + 7² × 2 + 7³ × 6 + 7⁴ × 24 cases.
    assert_eq!(checked, 59_787);
}

#[test]
fn base_metric_takes_the_setting_or_the_route_without_the_penalty() {
    assert_eq!(base_metric(600, Some(20600)), Some(600));
    assert_eq!(base_metric(-1, Some(100)), Some(100));
    assert_eq!(base_metric(-1, Some(20100)), Some(100));
    assert_eq!(base_metric(-1, None), None);
    assert_eq!(base_metric(600, None), None);
    assert_eq!(base_metric(0, Some(0)), Some(0));
    assert_eq!(base_metric(i64::MAX, Some(1)), Some(u32::MAX));
}

fn obs(link: &str, setting: i64, route: Option<u32>) -> Observed {
    Observed {
        link: link.into(),
        uuid: format!("uuid-{link}"),
        id: format!("lw-{link}"),
        setting_v4: setting,
        setting_v6: setting,
        route_v4: route,
        route_v6: route,
    }
}

#[test]
fn reconcile_demotes_then_keeps_then_puts_back_exactly() {
    let order_cut = names(&["wl0", "bb0", "mb0"]);
    let order_ok = names(&["bb0", "wl0", "mb0"]);
    let laptop = vec![
        obs("bb0", -1, Some(100)),
        obs("wl0", 600, Some(600)),
        obs("mb0", 700, Some(700)),
    ];
    // All well: nothing to do.
    let p = reconcile(&order_ok, true, &laptop, &Changes::new());
    assert!(p.steps.is_empty() && p.changes.is_empty(), "{p:?}");

    // bb0's upstream is cut: bb0 behind wl0, in both families.
    let p = reconcile(&order_cut, true, &laptop, &Changes::new());
    let fc = FamilyChange {
        original: -1,
        base: 100,
        ours: 601,
        was: None,
    };
    let change = Change {
        uuid: "uuid-bb0".into(),
        v4: Some(fc),
        v6: Some(fc),
    };
    assert_eq!(
        p.steps,
        vec![Step {
            link: "bb0".into(),
            uuid: "uuid-bb0".into(),
            v4: Some(601),
            v6: Some(601),
            after: Some(change.clone()),
        }]
    );
    assert_eq!(p.changes.get("bb0"), Some(&change));

    // Applied; NetworkManager has since penalised bb0 too (its check failed): nothing more.
    let demoted = vec![
        obs("bb0", 601, Some(20601)),
        obs("wl0", 600, Some(600)),
        obs("mb0", 700, Some(700)),
    ];
    let again = reconcile(&order_cut, true, &demoted, &p.changes);
    assert!(again.steps.is_empty(), "{again:?}");
    assert_eq!(again.changes, p.changes);

    // NetworkManager re-activated bb0 (carrier came back): its metric is the profile's
    // again, and the policy still wants it behind wl0.
    let reset = reconcile(&order_cut, true, &laptop, &p.changes);
    assert_eq!(reset.steps.len(), 1);
    assert_eq!(reset.steps[0].v4, Some(601));
    assert_eq!(reset.changes, p.changes);

    // Fail-back: exactly the original setting (-1) again, and nothing remembered.
    let back = reconcile(&order_ok, true, &demoted, &p.changes);
    assert_eq!(back.steps.len(), 1);
    assert_eq!((back.steps[0].v4, back.steps[0].v6), (Some(-1), Some(-1)));
    assert_eq!(back.steps[0].after, None);
    assert!(back.changes.is_empty());

    // No link online: every change undone.
    let none = reconcile(&order_cut, false, &demoted, &p.changes);
    assert_eq!(none.steps.len(), 1);
    assert_eq!(none.steps[0].v4, Some(-1));
    assert!(none.changes.is_empty());
}

#[test]
fn a_change_made_by_someone_else_is_taken_as_the_new_original() {
    let earlier: Changes = [(
        "bb0".to_string(),
        Change {
            uuid: "uuid-bb0".into(),
            v4: Some(FamilyChange {
                original: -1,
                base: 100,
                ours: 601,
                was: None,
            }),
            v6: None,
        },
    )]
    .into();
    // The officer ran `nmcli device modify bb0 ipv4.route-metric 50` meanwhile.
    let now = vec![obs("bb0", 50, Some(50)), obs("wl0", 600, Some(600))];
    let p = reconcile(&names(&["bb0", "wl0"]), true, &now, &earlier);
    assert!(p.steps.is_empty(), "{p:?}");
    assert!(p.changes.is_empty());
    // And restoring never touches it.
    assert!(restore(&now, &earlier).steps.is_empty());
    // Another connection on the device: the old change is forgotten too.
    let mut other = obs("bb0", 601, Some(601));
    other.uuid = "another".into();
    assert!(restore(&[other], &earlier).steps.is_empty());
}

#[test]
fn restore_undoes_only_what_still_holds() {
    let fc = FamilyChange {
        original: -1,
        base: 100,
        ours: 601,
        was: None,
    };
    let earlier: Changes = [
        (
            "bb0".to_string(),
            Change {
                uuid: "uuid-bb0".into(),
                v4: Some(fc),
                v6: Some(fc),
            },
        ),
        (
            "gone0".to_string(),
            Change {
                uuid: "uuid-gone0".into(),
                v4: Some(fc),
                v6: None,
            },
        ),
    ]
    .into();
    let mut bb0 = obs("bb0", 601, Some(601));
    bb0.setting_v6 = -1; // IPv6 already back (someone else, or NetworkManager)
    let p = restore(&[bb0, obs("wl0", 600, Some(600))], &earlier);
    assert_eq!(
        p.steps,
        vec![Step {
            link: "bb0".into(),
            uuid: "uuid-bb0".into(),
            v4: Some(-1),
            v6: None,
            after: None,
        }]
    );
    assert!(p.changes.is_empty());
}

/// A simulated NetworkManager: each link's profile setting, its applied setting (per family
/// the same here) and the metric NetworkManager uses for `-1`.
#[derive(Debug, Clone)]
struct Sim {
    links: Vec<(String, i64, i64, u32)>,
}

impl Sim {
    fn observed(&self, penalty: &[bool]) -> Vec<Observed> {
        self.links
            .iter()
            .enumerate()
            .map(|(i, (l, _profile, applied, default))| {
                let eff = if *applied >= 0 {
                    *applied as u32
                } else {
                    *default
                };
                let route = eff + if penalty[i] { CONNECTIVITY_PENALTY } else { 0 };
                obs(l, *applied, Some(route))
            })
            .collect()
    }
    fn apply(&mut self, steps: &[Step]) {
        for s in steps {
            let l = self.links.iter_mut().find(|l| l.0 == s.link).unwrap();
            assert_eq!(s.v4, s.v6, "families planned alike here");
            if let Some(v) = s.v4 {
                l.2 = v;
            }
        }
    }
    fn effective(&self, link: &str) -> u32 {
        let l = self.links.iter().find(|l| l.0 == link).unwrap();
        if l.2 >= 0 { l.2 as u32 } else { l.3 }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Order(Vec<usize>, bool, Vec<bool>),
    Reactivate(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            Just(vec![0usize, 1, 2]).prop_shuffle(),
            any::<bool>(),
            proptest::collection::vec(any::<bool>(), 3)
        )
            .prop_map(|(o, c, p)| Op::Order(o, c, p)),
        1 => (0usize..3).prop_map(Op::Reactivate),
    ]
}

proptest! {
    /// Any sequence of policy orders, NetworkManager penalties and re-activations: after each
    /// order the effective metrics rise along it (when a link is chosen), and a final restore
    /// leaves every applied setting exactly as the profile has it.
    #[test]
    fn any_history_follows_the_order_and_restores_exactly(
        profiles in proptest::collection::vec(prop_oneof![Just(-1i64), 0i64..2000], 3),
        defaults in proptest::collection::vec(0u32..1000, 3),
        ops in proptest::collection::vec(op(), 1..30),
    ) {
        let names = ["bb0", "wl0", "mb0"];
        let mut sim = Sim {
            links: (0..3).map(|i| (names[i].to_string(), profiles[i], profiles[i], defaults[i])).collect(),
        };
        let mut changes = Changes::new();
        let mut penalty = vec![false; 3];
        for op in ops {
            match op {
                Op::Order(idx, chosen, pen) => {
                    penalty = pen;
                    let order: Vec<String> = idx.iter().map(|&i| names[i].to_string()).collect();
                    let plan = reconcile(&order, chosen, &sim.observed(&penalty), &changes);
                    sim.apply(&plan.steps);
                    changes = plan.changes;
                    // Nothing left to do right after.
                    let again = reconcile(&order, chosen, &sim.observed(&penalty), &changes);
                    prop_assert!(again.steps.is_empty(), "{:?}", again);
                    if chosen {
                        for w in order.windows(2) {
                            prop_assert!(sim.effective(&w[0]) < sim.effective(&w[1]),
                                "{:?} not rising: {:?}", order, sim);
                        }
                    } else {
                        for l in &sim.links {
                            prop_assert_eq!(l.2, l.1);
                        }
                    }
                }
                Op::Reactivate(i) => {
                    sim.links[i].2 = sim.links[i].1;
                }
            }
        }
        let plan = restore(&sim.observed(&penalty), &changes);
        sim.apply(&plan.steps);
        for l in &sim.links {
            prop_assert_eq!(l.2, l.1, "{:?}", sim);
        }
    }
}

#[test]
fn what_is_written_down_first_covers_a_crash_before_the_reapply() {
    let fc = |ours, was| FamilyChange {
        original: -1,
        base: 100,
        ours,
        was,
    };
    let before: Changes = [(
        "bb0".to_string(),
        Change {
            uuid: "uuid-bb0".into(),
            v4: Some(fc(601, None)),
            v6: Some(fc(601, None)),
        },
    )]
    .into();
    // bb0 moves from 601 to 702 (IPv4 only), wl0 is newly moved, mb0 is put back.
    let steps = vec![
        Step {
            link: "bb0".into(),
            uuid: "uuid-bb0".into(),
            v4: Some(702),
            v6: None,
            after: Some(Change {
                uuid: "uuid-bb0".into(),
                v4: Some(fc(702, None)),
                v6: Some(fc(601, None)),
            }),
        },
        Step {
            link: "wl0".into(),
            uuid: "uuid-wl0".into(),
            v4: Some(701),
            v6: None,
            after: Some(Change {
                uuid: "uuid-wl0".into(),
                v4: Some(FamilyChange {
                    original: 600,
                    base: 600,
                    ours: 701,
                    was: None,
                }),
                v6: None,
            }),
        },
    ];
    let p = pending(&before, &steps);
    assert_eq!(p["bb0"].v4, Some(fc(702, Some(601))));
    assert_eq!(p["bb0"].v6, Some(fc(601, None)));
    assert_eq!(p["wl0"].v4.unwrap().ours, 701);
    // Whether the crash came before or after NetworkManager applied bb0's step, a restore
    // from what was written down puts -1 back.
    for setting in [601, 702] {
        let r = restore(&[obs("bb0", setting, Some(setting as u32))], &p);
        assert_eq!(r.steps.len(), 1, "{setting}");
        assert_eq!(r.steps[0].v4, Some(-1));
    }
    // A step that undoes keeps its entry until done.
    let undo = Step {
        link: "bb0".into(),
        uuid: "uuid-bb0".into(),
        v4: Some(-1),
        v6: Some(-1),
        after: None,
    };
    assert_eq!(pending(&before, &[undo]), before);
}
