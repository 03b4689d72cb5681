//! `linkwatch check`: run every probe once on every link and tell what worked,
//! what failed and why. The IT staff's troubleshooting tool; it does not need a
//! running agent.

use crate::agent::probe::{ProbeOutcome, Prober};
use crate::config::agent::{LinkPlan, ProbeRole};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub probe: String,
    pub role: &'static str,
    pub ok: bool,
    pub rtt_ms: Option<f64>,
    pub error: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LinkReport {
    pub name: String,
    pub kind: String,
    pub priority: u32,
    pub present: bool,
    pub carrier: bool,
    /// Reachability targets answered / probed, and the quorum.
    pub answered: u32,
    pub probed: u32,
    pub quorum: u32,
    /// Reaches the internet (quorum met).
    pub reachable: bool,
    /// Application checks that failed (the link would be `degraded`).
    pub degraded_by: Vec<String>,
    pub probes: Vec<ProbeReport>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub online: bool,
    pub links: Vec<LinkReport>,
}

fn sys_flag(sys: &Path, name: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(sys.join(name).join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

fn report(spec_label: String, role: ProbeRole, o: &ProbeOutcome) -> ProbeReport {
    ProbeReport {
        probe: spec_label,
        role: match role {
            ProbeRole::Reach => "reach",
            ProbeRole::App => "app",
        },
        ok: o.is_ok(),
        rtt_ms: o
            .result
            .as_ref()
            .ok()
            .map(|d| (d.as_secs_f64() * 100_000.0).round() / 100.0),
        error: o.result.as_ref().err().map(|e| e.to_string()),
        reason: o.result.as_ref().err().map(|e| e.reason_word().to_string()),
    }
}

/// Probe one link with all its probes at once.
pub async fn check_link(
    prober: &dyn Prober,
    plan: &LinkPlan,
    sys: &Path,
    timeout: Duration,
) -> LinkReport {
    let present = sys.join(&plan.name).exists();
    let carrier = present
        && (sys_flag(sys, &plan.name, "carrier").as_deref() == Some("1")
            || sys_flag(sys, &plan.name, "operstate").as_deref() == Some("up"));
    let futs = plan.probes.iter().map(|spec| async move {
        let o = prober.probe(&plan.name, spec, timeout).await;
        (spec.role(), report(spec.label(), spec.role(), &o))
    });
    let results: Vec<(ProbeRole, ProbeReport)> = futures::future::join_all(futs).await;
    let probed = results
        .iter()
        .filter(|(r, _)| *r == ProbeRole::Reach)
        .count() as u32;
    let answered = results
        .iter()
        .filter(|(r, p)| *r == ProbeRole::Reach && p.ok)
        .count() as u32;
    let reachable = present && answered >= plan.quorum.min(probed).max(1);
    let degraded_by = results
        .iter()
        .filter(|(r, p)| *r == ProbeRole::App && !p.ok)
        .map(|(_, p)| format!("{} ({})", p.probe, p.reason.as_deref().unwrap_or("failed")))
        .collect();
    LinkReport {
        name: plan.name.clone(),
        kind: plan.kind.to_string(),
        priority: plan.priority,
        present,
        carrier,
        answered,
        probed,
        quorum: plan.quorum,
        reachable,
        degraded_by,
        probes: results.into_iter().map(|(_, p)| p).collect(),
    }
}

/// Probe every link.
pub async fn check_all(
    prober: &dyn Prober,
    plans: &[LinkPlan],
    sys: &Path,
    timeout: Duration,
) -> CheckReport {
    let links =
        futures::future::join_all(plans.iter().map(|p| check_link(prober, p, sys, timeout))).await;
    CheckReport {
        online: links.iter().any(|l| l.reachable),
        links,
    }
}

/// Human-readable rendering of a report.
pub fn render(r: &CheckReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if r.links.is_empty() {
        s.push_str("no links to check: declare [[link]] entries or enable [discovery]\n");
    }
    for l in &r.links {
        let _ = writeln!(
            s,
            "{} ({}, priority {}): {}",
            l.name,
            l.kind,
            l.priority,
            if !l.present {
                "interface does not exist"
            } else if !l.carrier {
                "NO CARRIER"
            } else {
                "carrier up"
            }
        );
        for p in &l.probes {
            let what = match (&p.rtt_ms, &p.error) {
                (Some(ms), _) => format!("{ms:.2} ms"),
                (None, Some(e)) => e.clone(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {:<4} {:<5} {:<48} {}",
                if p.ok { "ok" } else { "FAIL" },
                p.role,
                p.probe,
                what
            );
        }
        let verdict = if l.reachable {
            if l.degraded_by.is_empty() {
                "UP".to_string()
            } else {
                format!("DEGRADED: {}", l.degraded_by.join(", "))
            }
        } else {
            "DOWN".to_string()
        };
        let _ = writeln!(
            s,
            "  => {verdict} ({}/{} reachability targets answered, quorum {})",
            l.answered, l.probed, l.quorum
        );
    }
    let _ = writeln!(
        s,
        "device: {}",
        if r.online {
            "ONLINE"
        } else {
            "OFFLINE (no link reaches the internet)"
        }
    );
    s
}
