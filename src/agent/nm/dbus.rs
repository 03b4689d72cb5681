//! [`DbusNm`]: the [`NetworkManager`] trait over the D-Bus system bus with zbus (on tokio).
//!
//! The bus is the one in `DBUS_SYSTEM_BUS_ADDRESS`, else `/run/dbus/system_bus_socket`; the
//! connection is made on first use and again after it was lost. Whether NetworkManager runs
//! is asked of the bus (`NameHasOwner`), so a stopped NetworkManager is never started by the
//! agent's calls. Every call has a deadline ([`CALL_TIMEOUT`]). D-Bus errors are mapped to
//! [`NmError`]s that name the fix (no bus, NetworkManager not running, permission denied).

use super::{
    Connectivity, ConnectivityCheck, DeviceInfo, NetworkManager, NmError, NmInfo, Observed,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// Deadline of every D-Bus call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

const NM_NAME: &str = "org.freedesktop.NetworkManager";

/// The polkit action of everything the agent asks (Reapply, CheckConnectivity).
pub const NETWORK_CONTROL: &str = "org.freedesktop.NetworkManager.network-control";

/// `NM_DEVICE_STATE_ACTIVATED`.
const DEVICE_ACTIVATED: u32 = 100;

type Settings = HashMap<String, HashMap<String, OwnedValue>>;

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager"
)]
trait Manager {
    fn get_device_by_ip_iface(&self, iface: &str) -> zbus::Result<OwnedObjectPath>;
    fn check_connectivity(&self) -> zbus::Result<u32>;
    fn get_permissions(&self) -> zbus::Result<HashMap<String, String>>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn connectivity_check_available(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn connectivity_check_enabled(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn connectivity_check_uri(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Device",
    default_service = "org.freedesktop.NetworkManager"
)]
trait Device {
    fn get_applied_connection(&self, flags: u32) -> zbus::Result<(Settings, u64)>;
    fn reapply(&self, connection: Settings, version_id: u64, flags: u32) -> zbus::Result<()>;
    #[zbus(property)]
    fn managed(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn ip4_connectivity(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn ip4_config(&self) -> zbus::Result<OwnedObjectPath>;
    #[zbus(property)]
    fn ip6_config(&self) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.IP4Config",
    default_service = "org.freedesktop.NetworkManager"
)]
trait Ip4Config {
    #[zbus(property)]
    fn route_data(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.IP6Config",
    default_service = "org.freedesktop.NetworkManager"
)]
trait Ip6Config {
    #[zbus(property)]
    fn route_data(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;
}

/// NetworkManager on the system bus.
#[derive(Default)]
pub struct DbusNm {
    conn: Mutex<Option<zbus::Connection>>,
}

/// The system bus address the agent uses (for messages).
pub fn bus_address() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .unwrap_or_else(|_| "unix:path=/run/dbus/system_bus_socket".into())
}

/// `uid N` of this process, for messages.
fn whoami() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|u| format!("uid {u}")))
        })
        .unwrap_or_else(|| "this user".into())
}

/// Map a zbus error of `op` on `object` to what it means for the agent.
fn map_err(op: &'static str, object: &str, e: zbus::Error) -> NmError {
    let call = |message: String| NmError::Call {
        op,
        object: object.to_string(),
        message,
    };
    let denied = |detail: String| NmError::PermissionDenied {
        user: whoami(),
        action: op.to_string(),
        detail,
    };
    match e {
        zbus::Error::MethodError(name, message, _) => {
            let message = message.unwrap_or_default();
            match name.as_str() {
                "org.freedesktop.NetworkManager.PermissionDenied"
                | "org.freedesktop.DBus.Error.AccessDenied" => denied(message),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner" => NmError::NotRunning,
                "org.freedesktop.NetworkManager.UnknownDevice" => NmError::UnknownDevice {
                    iface: object.to_string(),
                },
                "org.freedesktop.NetworkManager.Device.NotActive"
                | "org.freedesktop.NetworkManager.Device.VersionIdMismatch" => NmError::NotActive {
                    iface: object.to_string(),
                },
                other => call(format!("{other}: {message}")),
            }
        }
        zbus::Error::FDO(e) => match *e {
            zbus::fdo::Error::AccessDenied(m) => denied(m),
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_) => {
                NmError::NotRunning
            }
            other => call(other.to_string()),
        },
        zbus::Error::InputOutput(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            call(format!("no answer within {}s", CALL_TIMEOUT.as_secs()))
        }
        zbus::Error::InputOutput(io) => NmError::NoBus {
            address: bus_address(),
            reason: io.to_string(),
        },
        zbus::Error::Address(m) => NmError::NoBus {
            address: bus_address(),
            reason: m,
        },
        zbus::Error::Handshake(m) => NmError::NoBus {
            address: bus_address(),
            reason: m,
        },
        other => call(other.to_string()),
    }
}

