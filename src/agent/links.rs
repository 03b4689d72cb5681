//! Link discovery and classification from the kernel's own facts (sysfs).
//!
//! Everything here is pure over a `/sys/class/net`-shaped directory, so tests
//! run on fixture trees (`tests/fixtures/sysfs/`). The one exception is
//! [`counters`], which reads the live byte counters through `sysinfo`.
//!
//! # How an interface is classified
//! The rules run in this order; the first that matches wins.
//!
//! | fact (under `<root>/<name>/`) | result |
//! |---|---|
//! | directory missing | `Skip("absent")` |
//! | name `lo` or `type` 772 | `Skip("loopback")` |
//! | `brport/` (a bridge member) | `Skip("bridge port")` |
//! | `bonding_slave/` (a bond member) | `Skip("bond member")` |
//! | `wireless/`, `phy80211` or `DEVTYPE=wlan` | `Wifi` |
//! | `DEVTYPE=wwan` (usbnet `FLAG_WWAN`, qmi_wwan, the WWAN framework) | `Mobile` |
//! | `DEVTYPE=bridge` or `bridge/` | `Skip("bridge")` |
//! | driver (`device/driver` link) in [`MOBILE_DRIVERS`] | `Mobile` |
//! | name `wwan*`, or `ww*` (systemd's WWAN prefix) with a `device` | `Mobile` |
//! | name `wl*` (systemd's WLAN prefix) with a `device` | `Wifi` |
//! | `type` 512 (PPP) or `DEVTYPE=ppp` | `Broadband` |
//! | `DEVTYPE=vlan` or `DEVTYPE=bond` | `Broadband` |
//! | `type` 65534 (no link layer) or a `tun_flags` file (tun/tap) | `Skip("tunnel")` |
//! | container/VM/VPN name (`docker*`, `veth*`, `virbr*`, `br-*`, `wg*`, ...) | `Skip("container/virtual")` |
//! | no `device` entry, or the entry resolves under `devices/virtual/` | `Skip("virtual")` |
//! | `type` 1 (Ethernet) with a `device` | `Broadband` |
//! | anything else | `Skip("unsupported link type")` |
//!
//! Decisions worth knowing:
//! - `cdc_ether`, `cdc_ncm` and `r8152` are USB Ethernet adapters and docks as
//!   often as modems, so they count as broadband. Modems on those drivers that
//!   the kernel knows (usbnet `FLAG_WWAN`) carry `DEVTYPE=wwan` and are caught
//!   by that rule. A Huawei "HiLink" stick looks exactly like a USB Ethernet
//!   adapter to the kernel: declare it with `[[link]] kind = "mobile"`.
//! - `rndis_host` and `ipheth` are Android and iPhone USB tethering: the data
//!   almost always comes from the phone's mobile plan, so they count as mobile
//!   (metered, probed sparingly), which is the cheap mistake to make.
//! - PPP (`ppp*`) is PPPoE broadband on most gateways; `pppd` over a serial
//!   modem looks the same in sysfs, so PPP counts as broadband unless the
//!   kernel says `DEVTYPE=wwan`. Declare a dial-up modem with `[[link]]`.
//! - Raw-IP modems (qmi_wwan raw-ip, the WWAN framework) have `type` 65534
//!   like tunnels; the modem rules run before the tunnel rule for that reason.
//! - A Wi-Fi interface in access-point mode looks like a client in sysfs;
//!   exclude it in `[discovery]` on a gateway that serves Wi-Fi.

use crate::config::agent::DiscoverySection;
use crate::wire::LinkKind;
use std::fs;
use std::path::Path;

/// What discovery makes of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// An uplink of this kind: watch it.
    Uplink(LinkKind),
    /// Not an uplink; the reason is a short word for logs (`loopback`,
    /// `bridge`, `virtual`, ...).
    Skip(&'static str),
}

