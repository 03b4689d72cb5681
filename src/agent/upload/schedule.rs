//! When the uploader sends: the upload loop ([`Uploader::run`]: every
//! interval, at once when a link comes back, soon after an urgent record),
//! back-off with full jitter after failures, and holding the backlog back
//! while only metered links are online.

use super::{BACKOFF_BASE, UploadError, Uploader};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

impl Uploader {
    /// Full-jitter exponential back-off after `failures` consecutive failures.
    fn backoff(&self, failures: u32) -> Duration {
        let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let cap = exp.min(self.backoff_max);
        let ms = rand::rng().random_range(0..=cap.as_millis() as u64);
        Duration::from_millis(ms.max(100))
    }

    /// How long to wait after a failed drain, and whether a `wake` may cut
    /// the wait short (not when the collector said how long, nor for a
    /// token problem).
    fn after_failure(&self, e: &UploadError, failures: u32) -> (Duration, bool) {
        match e {
            UploadError::Rejected {
                status: 401 | 403,
                message,
                ..
            } => {
                let hint = if message.contains("belongs to device") {
                    "the token belongs to another device name"
                } else {
                    "check upload.token_file (after replacing it, send SIGHUP), or whether the \
                     device was revoked (`linkwatch device rotate NAME` issues a new token)"
                };
                tracing::error!(
                    "the collector refused this device's token ({hint}); next try in {}: {message}",
                    humantime::format_duration(self.backoff_max)
                );
                (self.backoff_max, false)
            }
            UploadError::Rejected {
                retry_after: Some(after),
                ..
            } => (*after, false),
            UploadError::Rejected { status: 400, .. } => {
                tracing::error!("{e} (nothing is deleted; retrying later)");
                (self.backoff(failures), true)
            }
            _ => (self.backoff(failures), true),
        }
    }

    /// Drain every `upload_interval`, at once when `wake` is notified (a
    /// link came back), with back-off on failure; return when `stop` is
    /// notified (a drain in progress is abandoned: what was not
    /// acknowledged stays spooled). When `only_metered()` says the only
    /// online links are metered and `hold_backlog_on_metered` is set,
    /// nothing is sent while the spool holds `metered_backlog_threshold`
    /// records or more.
    ///
    /// Signal `stop` and `wake` with `notify_one` (a permit is kept if the
    /// task is busy or not started yet); `notify_waiters` works too once
    /// `run` has started.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        stop: Arc<Notify>,
        only_metered: Arc<dyn Fn() -> bool + Send + Sync>,
    ) {
        let stopped = stop.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        let Some(net) = self.net.clone() else {
            stopped.await;
            return;
        };
        let mut retoken = Box::pin(net.token_reloaded.notified());
        retoken.as_mut().enable();
        let mut woken = Box::pin(wake.notified());
        woken.as_mut().enable();
        let urgent_notify = self.urgent.clone();
        let mut urgent = Box::pin(urgent_notify.notified());
        urgent.as_mut().enable();
        let mut failures: u32 = 0;
        let mut last_logged: Option<String> = None;
        loop {
            let (wait, wake_cuts) = if self.hold_for_metered(only_metered.as_ref()).await {
                (self.upload_interval, true)
            } else {
                let result = tokio::select! {
                    _ = &mut stopped => return,
                    r = self.drain() => r,
                };
                match result {
                    Ok(report) => {
                        if failures > 0 {
                            tracing::info!(
                                "uploads resumed after {failures} failed attempts \
                                 ({} records in {} batches)",
                                report.records,
                                report.batches
                            );
                        }
                        failures = 0;
                        last_logged = None;
                        (self.upload_interval, true)
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let (wait, cuts) = self.after_failure(&e, failures);
                        let msg = e.to_string();
                        if last_logged.as_deref() != Some(msg.as_str())
                            || failures.is_multiple_of(10)
                        {
                            tracing::warn!(
                                "upload failed ({failures} in a row), next try in {}: {msg}",
                                humantime::format_duration(Duration::from_millis(
                                    wait.as_millis() as u64
                                ))
                            );
                            last_logged = Some(msg);
                        }
                        (wait, cuts)
                    }
                }
            };
            // Wait for the interval (or back-off), a link coming back, or,
            // while uploads succeed, an urgent record (then `urgent_delay`).
            let mut deadline = Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = woken.as_mut(), if wake_cuts => {
                        // A link came back: start the back-off afresh.
                        failures = 0;
                        break;
                    }
                    _ = retoken.as_mut() => {
                        // The token file was read again (SIGHUP): try it now.
                        failures = 0;
                        retoken.set(net.token_reloaded.notified());
                        retoken.as_mut().enable();
                        break;
                    }
                    _ = urgent.as_mut(), if failures == 0 => {
                        deadline = deadline.min(Instant::now() + self.urgent_delay);
                        urgent.set(self.urgent.notified());
                        urgent.as_mut().enable();
                    }
                }
            }
            // Re-arm: a wake from now on (also during the coming drain)
            // cuts the next wait short.
            woken.set(wake.notified());
            woken.as_mut().enable();
            // The coming drain sends every urgent record written so far.
            urgent.set(urgent_notify.notified());
            urgent.as_mut().enable();
        }
    }

    /// Hold the backlog back? (metered-only links and a large spool)
    async fn hold_for_metered(&self, only_metered: &(dyn Fn() -> bool + Send + Sync)) -> bool {
        let hold = self.hold_backlog_on_metered
            && only_metered()
            && match self.spool.stats().await {
                Ok(s) => s.depth >= self.metered_backlog_threshold,
                Err(e) => {
                    tracing::warn!("{e}");
                    false
                }
            };
        let mut s = self.stats.lock();
        if hold != s.held_for_metered {
            if hold {
                tracing::info!(
                    "only metered links are online: holding the upload backlog \
                     ({} records or more) until another link is up",
                    self.metered_backlog_threshold
                );
            }
            s.held_for_metered = hold;
        }
        hold
    }
}
