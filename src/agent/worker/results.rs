//! What a link's worker does with results: counts every probe (metrics,
//! minute figures), keeps the per-target warnings, turns a round into
//! evidence (last clean round, first failed one) for the health machine and
//! the main loop, and acts on the traffic watch's readings.

use super::Worker;
use crate::agent::evidence::Mode;
use crate::agent::health::{Observation, Round};
use crate::agent::probe::{ProbeFailure, ProbeOutcome};
use crate::agent::status::{LinkLabels, ProbeLabels};
use crate::agent::traffic::{TrafficWatch, Verdict};
use std::time::Duration;
use tracing::{debug, warn};

/// At most one round a second asked for by traffic arriving on a down link.
const RECOVERY_PROBE_GAP: Duration = Duration::from_secs(1);

impl Worker {
    pub(super) fn count_probe(&mut self, spec_label: &str, kind: &str, o: &ProbeOutcome) {
        self.probe_bytes += o.bytes;
        self.minute.bytes += o.bytes;
        let labels = LinkLabels {
            link: self.plan.name.clone(),
            kind: self.plan.kind.to_string(),
        };
        self.env
            .shared
            .metrics
            .probe_bytes
            .get_or_create(&labels)
            .inc_by(o.bytes);
        self.env
            .shared
            .metrics
            .probes
            .get_or_create(&ProbeLabels {
                link: self.plan.name.clone(),
                probe: kind.to_string(),
                result: match &o.result {
                    Ok(_) => "ok".into(),
                    Err(f) => f.reason_word().into(),
                },
            })
            .inc();
        if let Ok(rtt) = o.result
            && (kind == "icmp" || kind == "tcp")
        {
            self.env
                .shared
                .metrics
                .rtt
                .get_or_create(&labels)
                .observe(rtt.as_secs_f64());
        }
        debug!(link = %self.plan.name, probe = spec_label, result = ?o.result, "probe");
    }

    pub(super) fn round_done(&mut self, round: Round, outcomes: Vec<(String, ProbeOutcome)>) {
        let mut warnings = vec![];
        let before = self.evidence_key();
        let round_clean = round.clean(self.plan.quorum);
        let now = self.env.clock.now();
        if round_clean {
            self.last_clean = Some(now);
            self.failing_since = None;
        } else if self.failing_since.is_none() {
            self.failing_since = Some(now);
        }
        if std::mem::take(&mut self.traffic_round)
            && let Some(w) = self.traffic.as_mut()
        {
            w.round_done(round_clean);
        }
        self.minute.sent += round.sent;
        self.minute.lost += round.sent.saturating_sub(round.answered);
        self.minute
            .rtts_ms
            .extend(round.rtts.iter().map(|d| d.as_secs_f64() * 1000.0));
        for (label, o) in &outcomes {
            let kind = label.split(' ').next().unwrap_or("probe").to_string();
            self.count_probe(label, &kind, o);
            let entry = self.target_fails.entry(label.clone()).or_insert((0, None));
            match &o.result {
                Ok(_) => *entry = (0, None),
                Err(f) => {
                    entry.0 += 1;
                    entry.1 = Some(f.clone());
                }
            }
        }
        // Warnings come from every target's last outcome, not only this
        // round's (a standby round probes one target at a time).
        for (label, (n, last)) in &self.target_fails {
            match last {
                Some(
                    f @ (ProbeFailure::Permission(_)
                    | ProbeFailure::NoSuchInterface
                    | ProbeFailure::Resolve(_)),
                ) => warnings.push(format!("{label}: {f}")),
                // A target that keeps failing while the link works.
                Some(_) if *n >= 10 && round_clean => warnings.push(format!(
                    "{label}: no answer for {n} probes in a row (the link itself works)"
                )),
                _ => {}
            }
        }
        warnings.sort();
        warnings.dedup();
        if warnings != self.warnings {
            for w in warnings.iter().filter(|w| !self.warnings.contains(w)) {
                warn!(link = %self.plan.name, "{w}");
            }
            self.warnings = warnings;
        }
        self.observe_from(before, Observation::Round(round));
    }

    /// Read the traffic counters and act on the verdict.
    pub(super) fn traffic_sample(&mut self, round_busy: bool, app_busy: bool) {
        let counters = match self.env.counters.read(&self.plan.name) {
            Ok(c) => c,
            Err(e) => {
                warn!(link = %self.plan.name,
                      "traffic is no evidence on this link ({e}): probing it every second instead");
                self.counters_ok = false;
                self.traffic = None;
                self.publish();
                return;
            }
        };
        let now = self.env.clock.now();
        let quiet = self.health.timeout();
        let probing = std::mem::take(&mut self.probed) || round_busy || app_busy;
        // A one-way stream asks for rounds at most this often; the slow
        // rounds go on meanwhile.
        let backoff_max = self.hcfg.interval_metered_active * 4;
        let watch = self
            .traffic
            .get_or_insert_with(|| TrafficWatch::new(backoff_max));
        match watch.sample(now, counters, quiet, probing) {
            Verdict::Alive => {
                let before = self.evidence_key();
                self.last_clean = Some(now);
                self.evidence_changed(before);
                // Packets arrive on a link that is down: it may be back.
                let quiet_since = self
                    .last_round
                    .is_none_or(|t| t.elapsed() >= RECOVERY_PROBE_GAP);
                if !self.health.state().is_online()
                    && !round_busy
                    && quiet_since
                    && self.pace().mode == Mode::Traffic
                {
                    debug!(link = %self.plan.name, "traffic arrives on a down link: probing now");
                    self.kick = true;
                }
            }
            // Unanswered traffic on a link already down tells nothing new.
            Verdict::Unanswered
                if !round_busy
                    && self.health.state().is_online()
                    && self.pace().mode == Mode::Traffic =>
            {
                debug!(link = %self.plan.name, "traffic unanswered: probing every target now");
                self.traffic_round = true;
                self.kick = true;
            }
            Verdict::Unanswered | Verdict::Waiting | Verdict::Idle => {}
        }
    }
}
