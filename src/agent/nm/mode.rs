//! Which failover mode applies, and why, in words for `status` and `validate`.
//!
//! [`choose`] is pure: the configured mode and what was found of NetworkManager in, the mode
//! in effect and a sentence out. `auto` is `networkmanager` when NetworkManager runs and
//! `observe` otherwise; `networkmanager` that cannot work (no bus, NetworkManager not
//! running, permission denied) measures as `observe` until fixed, with the error and the
//! fix. [`describe`] asks NetworkManager (for `validate`).

use super::{NetworkManager, NmError, NmInfo};
use crate::config::agent::FailoverMode;

/// The mode in effect and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChoice {
    /// `observe`, `routes` or `networkmanager`.
    pub mode: &'static str,
    pub reason: String,
    /// Something IT staff must fix (with the fix), when the configured mode cannot work.
    pub error: Option<String>,
}

/// The mode in effect for `configured`, given what was found of NetworkManager (`found` is
/// only looked at for `auto` and `networkmanager`).
pub fn choose(configured: FailoverMode, found: Option<&Result<NmInfo, NmError>>) -> ModeChoice {
    let observe_plain = |reason: &str| ModeChoice {
        mode: "observe",
        reason: reason.into(),
        error: None,
    };
    match configured {
        FailoverMode::Observe => observe_plain(
            "failover.mode = \"observe\": measuring and reporting only, routes untouched",
        ),
        FailoverMode::Routes => ModeChoice {
            mode: "routes",
            reason: "failover.mode = \"routes\": the agent owns the default routes".into(),
            error: None,
        },
        FailoverMode::Auto | FailoverMode::NetworkManager => {
            let label = if configured == FailoverMode::Auto {
                "auto"
            } else {
                "failover.mode = \"networkmanager\""
            };
            match found {
                None => observe_plain(&format!(
                    "{label}: looking for NetworkManager; measuring only until it is found"
                )),
                Some(Ok(info)) => ModeChoice {
                    mode: "networkmanager",
                    reason: format!(
                        "{label}: NetworkManager {} runs and lets the agent set route metrics ({})",
                        info.version,
                        info.connectivity.describe()
                    ),
                    error: None,
                },
                Some(Err(e)) => {
                    let absent = matches!(e, NmError::NoBus { .. } | NmError::NotRunning);
                    if configured == FailoverMode::Auto && absent {
                        // The expected case on a machine without NetworkManager.
                        observe_plain(&format!(
                            "auto: NetworkManager is not running ({}): measuring and reporting only",
                            short(e)
                        ))
                    } else {
                        ModeChoice {
                            mode: "observe",
                            reason: format!(
                                "{label}, but {}: measuring and reporting only until this is fixed",
                                short(e)
                            ),
                            error: Some(e.to_string()),
                        }
                    }
                }
            }
        }
    }
}

/// A few words for the reason (the full message with the fix goes in `error`).
fn short(e: &NmError) -> String {
    match e {
        NmError::NoBus { address, .. } => format!("no D-Bus system bus at {address}"),
        NmError::NotRunning => "nothing owns org.freedesktop.NetworkManager".into(),
        NmError::PermissionDenied { user, .. } => {
            format!("NetworkManager does not let the agent ({user}) control the network")
        }
        other => other.to_string(),
    }
}

/// `validate`'s account: the mode in effect, and for NetworkManager one line per link (is it
/// managed, its connection and route metrics).
pub async fn describe(
    configured: FailoverMode,
    nm: &dyn NetworkManager,
    links: &[String],
) -> (ModeChoice, Vec<String>) {
    if !configured.uses_networkmanager() {
        return (choose(configured, None), vec![]);
    }
    let found = nm.info().await;
    let choice = choose(configured, Some(&found));
    let mut lines = vec![];
    if found.is_ok() {
        for link in links {
            lines.push(match nm.device(link).await {
                Ok(d) if !d.managed => format!("{link}: not managed by NetworkManager (its routes are left alone)"),
                Ok(d) => match d.applied {
                    Some(a) => format!(
                        "{link}: managed by NetworkManager, connection `{}`, route metric {} (IPv4) {} (IPv6), connectivity {}",
                        a.id,
                        metric_words(a.setting_v4, a.route_v4),
                        metric_words(a.setting_v6, a.route_v6),
                        d.connectivity.as_str()
                    ),
                    None => format!("{link}: managed by NetworkManager, no active connection"),
                },
                Err(NmError::UnknownDevice { .. }) => {
                    format!("{link}: unknown to NetworkManager (its routes are left alone)")
                }
                Err(e) => format!("{link}: {e}"),
            });
        }
    }
    (choice, lines)
}

