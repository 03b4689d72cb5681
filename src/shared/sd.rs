//! systemd's notification protocol for `Type=notify` units: ready, watchdog
//! pings, status text, stopping. Every call does nothing when the process was
//! not started with `NOTIFY_SOCKET` (not under systemd).

use sd_notify::NotifyState;
use std::time::Duration;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Start-up is done; `status` is shown by `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A new line for `systemctl status`.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

/// Still alive (the unit's `WatchdogSec`).
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// Stopping cleanly.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to ping the watchdog: half its timeout; `None` when the
/// service manager asked for none.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| (d / 2).max(Duration::from_millis(10)))
}
