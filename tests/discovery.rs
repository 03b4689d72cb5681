//! Link discovery over the sysfs fixture trees in `tests/fixtures/sysfs/`
//! (rebuilt by `make-fixtures.sh` there): one classification per kernel fact,
//! and the `[discovery]` include/exclude rules.

use linkwatch::agent::links::{Classification, classify, discover};
use linkwatch::config::agent::DiscoverySection;
use linkwatch::wire::LinkKind;
use std::path::PathBuf;

use Classification::{Skip, Uplink};
use LinkKind::{Broadband, Mobile, Wifi};

fn root(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sysfs")
        .join(case)
        .join("class/net")
}

fn cfg(include: &[&str], exclude: &[&str]) -> DiscoverySection {
    DiscoverySection {
        enabled: true,
        include: include.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    }
}

fn names(found: &[(String, LinkKind)]) -> Vec<&str> {
    found.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn gateway_classification() {
    let r = root("gateway");
    let expect = [
        ("eth0", Uplink(Broadband)),             // PCI Ethernet, e1000e
        ("wlan0", Uplink(Wifi)),                 // wireless/ + phy80211
        ("wwan0", Uplink(Mobile)),               // DEVTYPE=wwan, raw-IP (type 65534)
        ("mbim0", Uplink(Mobile)),               // driver cdc_mbim, no DEVTYPE
        ("enx00e04c680001", Uplink(Broadband)),  // USB Ethernet on cdc_ether
        ("usb0", Uplink(Mobile)),                // rndis_host phone tethering
        ("ppp0", Uplink(Broadband)),             // PPP (PPPoE) type 512
        ("eth0.100", Uplink(Broadband)),         // VLAN on a gateway
        ("lo", Skip("loopback")),                // type 772
        ("docker0", Skip("bridge")),             // DEVTYPE=bridge + bridge/
        ("br0", Skip("bridge")),                 // DEVTYPE=bridge + bridge/
        ("eth1", Skip("bridge port")),           // brport/: member of br0
        ("veth1234", Skip("container/virtual")), // veth* name
        ("tun0", Skip("tunnel")),                // type 65534 + tun_flags
        ("tap0", Skip("tunnel")),                // tun_flags
        ("wg0", Skip("tunnel")),                 // type 65534
        ("lanpeer", Skip("virtual")),            // under devices/virtual, no device
        ("nosuch0", Skip("absent")),
    ];
    for (name, want) in expect {
        assert_eq!(classify(&r, name), want, "{name}");
    }
}

#[test]
fn laptop_classification() {
    let r = root("laptop");
    let expect = [
        ("enp0s31f6", Uplink(Broadband)),
        ("wlp2s0", Uplink(Wifi)),           // DEVTYPE=wlan only
        ("wwp0s20f0u3i12", Uplink(Mobile)), // systemd WWAN name, unknown driver
        ("lo", Skip("loopback")),
        ("docker0", Skip("bridge")),
        ("virbr0", Skip("bridge")),
        ("vethab12cd3", Skip("container/virtual")),
        ("vmnet8", Skip("container/virtual")),
        ("tailscale0", Skip("tunnel")),
    ];
    for (name, want) in expect {
        assert_eq!(classify(&r, name), want, "{name}");
    }
}

#[test]
fn discover_gateway_defaults() {
    let found = discover(&root("gateway"), &DiscoverySection::default());
    assert_eq!(
        found,
        vec![
            ("enx00e04c680001".to_string(), Broadband),
            ("eth0".to_string(), Broadband),
            ("eth0.100".to_string(), Broadband),
            ("mbim0".to_string(), Mobile),
            ("ppp0".to_string(), Broadband),
            ("usb0".to_string(), Mobile),
            ("wlan0".to_string(), Wifi),
            ("wwan0".to_string(), Mobile),
        ]
    );
    // bonding_masters is a file in /sys/class/net, not an interface.
    assert!(!names(&found).contains(&"bonding_masters"));
}

#[test]
fn discover_laptop_defaults_sorted() {
    let found = discover(&root("laptop"), &DiscoverySection::default());
    assert_eq!(
        found,
        vec![
            ("enp0s31f6".to_string(), Broadband),
            ("wlp2s0".to_string(), Wifi),
            ("wwp0s20f0u3i12".to_string(), Mobile),
        ]
    );
}

#[test]
fn include_forces_skipped_interfaces_as_broadband() {
    let found = discover(&root("gateway"), &cfg(&["br0", "veth1234", "nosuch0"], &[]));
    let n = names(&found);
    assert!(n.contains(&"br0") && n.contains(&"veth1234"), "{n:?}");
    assert!(
        !n.contains(&"nosuch0"),
        "absent interfaces are not invented"
    );
    assert!(found.contains(&("br0".to_string(), Broadband)));
    assert!(found.contains(&("veth1234".to_string(), Broadband)));
    // Including an uplink keeps its own kind.
    let found = discover(&root("gateway"), &cfg(&["wwan0"], &[]));
    assert!(found.contains(&("wwan0".to_string(), Mobile)));
    // Sorted by name, always.
    let mut sorted = found.clone();
    sorted.sort();
    assert_eq!(found, sorted);
}

#[test]
fn include_accepts_prefix_patterns() {
    let found = discover(&root("gateway"), &cfg(&["tun*"], &[]));
    assert!(found.contains(&("tun0".to_string(), Broadband)));
    assert!(!names(&found).contains(&"tap0"));
}

#[test]
fn exclude_exact_and_prefix() {
    let found = discover(&root("gateway"), &cfg(&[], &["eth0", "ww*"]));
    let n = names(&found);
    assert!(!n.contains(&"eth0"), "{n:?}");
    assert!(
        n.contains(&"eth0.100"),
        "exact exclude must not act as a prefix: {n:?}"
    );
    assert!(!n.contains(&"wwan0"), "{n:?}");
    assert!(n.contains(&"wlan0"), "{n:?}");

    let found = discover(&root("gateway"), &cfg(&[], &["eth0*"]));
    let n = names(&found);
    assert!(!n.contains(&"eth0") && !n.contains(&"eth0.100"), "{n:?}");
}

#[test]
fn exclude_wins_over_include() {
    let found = discover(&root("gateway"), &cfg(&["br0", "eth0"], &["br*", "eth0"]));
    let n = names(&found);
    assert!(!n.contains(&"br0") && !n.contains(&"eth0"), "{n:?}");
}

#[test]
fn disabled_discovery_returns_only_included() {
    let mut c = cfg(&["eth0", "veth1234"], &[]);
    c.enabled = false;
    assert_eq!(
        discover(&root("gateway"), &c),
        vec![
            ("eth0".to_string(), Broadband),
            ("veth1234".to_string(), Broadband),
        ]
    );
    c.include.clear();
    assert!(discover(&root("gateway"), &c).is_empty());
}

#[test]
fn missing_root_is_empty() {
    assert!(discover(&root("no-such-case"), &DiscoverySection::default()).is_empty());
}