/// `status`'s lines about the mode: why it applies, what stops NetworkManager from being
/// used, and NetworkManager's view of each link.
pub fn status_lines(f: &crate::wire::FailoverStatus) -> Vec<String> {
    let mut out = vec![];
    if !f.mode_reason.is_empty() {
        out.push(format!("mode: {}", f.mode_reason));
    }
    let Some(nm) = &f.networkmanager else {
        return out;
    };
    if let Some(e) = &nm.error {
        out.push(format!("error: {e}"));
    }
    for l in &nm.links {
        let metric = |set: Option<u32>, route: Option<u32>| match (set, route) {
            (Some(s), _) => format!("{s} (set by the agent)"),
            (None, Some(r)) => format!("{r}"),
            (None, None) => "-".into(),
        };
        out.push(if !l.managed {
            format!("  {}: not managed by NetworkManager", l.name)
        } else {
            format!(
                "  {}: connection {}, NetworkManager connectivity {}, route metric {} / IPv6 {}",
                l.name,
                l.connection.as_deref().unwrap_or("none"),
                l.connectivity,
                metric(l.metric_v4, l.route_v4),
                metric(l.metric_v6, l.route_v6),
            )
        });
    }
    out
}

fn metric_words(setting: i64, route: Option<u32>) -> String {
    match (setting, route) {
        (_, None) => "none (no default route)".into(),
        (s, Some(r)) if s < 0 => format!("{r} (NetworkManager's default)"),
        (s, Some(r)) if i64::from(r) == s => format!("{r}"),
        (s, Some(r)) => format!("{s} (route {r}, with NetworkManager's penalty)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::nm::ConnectivityCheck;

    fn info() -> NmInfo {
        NmInfo {
            version: "1.42.4".into(),
            connectivity: ConnectivityCheck {
                available: true,
                enabled: true,
                uri: Some("http://probe.test/generate_204".into()),
                interval: None,
            },
        }
    }

    fn denied() -> NmError {
        NmError::PermissionDenied {
            user: "uid 65534".into(),
            action: "org.freedesktop.NetworkManager.network-control".into(),
            detail: "polkit answers \"no\"".into(),
        }
    }

    /// Every configured mode against every outcome of looking for NetworkManager.
    #[test]
    fn every_mode_and_outcome() {
        let outcomes: Vec<Option<Result<NmInfo, NmError>>> = vec![
            None,
            Some(Ok(info())),
            Some(Err(NmError::NotRunning)),
            Some(Err(NmError::NoBus {
                address: "unix:path=/nonexistent".into(),
                reason: "No such file or directory".into(),
            })),
            Some(Err(denied())),
        ];
        for mode in [
            FailoverMode::Auto,
            FailoverMode::Observe,
            FailoverMode::Routes,
            FailoverMode::NetworkManager,
        ] {
            for found in &outcomes {
                let c = choose(mode, found.as_ref());
                let nm_found = matches!(found, Some(Ok(_)));
                let expected = match mode {
                    FailoverMode::Routes => "routes",
                    FailoverMode::Observe => "observe",
                    _ if nm_found => "networkmanager",
                    _ => "observe",
                };
                assert_eq!(c.mode, expected, "{mode:?} {found:?}");
                assert!(!c.reason.is_empty());
                // An error only when NetworkManager was asked for and cannot be used: always
                // in `networkmanager` mode, in `auto` only when it runs but denies.
                let want_error = matches!(
                    (mode, found),
                    (FailoverMode::NetworkManager, Some(Err(_)))
                        | (
                            FailoverMode::Auto,
                            Some(Err(NmError::PermissionDenied { .. }))
                        )
                );
                assert_eq!(c.error.is_some(), want_error, "{mode:?} {found:?}: {c:?}");
            }
        }
    }

    #[test]
    fn reasons_say_why_and_errors_name_the_fix() {
        let c = choose(FailoverMode::Auto, Some(&Ok(info())));
        assert_eq!(
            c.reason,
            "auto: NetworkManager 1.42.4 runs and lets the agent set route metrics \
             (connectivity checked every 5m at http://probe.test/generate_204)"
        );
        let c = choose(FailoverMode::Auto, Some(&Err(NmError::NotRunning)));
        assert!(
            c.reason.starts_with("auto: NetworkManager is not running"),
            "{}",
            c.reason
        );
        let c = choose(FailoverMode::NetworkManager, Some(&Err(denied())));
        let e = c.error.unwrap();
        assert!(
            e.contains("run the agent as root") && e.contains("polkit"),
            "{e}"
        );
        let c = choose(
            FailoverMode::NetworkManager,
            Some(&Err(NmError::NotRunning)),
        );
        assert!(c.error.unwrap().contains("systemctl start NetworkManager"));
    }
}