/// Drivers (the `device/driver` link's name) of mobile modems and phone
/// tethering. See the module documentation for the drivers left out on purpose.
pub const MOBILE_DRIVERS: &[&str] = &[
    "qmi_wwan",
    "cdc_mbim",
    "huawei_cdc_ncm",
    "sierra_net",
    "mhi_net",
    "ipheth",
    "rndis_host",
];

/// Name prefixes of interfaces made by container runtimes, hypervisors and
/// VPNs. Never uplinks (unless `include`d).
const VIRTUAL_PREFIXES: &[&str] = &[
    "docker",
    "br-",
    "virbr",
    "veth",
    "tun",
    "tap",
    "wg",
    "tailscale",
    "zt",
    "vmnet",
    "vboxnet",
    "lxcbr",
    "lxdbr",
    "podman",
    "cni",
    "flannel",
    "cali",
    "vxlan",
    "ifb",
    "dummy",
];

const ARPHRD_ETHER: u32 = 1;
const ARPHRD_PPP: u32 = 512;
const ARPHRD_LOOPBACK: u32 = 772;
const ARPHRD_NONE: u32 = 65534;

/// The facts sysfs gives about one interface.
struct Facts {
    kind_type: Option<u32>,
    devtype: Option<String>,
    has_device: bool,
    under_virtual: bool,
    driver: Option<String>,
}

impl Facts {
    fn read(dir: &Path) -> Facts {
        let kind_type = fs::read_to_string(dir.join("type"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let devtype = fs::read_to_string(dir.join("uevent")).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("DEVTYPE="))
                .map(|v| v.trim().to_string())
        });
        let device = dir.join("device");
        let has_device = device.exists();
        // The kernel files every software interface under /sys/devices/virtual/net/.
        let under_virtual = fs::canonicalize(dir)
            .map(|p| {
                p.components()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| w[0].as_os_str() == "devices" && w[1].as_os_str() == "virtual")
            })
            .unwrap_or(false);
        let driver = fs::read_link(device.join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        Facts {
            kind_type,
            devtype,
            has_device,
            under_virtual,
            driver,
        }
    }

    fn devtype_is(&self, v: &str) -> bool {
        self.devtype.as_deref() == Some(v)
    }

    fn physical(&self) -> bool {
        self.has_device && !self.under_virtual
    }
}

/// Classify interface `name` from the facts under `sys_class_net/<name>/`
/// (normally `/sys/class/net`). Rules in the module documentation.
pub fn classify(sys_class_net: &Path, name: &str) -> Classification {
    use Classification::{Skip, Uplink};
    let dir = sys_class_net.join(name);
    if name.is_empty() || name.contains('/') || !dir.is_dir() {
        return Skip("absent");
    }
    let f = Facts::read(&dir);
    if name == "lo" || f.kind_type == Some(ARPHRD_LOOPBACK) {
        return Skip("loopback");
    }
    if dir.join("brport").exists() {
        return Skip("bridge port");
    }
    if dir.join("bonding_slave").exists() {
        return Skip("bond member");
    }
    if dir.join("wireless").exists() || dir.join("phy80211").exists() || f.devtype_is("wlan") {
        return Uplink(LinkKind::Wifi);
    }
    if f.devtype_is("wwan") {
        return Uplink(LinkKind::Mobile);
    }
    if f.devtype_is("bridge") || dir.join("bridge").exists() {
        return Skip("bridge");
    }
    if f.driver
        .as_deref()
        .is_some_and(|d| MOBILE_DRIVERS.contains(&d))
    {
        return Uplink(LinkKind::Mobile);
    }
    if name.starts_with("wwan") || (name.starts_with("ww") && f.physical()) {
        return Uplink(LinkKind::Mobile);
    }
    if name.starts_with("wl") && f.physical() {
        return Uplink(LinkKind::Wifi);
    }
    if f.kind_type == Some(ARPHRD_PPP) || f.devtype_is("ppp") {
        return Uplink(LinkKind::Broadband);
    }
    if f.devtype_is("vlan") || f.devtype_is("bond") {
        return Uplink(LinkKind::Broadband);
    }
    if f.kind_type == Some(ARPHRD_NONE) || dir.join("tun_flags").exists() {
        return Skip("tunnel");
    }
    if VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Skip("container/virtual");
    }
    if !f.physical() {
        return Skip("virtual");
    }
    if f.kind_type == Some(ARPHRD_ETHER) {
        return Uplink(LinkKind::Broadband);
    }
    Skip("unsupported link type")
}

