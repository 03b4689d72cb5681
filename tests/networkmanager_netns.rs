//! `failover.mode = "networkmanager"` against a real NetworkManager that manages the
//! testbed's three uplinks on its own private bus (see `tests/common/nm.rs`). Every check asks
//! the kernel which link carries internet traffic (`ip route get`) and NetworkManager what its
//! saved profiles say.

mod common;

use common::Uplink;
use common::nm::{Connectivity, NmBed, NmOptions, nm_available, profile_id};
use std::time::Duration;

#[test]
fn the_testbed_runs_a_real_networkmanager_that_owns_the_routes() {
    if !nm_available() {
        return;
    }
    let nm = NmBed::new(NmOptions::default());
    // Laptop metrics: bb0 at NetworkManager's default for its type, wl0 600, mb0 700.
    let routes = nm.default_routes(false);
    assert_eq!(
        routes,
        vec![
            ("bb0".to_string(), 100),
            ("mb0".to_string(), 700),
            ("wl0".to_string(), 600)
        ],
        "IPv4 default routes"
    );
    assert_eq!(nm.route_metric(Uplink::Wifi, true), Some(600));
    assert_eq!(nm.kernel_route(false), "bb0");
    assert_eq!(nm.kernel_route(true), "bb0");
    assert_eq!(nm.profile_metric(Uplink::Broadband), -1);
    let general = nm.nmcli(&["-t", "-f", "CONNECTIVITY", "general"]);
    assert_eq!(general.trim(), "full", "connectivity check");

    // A change applied to the device (not the profile) moves the kernel's route at once.
    let before = std::fs::read(nm.profile_path(Uplink::Broadband)).unwrap();
    nm.nmcli(&["device", "modify", "bb0", "ipv4.route-metric", "650"]);
    nm.wait_kernel_route(Uplink::Wifi, Duration::from_secs(5), String::new);
    assert_eq!(nm.profile_metric(Uplink::Broadband), -1);
    assert_eq!(
        std::fs::read(nm.profile_path(Uplink::Broadband)).unwrap(),
        before
    );

    // Anyone but root is denied (auth-polkit=root-only).
    let out = nm
        .tb
        .exec_dev([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "nmcli",
            "device",
            "modify",
            "bb0",
            "ipv4.route-metric",
            "50",
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not authorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = profile_id(Uplink::Wifi);
    let _ = Connectivity::Off;
}