fn int(v: &OwnedValue) -> Option<i64> {
    match &**v {
        Value::I64(x) => Some(*x),
        Value::I32(x) => Some(i64::from(*x)),
        Value::U32(x) => Some(i64::from(*x)),
        Value::U64(x) => i64::try_from(*x).ok(),
        _ => None,
    }
}

fn string(v: &OwnedValue) -> Option<String> {
    match &**v {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The metric of the default route among NetworkManager's `RouteData`.
fn default_route_metric(routes: &[HashMap<String, OwnedValue>]) -> Option<u32> {
    routes
        .iter()
        .filter(|r| r.get("prefix").and_then(int) == Some(0))
        .filter_map(|r| r.get("metric").and_then(int))
        .filter_map(|m| u32::try_from(m).ok())
        .min()
}

/// `route-metric` of the applied connection's `ipv4` or `ipv6` section (`-1` when unset).
fn setting_metric(settings: &Settings, section: &str) -> i64 {
    settings
        .get(section)
        .and_then(|s| s.get("route-metric"))
        .and_then(int)
        .unwrap_or(super::plan::DEFAULT_SETTING)
}

fn connection_field(settings: &Settings, key: &str) -> String {
    settings
        .get("connection")
        .and_then(|c| c.get(key))
        .and_then(string)
        .unwrap_or_default()
}

impl DbusNm {
    pub fn new() -> DbusNm {
        DbusNm::default()
    }

    /// The bus connection, made now if there is none.
    async fn conn(&self) -> Result<zbus::Connection, NmError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let build = async {
            zbus::connection::Builder::system()?
                .method_timeout(CALL_TIMEOUT)
                .build()
                .await
        };
        let c = match tokio::time::timeout(CALL_TIMEOUT, build).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(NmError::NoBus {
                    address: bus_address(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(NmError::NoBus {
                    address: bus_address(),
                    reason: format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
                });
            }
        };
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Forget the connection after an error that means it is gone.
    async fn check<T>(&self, r: Result<T, NmError>) -> Result<T, NmError> {
        if let Err(NmError::NoBus { .. }) = &r {
            *self.conn.lock().await = None;
        }
        r
    }

    async fn manager(&self) -> Result<ManagerProxy<'static>, NmError> {
        let conn = self.conn().await?;
        ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| map_err("connect", NM_NAME, e))
    }

    async fn device_proxy(
        &self,
        iface: &str,
    ) -> Result<(DeviceProxy<'static>, zbus::Connection), NmError> {
        let conn = self.conn().await?;
        let m = self.manager().await?;
        let path = m
            .get_device_by_ip_iface(iface)
            .await
            .map_err(|e| map_err("GetDeviceByIpIface", iface, e))?;
        let d = DeviceProxy::builder(&conn)
            .path(path)
            .map_err(|e| map_err("GetDeviceByIpIface", iface, e))?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| map_err("GetDeviceByIpIface", iface, e))?;
        Ok((d, conn))
    }

    async fn route_metric(
        &self,
        conn: &zbus::Connection,
        path: OwnedObjectPath,
        v6: bool,
        iface: &str,
    ) -> Result<Option<u32>, NmError> {
        if path.as_str() == "/" {
            return Ok(None);
        }
        let err = |e| map_err("RouteData", iface, e);
        let routes = if v6 {
            Ip6ConfigProxy::builder(conn)
                .path(path)
                .map_err(err)?
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .map_err(err)?
                .route_data()
                .await
        } else {
            Ip4ConfigProxy::builder(conn)
                .path(path)
                .map_err(err)?
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .map_err(err)?
                .route_data()
                .await
        };
        Ok(default_route_metric(&routes.map_err(err)?))
    }

    async fn info_inner(&self) -> Result<NmInfo, NmError> {
        let conn = self.conn().await?;
        let bus = zbus::fdo::DBusProxy::new(&conn)
            .await
            .map_err(|e| map_err("connect", "the bus", e))?;
        let running = bus
            .name_has_owner(NM_NAME.try_into().expect("valid bus name"))
            .await
            .map_err(|e| map_err("NameHasOwner", NM_NAME, e.into()))?;
        if !running {
            return Err(NmError::NotRunning);
        }
        let m = self.manager().await?;
        let e = |op| move |e| map_err(op, NM_NAME, e);
        let version = m.version().await.map_err(e("Version"))?;
        let available = m
            .connectivity_check_available()
            .await
            .map_err(e("ConnectivityCheckAvailable"))?;
        let enabled = m
            .connectivity_check_enabled()
            .await
            .map_err(e("ConnectivityCheckEnabled"))?;
        let uri = m
            .connectivity_check_uri()
            .await
            .map_err(e("ConnectivityCheckUri"))?;
        let perms = m.get_permissions().await.map_err(e("GetPermissions"))?;
        match perms.get(NETWORK_CONTROL).map(String::as_str) {
            Some("yes") => {}
            other => {
                return Err(NmError::PermissionDenied {
                    user: whoami(),
                    action: NETWORK_CONTROL.into(),
                    detail: format!(
                        "polkit answers {}",
                        other
                            .map(|o| format!("\"{o}\""))
                            .unwrap_or("nothing".into())
                    ),
                });
            }
        }
        let files = super::conf::parse(&super::conf::read(std::path::Path::new("/")));
        Ok(NmInfo {
            version,
            connectivity: ConnectivityCheck {
                available,
                enabled,
                uri: (!uri.is_empty()).then_some(uri),
                interval: files.interval,
            },
        })
    }

    async fn device_inner(&self, iface: &str) -> Result<DeviceInfo, NmError> {
        let (d, conn) = self.device_proxy(iface).await?;
        let e = |op| move |e| map_err(op, iface, e);
        let managed = d.managed().await.map_err(e("Managed"))?;
        let state = d.state().await.map_err(e("State"))?;
        let connectivity =
            Connectivity::from_u32(d.ip4_connectivity().await.map_err(e("Ip4Connectivity"))?);
        let applied = if managed && state == DEVICE_ACTIVATED {
            match d.get_applied_connection(0).await {
                Ok((settings, _version)) => {
                    let route_v4 = self
                        .route_metric(
                            &conn,
                            d.ip4_config().await.map_err(e("Ip4Config"))?,
                            false,
                            iface,
                        )
                        .await?;
                    let route_v6 = self
                        .route_metric(
                            &conn,
                            d.ip6_config().await.map_err(e("Ip6Config"))?,
                            true,
                            iface,
                        )
                        .await?;
                    Some(Observed {
                        link: iface.to_string(),
                        uuid: connection_field(&settings, "uuid"),
                        id: connection_field(&settings, "id"),
                        setting_v4: setting_metric(&settings, "ipv4"),
                        setting_v6: setting_metric(&settings, "ipv6"),
                        route_v4,
                        route_v6,
                    })
                }
                // Deactivated between the two calls.
                Err(err) => match map_err("GetAppliedConnection", iface, err) {
                    NmError::NotActive { .. } => None,
                    other => return Err(other),
                },
            }
        } else {
            None
        };
        Ok(DeviceInfo {
            iface: iface.to_string(),
            managed,
            connectivity,
            applied,
        })
    }

    async fn set_metrics_inner(
        &self,
        iface: &str,
        uuid: &str,
        v4: Option<i64>,
        v6: Option<i64>,
    ) -> Result<(), NmError> {
        let (d, _conn) = self.device_proxy(iface).await?;
        // Twice at most: NetworkManager may change the applied connection in between
        // (VersionIdMismatch).
        let mut last = None;
        for _ in 0..2 {
            let (mut settings, version) = d
                .get_applied_connection(0)
                .await
                .map_err(|e| map_err("GetAppliedConnection", iface, e))?;
            if connection_field(&settings, "uuid") != uuid {
                return Err(NmError::NotActive {
                    iface: iface.to_string(),
                });
            }
            for (section, value) in [("ipv4", v4), ("ipv6", v6)] {
                let Some(v) = value else { continue };
                let owned = Value::from(v)
                    .try_to_owned()
                    .map_err(|e| map_err("Reapply", iface, e.into()))?;
                settings
                    .entry(section.to_string())
                    .or_default()
                    .insert("route-metric".to_string(), owned);
            }
            match d.reapply(settings, version, 0).await {
                Ok(()) => return Ok(()),
                Err(e) => match map_err("Reapply", iface, e) {
                    NmError::NotActive { .. } => {
                        last = Some(NmError::NotActive {
                            iface: iface.to_string(),
                        })
                    }
                    other => return Err(other),
                },
            }
        }
        Err(last.unwrap_or(NmError::NotActive {
            iface: iface.to_string(),
        }))
    }
}

#[async_trait]
impl NetworkManager for DbusNm {
    async fn info(&self) -> Result<NmInfo, NmError> {
        let r = self.info_inner().await;
        self.check(r).await
    }

    async fn device(&self, iface: &str) -> Result<DeviceInfo, NmError> {
        let r = self.device_inner(iface).await;
        self.check(r).await
    }

    async fn set_metrics(
        &self,
        iface: &str,
        uuid: &str,
        v4: Option<i64>,
        v6: Option<i64>,
    ) -> Result<(), NmError> {
        let r = self.set_metrics_inner(iface, uuid, v4, v6).await;
        self.check(r).await
    }

    async fn check_connectivity(&self) -> Result<Connectivity, NmError> {
        let r = async {
            let m = self.manager().await?;
            m.check_connectivity()
                .await
                .map(Connectivity::from_u32)
                .map_err(|e| map_err("CheckConnectivity", NM_NAME, e))
        }
        .await;
        self.check(r).await
    }
}
