//! The NetworkManager task against an in-memory NetworkManager: decisions become Reapply
//! calls, a clean stop and the next start after a crash put the metrics back, a missing or
//! denying NetworkManager is named in the status while the agent measures on.

use super::control::{Controller, Settings};
use super::plan::{Change, FamilyChange};
use super::*;
use crate::agent::status::Shared;
use crate::config::agent::FailoverMode;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One device of the fake: profile metric, applied metric, NetworkManager's default.
#[derive(Debug, Clone)]
struct Dev {
    profile: i64,
    applied: i64,
    default: u32,
}

#[derive(Default)]
struct Fake {
    devs: Mutex<BTreeMap<String, Dev>>,
    /// What `info` answers (None: running and allowed).
    info_error: Mutex<Option<NmError>>,
    /// What `set_metrics` answers (None: applies).
    set_error: Mutex<Option<NmError>>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn laptop() -> Arc<Fake> {
        let f = Fake::default();
        for (n, profile, default) in [("bb0", -1, 100), ("wl0", 600, 600), ("mb0", 700, 700)] {
            f.devs.lock().unwrap().insert(
                n.into(),
                Dev {
                    profile,
                    applied: profile,
                    default,
                },
            );
        }
        Arc::new(f)
    }
    fn applied(&self, n: &str) -> i64 {
        self.devs.lock().unwrap()[n].applied
    }
    fn set_applied(&self, n: &str, v: i64) {
        self.devs.lock().unwrap().get_mut(n).unwrap().applied = v;
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl NetworkManager for Fake {
    async fn info(&self) -> Result<NmInfo, NmError> {
        if let Some(e) = self.info_error.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(NmInfo {
            version: "1.42.4".into(),
            connectivity: ConnectivityCheck {
                available: true,
                enabled: true,
                uri: Some("http://probe.test/generate_204".into()),
                interval: None,
            },
        })
    }
    async fn device(&self, iface: &str) -> Result<DeviceInfo, NmError> {
        let devs = self.devs.lock().unwrap();
        let d = devs.get(iface).ok_or(NmError::UnknownDevice {
            iface: iface.into(),
        })?;
        let eff = if d.applied >= 0 {
            d.applied as u32
        } else {
            d.default
        };
        Ok(DeviceInfo {
            iface: iface.into(),
            managed: true,
            connectivity: Connectivity::Full,
            applied: Some(Observed {
                link: iface.into(),
                uuid: format!("uuid-{iface}"),
                id: format!("lw-{iface}"),
                setting_v4: d.applied,
                setting_v6: d.applied,
                route_v4: Some(eff),
                route_v6: Some(eff),
            }),
        })
    }
    async fn set_metrics(
        &self,
        iface: &str,
        uuid: &str,
        v4: Option<i64>,
        v6: Option<i64>,
    ) -> Result<(), NmError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("set {iface} {v4:?} {v6:?}"));
        if let Some(e) = self.set_error.lock().unwrap().clone() {
            return Err(e);
        }
        assert_eq!(uuid, format!("uuid-{iface}"));
        assert_eq!(v4, v6, "the fake keeps both families alike");
        if let Some(v) = v4 {
            self.set_applied(iface, v);
        }
        Ok(())
    }
    async fn check_connectivity(&self) -> Result<Connectivity, NmError> {
        self.calls.lock().unwrap().push("check".into());
        Ok(Connectivity::Full)
    }
}

fn settings(dir: &tempfile::TempDir, configured: FailoverMode) -> Settings {
    Settings {
        configured,
        dry_run: false,
        state_path: dir.path().join(state::FILE_NAME),
    }
}

fn order(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Polls (in paused time) until `f` holds; panics after 60 simulated seconds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

fn mode_of(shared: &Shared) -> (String, String, Option<String>) {
    let f = shared.failover.read().unwrap();
    (
        f.mode.clone(),
        f.mode_reason.clone(),
        f.networkmanager.as_ref().and_then(|n| n.error.clone()),
    )
}

#[tokio::test(start_paused = true)]
async fn a_decision_moves_the_metric_and_a_clean_stop_puts_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Fake::laptop();
    let shared = Shared::new("t".into(), crate::shared::time::Clock::new());
    let s = settings(&dir, FailoverMode::Auto);
    let path = s.state_path.clone();
    let h = Controller::start(nm.clone(), s, shared.clone());
    h.order(Some("bb0".into()), order(&["bb0", "wl0", "mb0"]), true);
    until("active", || mode_of(&shared).0 == "networkmanager").await;
    assert!(
        mode_of(&shared)
            .1
            .starts_with("auto: NetworkManager 1.42.4 runs")
    );
    assert!(
        nm.calls().iter().all(|c| !c.starts_with("set")),
        "{:?}",
        nm.calls()
    );

    // bb0's upstream is cut: the policy chose wl0.
    h.order(Some("wl0".into()), order(&["wl0", "bb0", "mb0"]), true);
    until("bb0 demoted", || nm.applied("bb0") == 601).await;
    assert_eq!(nm.applied("wl0"), 600);
    until("connectivity check asked", || {
        nm.calls().contains(&"check".into())
    })
    .await;
    // Written down before and after.
    let saved = state::load(&path).unwrap();
    assert_eq!(saved["bb0"].v4.unwrap().ours, 601);
    assert_eq!(saved["bb0"].v4.unwrap().original, -1);
    until("status shows it", || {
        let f = shared.failover.read().unwrap();
        f.networkmanager.as_ref().is_some_and(|n| {
            n.links
                .iter()
                .any(|l| l.name == "bb0" && l.metric_v4 == Some(601))
        })
    })
    .await;

    // NetworkManager re-activates bb0 (profile metric again): repaired after the poke.
    nm.set_applied("bb0", -1);
    h.poke();
    until("bb0 demoted again", || nm.applied("bb0") == 601).await;

    h.stop(Duration::from_secs(5)).await;
    assert_eq!(nm.applied("bb0"), -1);
    assert!(!path.exists(), "state file left behind");
    for n in ["bb0", "wl0", "mb0"] {
        let d = nm.devs.lock().unwrap()[n].clone();
        assert_eq!(d.applied, d.profile, "{n}");
    }
}

