//! The agent's main loop: waits on the host's events, the workers' notes,
//! the local listener's requests, signals and its own timers (heartbeat,
//! the periodic resync, hold-down rechecks, the moment `online` may lapse,
//! the systemd watchdog), reacts, and stops cleanly.

use super::state::Agent;
use crate::agent::report::Reporting;
use crate::agent::status::Control;
use crate::agent::worker::LinkMsg;
use crate::wire::v1::{Body, LifecycleEvent};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// What the daemon's edge tells the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Read the configuration (and the upload token) again (SIGHUP).
    Reload,
    /// Stop cleanly; the name of the signal, for the log.
    Stop(&'static str),
}

/// The loop's inputs from outside the host: the local listener's requests
/// and the signals.
pub(crate) struct Inputs {
    pub(crate) control: mpsc::UnboundedReceiver<Control>,
    pub(crate) signals: mpsc::UnboundedReceiver<Signal>,
}

/// The agent's one-line state for `systemctl status`.
fn sd_status_line(agent: &Agent, recording: bool) -> String {
    let snap = agent.shared.snapshot();
    format!(
        "{}, {} links, route {}{}",
        if snap.online { "online" } else { "offline" },
        snap.links.len(),
        agent.chosen.as_deref().unwrap_or("none"),
        if recording { "" } else { ", NOT RECORDING" }
    )
}

impl Agent {
    /// The once-a-minute heartbeat (and the wall-clock step check).
    fn heartbeat(&mut self) {
        if !self.recorder.is_enabled() {
            return;
        }
        self.refresh_online();
        let stamp = self.recorder.stamp().clone();
        let (wall, mono) = stamp.now_pair();
        if let Some(step) = self.clock_watch.check(wall, mono) {
            warn!(step_ms = step, "the wall clock stepped");
            self.recorder.record(Body::Lifecycle {
                event: LifecycleEvent::ClockStep,
                boot_time: Some(stamp.boot_time()),
                detail: Some(format!("wall clock moved by {step} ms")),
            });
        }
        self.recorder.record(Body::Heartbeat {
            online: self.online,
            count: 1,
        });
    }

    /// Run until a stop signal (or until the signals' sender is gone), then
    /// stop the workers, the record and the routes cleanly.
    pub(crate) async fn run_loop(&mut self, mut inputs: Inputs, mut reporting: Option<Reporting>) {
        let mut heartbeat = tokio::time::interval(self.cfg.upload.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Under systemd: ready now, then watchdog pings from this loop (a stuck
        // loop gets the service restarted) and the state as its status line.
        let mut watchdog = crate::shared::sd::watchdog_interval().map(tokio::time::interval);
        let mut sd_status = sd_status_line(self, reporting.is_some());
        crate::shared::sd::ready(&sd_status);
        loop {
            let recheck = self.recheck;
            let online_check = self.online_check;
            tokio::select! {
                Some(ev) = self.events_rx.recv() => {
                    let routes_event = matches!(
                        ev,
                        crate::agent::netlink::LinkEvent::RoutesChanged
                            | crate::agent::netlink::LinkEvent::Changed { .. }
                    );
                    self.on_event(ev).await;
                    if routes_event {
                        self.sync_routes().await;
                        if let Some(nm) = &self.nm {
                            nm.poke();
                        }
                    }
                }
                Some(n) = self.notes_rx.recv() => {
                    // Several links may change at once: take them all, decide once.
                    let wants = self.on_note(n) | self.drain_notes();
                    if wants {
                        self.decide().await;
                    } else {
                        // New facts only: `online` may have changed all the same.
                        self.refresh_online();
                    }
                }
                _ = heartbeat.tick() => self.heartbeat(),
                Some(c) = inputs.control.recv() => {
                    if self.on_control(c) {
                        self.decide().await;
                    }
                }
                _ = tokio::time::sleep_until(recheck.unwrap_or_else(tokio::time::Instant::now)), if recheck.is_some() => {
                    self.recheck = None;
                    self.decide().await;
                }
                _ = tokio::time::sleep_until(online_check.unwrap_or_else(tokio::time::Instant::now)), if online_check.is_some() => {
                    self.online_check = None;
                    self.refresh_online();
                }
                _ = tick.tick() => {
                    if let Some(r) = &reporting {
                        let st = r.status().await;
                        let m = &self.shared.metrics;
                        m.spool_depth.set(st.depth as i64);
                        m.spool_oldest.set(st.oldest_unsent_age_s.unwrap_or(0) as i64);
                        m.upload_bytes.set(st.upload_bytes as i64);
                        *self.shared.record.write().unwrap_or_else(|e| e.into_inner()) = st;
                    }
                    self.resync().await;
                    self.decide().await;
                    self.sync_routes().await;
                    let line = sd_status_line(self, reporting.is_some());
                    if line != sd_status {
                        crate::shared::sd::status(&line);
                        sd_status = line;
                    }
                }
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                    crate::shared::sd::watchdog();
                }
                s = inputs.signals.recv() => match s {
                    Some(Signal::Reload) => {
                        self.reload();
                        if let Some(r) = &reporting {
                            match r.reload_token() {
                                Ok(()) => info!("upload token file read again"),
                                Err(e) => error!("keeping the old upload token: {e}"),
                            }
                        }
                        self.decide().await;
                    }
                    Some(Signal::Stop(name)) => { info!("{name}: stopping"); break; }
                    None => { info!("no more signals: stopping"); break; }
                },
            }
            if std::mem::take(&mut self.back)
                && let Some(r) = &reporting
            {
                r.link_back();
            }
        }
        self.stop(reporting.take()).await;
    }

    /// Stop the workers, hand the record over, give NetworkManager and the
    /// routing table back.
    async fn stop(&mut self, reporting: Option<Reporting>) {
        crate::shared::sd::stopping();
        for w in self.workers.values() {
            let _ = w.tx.send(LinkMsg::Stop);
        }
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        if let Some(r) = reporting {
            // Let the workers hand over their last minute first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            r.stop(Duration::from_secs(3)).await;
        }
        if let Some(nm) = self.nm.take() {
            nm.stop(Duration::from_secs(5)).await;
        }
        if self.routes_mode() && !self.cfg.failover.dry_run {
            match self.host.remove_own_routes().await {
                Ok(n) => info!(
                    routes = n,
                    "own default routes removed: the routing table is as the system set it"
                ),
                Err(e) => error!("cannot remove own routes on stop: {e}"),
            }
        }
    }
}