/// Does `name` match one `include`/`exclude` pattern: an exact name, or a
/// prefix followed by `*`?
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches_pattern(p, name))
}

/// The uplinks under `sys_class_net` (normally `/sys/class/net`), sorted by
/// name, after the `[discovery]` rules:
/// - `include` (exact or `prefix*`) watches an interface even when
///   classification skips it; an included interface that is not an uplink
///   counts as broadband.
/// - `exclude` (exact or `prefix*`) never watches it, and wins over `include`.
/// - With `enabled = false` only the included interfaces are returned.
///
/// Interfaces that are not present are not returned; an unreadable root gives
/// an empty list.
pub fn discover(sys_class_net: &Path, cfg: &DiscoverySection) -> Vec<(String, LinkKind)> {
    let Ok(entries) = fs::read_dir(sys_class_net) else {
        return Vec::new();
    };
    let mut found: Vec<(String, LinkKind)> = entries
        .filter_map(Result::ok)
        // Entries are symlinks to directories; plain files such as
        // `bonding_masters` are not interfaces.
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !matches_any(&cfg.exclude, name))
        .filter_map(|name| {
            let included = matches_any(&cfg.include, &name);
            match classify(sys_class_net, &name) {
                Classification::Uplink(kind) if cfg.enabled || included => Some((name, kind)),
                Classification::Skip(_) if included => Some((name, LinkKind::Broadband)),
                _ => None,
            }
        })
        .collect();
    found.sort();
    found
}

/// Total bytes received and transmitted by interface `name` since it appeared,
/// from the live system (`None` if there is no such interface).
pub fn counters(name: &str) -> Option<(u64, u64)> {
    let networks = sysinfo::Networks::new_with_refreshed_list().ok()?;
    networks
        .iter()
        .find(|(n, _)| n.as_os_str() == name)
        .map(|(_, data)| (data.total_received(), data.total_transmitted()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_exact_and_prefix() {
        assert!(matches_pattern("eth0", "eth0"));
        assert!(!matches_pattern("eth0", "eth01"));
        assert!(!matches_pattern("eth0", "eth"));
        assert!(matches_pattern("eth*", "eth0"));
        assert!(matches_pattern("eth*", "eth"));
        assert!(!matches_pattern("eth*", "veth0"));
        assert!(matches_pattern("*", "anything"));
        // Only a trailing star is special.
        assert!(!matches_pattern("e*h0", "eth0"));
    }

    #[test]
    fn missing_interface_is_absent() {
        let root = Path::new("/nonexistent-linkwatch-root");
        assert_eq!(classify(root, "eth0"), Classification::Skip("absent"));
        assert_eq!(classify(root, "../etc"), Classification::Skip("absent"));
        assert!(discover(root, &DiscoverySection::default()).is_empty());
    }

    #[test]
    fn live_loopback() {
        // The real kernel layout: /sys/class/net/lo -> ../../devices/virtual/net/lo.
        let root = Path::new("/sys/class/net");
        if root.join("lo").exists() {
            assert_eq!(classify(root, "lo"), Classification::Skip("loopback"));
            assert!(
                !discover(root, &DiscoverySection::default())
                    .iter()
                    .any(|(n, _)| n == "lo")
            );
        }
    }

    #[test]
    fn counters_of_loopback_and_missing() {
        // `lo` exists on every Linux host, network namespaces included.
        if Path::new("/sys/class/net/lo").exists() {
            assert!(counters("lo").is_some());
        }
        assert_eq!(counters("no-such-if-lw"), None);
    }
}