#[tokio::test(start_paused = true)]
async fn leftovers_of_a_crash_are_put_back_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Fake::laptop();
    // What a killed agent left: bb0 at 601 and its note.
    nm.set_applied("bb0", 601);
    let fc = FamilyChange {
        original: -1,
        base: 100,
        ours: 601,
        was: None,
    };
    let left: plan::Changes = [(
        "bb0".to_string(),
        Change {
            uuid: "uuid-bb0".into(),
            v4: Some(fc),
            v6: Some(fc),
        },
    )]
    .into();
    let s = settings(&dir, FailoverMode::NetworkManager);
    state::save(&s.state_path, &left).unwrap();
    let path = s.state_path.clone();
    let shared = Shared::new("t".into(), crate::shared::time::Clock::new());
    let h = Controller::start(nm.clone(), s, shared.clone());
    until("put back", || nm.applied("bb0") == -1).await;
    until("note removed", || !path.exists()).await;
    h.stop(Duration::from_secs(5)).await;

    // In observe mode too.
    nm.set_applied("bb0", 601);
    let s = settings(&dir, FailoverMode::Observe);
    state::save(&s.state_path, &left).unwrap();
    Controller::undo_leftovers(nm.clone(), s, shared).await;
    assert_eq!(nm.applied("bb0"), -1);
    assert!(!path.exists());
}

#[tokio::test(start_paused = true)]
async fn a_missing_networkmanager_is_named_and_found_when_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Fake::laptop();
    *nm.info_error.lock().unwrap() = Some(NmError::NotRunning);
    // auto: observe, no error.
    let shared = Shared::new("t".into(), crate::shared::time::Clock::new());
    let h = Controller::start(
        nm.clone(),
        settings(&dir, FailoverMode::Auto),
        shared.clone(),
    );
    until("observe", || mode_of(&shared).1.contains("not running")).await;
    let (mode, _, err) = mode_of(&shared);
    assert_eq!((mode.as_str(), err), ("observe", None));
    h.order(Some("wl0".into()), order(&["wl0", "bb0"]), true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(nm.calls().is_empty(), "acted without NetworkManager");
    // It starts: found within the retry interval, and the pending decision applied.
    *nm.info_error.lock().unwrap() = None;
    until("found", || mode_of(&shared).0 == "networkmanager").await;
    until("applied", || nm.applied("bb0") == 601).await;
    h.stop(Duration::from_secs(5)).await;

    // networkmanager: observe with the error and its fix.
    *nm.info_error.lock().unwrap() = Some(NmError::NotRunning);
    let shared = Shared::new("t".into(), crate::shared::time::Clock::new());
    let h = Controller::start(
        nm.clone(),
        settings(&dir, FailoverMode::NetworkManager),
        shared.clone(),
    );
    until("error", || mode_of(&shared).2.is_some()).await;
    let (mode, reason, err) = mode_of(&shared);
    assert_eq!(mode, "observe");
    assert!(
        reason.starts_with("failover.mode = \"networkmanager\", but"),
        "{reason}"
    );
    assert!(err.unwrap().contains("systemctl start NetworkManager"));
    h.stop(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_denied_reapply_is_named_and_nothing_is_written_down() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Fake::laptop();
    *nm.set_error.lock().unwrap() = Some(NmError::PermissionDenied {
        user: "uid 65534".into(),
        action: "Reapply".into(),
        detail: "not authorized".into(),
    });
    let shared = Shared::new("t".into(), crate::shared::time::Clock::new());
    let s = settings(&dir, FailoverMode::NetworkManager);
    let path = s.state_path.clone();
    let h = Controller::start(nm.clone(), s, shared.clone());
    h.order(Some("wl0".into()), order(&["wl0", "bb0", "mb0"]), true);
    until("error shown", || mode_of(&shared).2.is_some()).await;
    let (mode, _, err) = mode_of(&shared);
    assert_eq!(mode, "observe");
    assert!(err.unwrap().contains("run the agent as root"));
    assert_eq!(nm.applied("bb0"), -1);
    assert!(!path.exists());
    h.stop(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn dry_run_only_logs() {
    let dir = tempfile::tempdir().unwrap();
    let nm = Fake::laptop();
    let shared = Shared::new("t".into(), crate::shared::time::Clock::new());
    let mut s = settings(&dir, FailoverMode::NetworkManager);
    s.dry_run = true;
    let h = Controller::start(nm.clone(), s, shared.clone());
    h.order(Some("wl0".into()), order(&["wl0", "bb0", "mb0"]), true);
    until("active", || mode_of(&shared).0 == "networkmanager").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(nm.calls().iter().all(|c| !c.starts_with("set")));
    h.stop(Duration::from_secs(5)).await;
}
