#![allow(dead_code)]
//! A network-namespace testbed for linkwatch integration tests.
//!
//! Topology (every namespace name carries a per-instance prefix such as `lw1234n0`, so several
//! testbeds can live at once, in one test binary or in several):
//!
//! ```text
//!   dev ──bb0═dn0── isp1 ──up0═isp1──┐
//!   dev ──wl0═dn0── isp2 ──up0═isp2──┼── inet  (lo: 192.0.2.1, 192.0.2.2, 203.0.113.10, 198.51.100.53)
//!   dev ──mb0═dn0── isp3 ──up0═isp3──┘
//! ```
//!
//! - dev: bb0 10.11.0.2/24, wl0 10.12.0.2/24, mb0 10.13.0.2/24; default routes via 10.1N.0.1
//!   with metrics 100/200/300.
//! - ispN: dn0 10.1N.0.1/24, up0 10.2N.0.2/24, default via 10.2N.0.1, forwarding on, no NAT.
//! - inet: ispN 10.2N.0.1/24, routes 10.1N.0.0/24 via 10.2N.0.2; dnsmasq on 198.51.100.53
//!   (`probe.test` and `*.probe.test` → 192.0.2.1); HTTP (`tests/fixtures/testbed/httpd.py`) on
//!   192.0.2.1:80 and 203.0.113.10:80 (`/generate_204` → 204, `/` → 200, `/whoami` → the
//!   client's address, else 404).
//! - IPv6 alongside, in the documentation prefix 2001:db8::/32 (no DAD, so addresses work at
//!   once): dev 2001:db8:1N::2/64 with default routes via 2001:db8:1N::1 (metrics 100/200/300);
//!   ispN dn0 2001:db8:1N::1/64, up0 2001:db8:2N::2/64; inet ispN 2001:db8:2N::1/64 and on lo
//!   2001:db8:ff::1, ::2, ::10 (ICMP, HTTP on ::1 and ::10) and 2001:db8:ff::53 (dnsmasq):
//!   `probe.test` also has AAAA 2001:db8:ff::1, `v6only.test` has only that AAAA.
//! - Extra names ([`Testbed::set_hosts`]): dnsmasq also answers from a hosts file the test
//!   writes (stand-ins the `whatsapp` preset is pointed at with `[preset.whatsapp]`; other
//!   names under example.net and example.com are NXDOMAIN). dnsmasq has no upstream: no query ever leaves the testbed.
//! - HTTPS ([`Testbed::start_https`]): httpd.py listeners with TLS, certificates the test makes
//!   (see [`tls`]).
//! - Captive portal: an httpd.py in ispN on 10.2N.0.2:8080 (302 to
//!   `http://portal.ispN.test/login`) and :8081 (200 login page), started on first use; a DNAT
//!   rule for `iifname "dn0" tcp dport 80` switches it on.
//!
//! Everything is built with `ip` and `nft`; nothing is created in the root namespace apart from
//! the `ip netns` bookkeeping under /run/netns. The tests need root; use [`testbed_available`]
//! (or [`require_root`] and [`require_tool`]) to skip cleanly elsewhere.
//!
//! Every fault-injection method returns once the change is in effect (carrier changes are
//! awaited in the device namespace). Every failing command panics with its command line and
//! stderr. `Drop` kills the servers and deletes the namespaces, also when a test panics (the
//! tails of the server logs are then printed to stderr). Set `LW_TESTBED_KEEP_LOGS=1` to keep
//! the log directory (its path is printed).

pub mod agent;
#[cfg(feature = "collector")]
pub mod alerts;
pub mod cli;
#[cfg(feature = "collector")]
pub mod db;
#[cfg(feature = "collector")]
pub mod fuzz;
pub mod netns;
pub mod nm;
pub mod records;
pub mod services;
pub mod tls;
#[cfg(feature = "collector")]
pub mod web;

use std::ffi::OsStr;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Addresses in `inet` that answer ICMP echo.
pub const ICMP_TARGETS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 1),
    Ipv4Addr::new(192, 0, 2, 2),
    Ipv4Addr::new(203, 0, 113, 10),
];
/// Addresses in `inet` with the HTTP server on port 80.
pub const HTTP_SERVERS: [Ipv4Addr; 2] =
    [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(203, 0, 113, 10)];
/// The DNS server (dnsmasq) in `inet`.
pub const DNS_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
/// Names dnsmasq answers (any subdomain of `probe.test` too), all with [`PROBE_ADDR`].
pub const PROBE_NAMES: [&str; 2] = ["probe.test", "www.probe.test"];
pub const PROBE_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The IPv6 counterparts in `inet`: ICMP targets (2001:db8:ff::1, ::2, ::10).
pub const ICMP_TARGETS_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2),
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x10),
];
/// IPv6 addresses in `inet` with the HTTP server on port 80.
pub const HTTP_SERVERS_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x10),
];
/// dnsmasq's IPv6 address.
pub const DNS_SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x53);
/// The AAAA of `probe.test`, `*.probe.test` and `v6only.test`.
pub const PROBE_ADDR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
/// A name with an AAAA record ([`PROBE_ADDR_V6`]) and no A record.
pub const V6_ONLY_NAME: &str = "v6only.test";
/// Extra addresses on inet's `lo` for stand-in services (TLS servers, the `whatsapp` preset's
/// endpoints): 203.0.113.100 to .109 and 2001:db8:ff::100 to ::109.
pub fn spare_addr(i: u8) -> Ipv4Addr {
    assert!(i < 10, "spare address {i} out of range");
    Ipv4Addr::new(203, 0, 113, 100 + i)
}
pub fn spare_addr_v6(i: u8) -> Ipv6Addr {
    assert!(i < 10, "spare address {i} out of range");
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x100 + u16::from(i))
}
/// Captive portal ports on the ISP's up0 address.
pub const PORTAL_REDIRECT_PORT: u16 = 8080;
pub const PORTAL_LOGIN_PORT: u16 = 8081;

/// Deadline for the testbed's own readiness and state-change waits.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// One uplink of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Uplink {
    Broadband,
    Wifi,
    Mobile,
}

impl Uplink {
    pub const ALL: [Uplink; 3] = [Uplink::Broadband, Uplink::Wifi, Uplink::Mobile];

    /// 1, 2 or 3: the ISP number and the third digit of the 10.1N/10.2N subnets.
    pub fn number(self) -> u8 {
        match self {
            Uplink::Broadband => 1,
            Uplink::Wifi => 2,
            Uplink::Mobile => 3,
        }
    }
    /// Interface name in the device namespace.
    pub fn iface(self) -> &'static str {
        match self {
            Uplink::Broadband => "bb0",
            Uplink::Wifi => "wl0",
            Uplink::Mobile => "mb0",
        }
    }
    /// The device's address on this link (10.1N.0.2, prefix /24).
    pub fn dev_addr(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 10 + self.number(), 0, 2)
    }
    /// The ISP's address on the device side (10.1N.0.1), the device's gateway.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 10 + self.number(), 0, 1)
    }
    /// Metric of the device's default route through this link.
    pub fn metric(self) -> u32 {
        100 * u32::from(self.number())
    }
    /// The ISP's address toward inet (10.2N.0.2); the captive portal listens there.
    pub fn isp_uplink_addr(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 20 + self.number(), 0, 2)
    }
    /// inet's address toward this ISP (10.2N.0.1).
    pub fn inet_addr(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 20 + self.number(), 0, 1)
    }
    /// The device's IPv6 address on this link (2001:db8:1N::2, prefix /64).
    pub fn dev_addr6(self) -> Ipv6Addr {
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x10 + u16::from(self.number()),
            0,
            0,
            0,
            0,
            2,
        )
    }
    /// The ISP's IPv6 address on the device side (2001:db8:1N::1), the device's IPv6 gateway.
    pub fn gateway6(self) -> Ipv6Addr {
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x10 + u16::from(self.number()),
            0,
            0,
            0,
            0,
            1,
        )
    }
    /// The ISP's IPv6 address toward inet (2001:db8:2N::2).
    pub fn isp_uplink_addr6(self) -> Ipv6Addr {
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x20 + u16::from(self.number()),
            0,
            0,
            0,
            0,
            2,
        )
    }
    /// inet's IPv6 address toward this ISP (2001:db8:2N::1).
    pub fn inet_addr6(self) -> Ipv6Addr {
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x20 + u16::from(self.number()),
            0,
            0,
            0,
            0,
            1,
        )
    }
    /// Where the portal's 302 points.
    pub fn portal_location(self) -> String {
        format!("http://portal.isp{}.test/login", self.number())
    }
}

/// What the captive portal answers to every HTTP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalMode {
    /// 302 with `Location: http://portal.ispN.test/login`.
    Redirect,
    /// 200 with an HTML login page.
    LoginPage,
}

/// An HTTP answer seen from the device (see [`Testbed::http_get`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

// ---------------------------------------------------------------------------------------------
// Helpers usable without a testbed
// ---------------------------------------------------------------------------------------------

fn current_test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}

/// True when the effective uid is 0; otherwise prints
/// `skipped: <test> needs root (network namespaces)` and returns false.
pub fn require_root() -> bool {
    let euid = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_string))
        });
    if euid.as_deref() == Some("0") {
        true
    } else {
        eprintln!(
            "skipped: {} needs root (network namespaces)",
            current_test_name()
        );
        false
    }
}

/// Full path of an executable: searched in PATH and in the sbin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_exec(p))
}

/// True when `name` is installed; otherwise prints `skipped: <test> needs <name>` and returns
/// false.
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        true
    } else {
        eprintln!(
            "skipped: {} needs `{name}` (not found in PATH or sbin)",
            current_test_name()
        );
        false
    }
}

/// Everything a [`Testbed`] needs: root, ip, nft, dnsmasq, python3, ping, sysctl. Prints why
/// not (once per missing thing) and returns false when something is missing.
pub fn testbed_available() -> bool {
    require_root()
        && ["ip", "nft", "dnsmasq", "python3", "ping", "sysctl"]
            .iter()
            .all(|tool| require_tool(tool))
}

/// Polls `f` every 20 ms until it returns true; panics with `what` after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if f() {
            return;
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd`; Err with the command line, exit status, stderr and stdout unless it succeeds.
pub fn try_run(cmd: &mut Command) -> Result<Output, String> {
    match cmd.stdin(Stdio::null()).output() {
        Err(e) => Err(format!("could not start {cmd:?}: {e}")),
        Ok(out) if out.status.success() => Ok(out),
        Ok(out) => Err(format!(
            "command failed ({}): {cmd:?}\n--- stderr ---\n{}--- stdout ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        )),
    }
}

/// Runs `cmd`, panicking with the command line and stderr unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `ip ARGS...`, panicking on failure.
fn ip<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) {
    run(Command::new("ip").args(args));
}

/// A Command running `args` inside network namespace `ns` (`ip netns exec NS ARGS...`).
pub fn exec_in<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(ns: &str, args: I) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(args);
    cmd
}

/// The real python3 interpreter (resolved once, which skips e.g. a pyenv shim per call).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from("python3"))
    })
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/testbed")
        .join(name)
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Names of all network namespaces (`ip netns list`).
pub fn netns_list() -> Vec<String> {
    let out = run(Command::new("ip").args(["netns", "list"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn netns_pids(name: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------------------------------------
// The testbed
// ---------------------------------------------------------------------------------------------

pub struct Testbed {
    prefix: String,
    dev: String,
    isp: [String; 3],
    inet: String,
    /// Namespaces actually created (deleted on drop).
    created: Vec<String>,
    /// Servers started by the testbed: (log name, process).
    children: Mutex<Vec<(String, Child)>>,
    /// Whether the portal server of ISP N (index N-1) runs.
    portal_started: Mutex<[bool; 3]>,
    /// Services in inet that refuse connections now (see [`Testbed::refuse_tcp`]).
    refused: Mutex<Vec<SocketAddr>>,
    /// Server processes started by [`Testbed::serve_http`] so far.
    extra_servers: AtomicU32,
    tmp: Option<tempfile::TempDir>,
    /// Whether the testbed gives the device's veths their addresses and default routes
    /// (false: a network manager does, see [`nm`]).
    configure_device: bool,
}

impl Testbed {
    /// Builds the whole topology, starts dnsmasq and the HTTP server, and returns once DNS and
    /// HTTP answer from the device through each of the three links. Panics on any failure
    /// (whatever was built is torn down again).
    pub fn new() -> Testbed {
        Self::build_new(true)
    }

    /// Like [`Testbed::new`], but the device's veths (bb0, wl0, mb0) get no addresses and no
    /// routes: something else configures them (NetworkManager in [`nm`]). Returns once the
    /// namespaces and servers are up; call [`Testbed::wait_ready`] once the links are
    /// configured. [`Testbed::add_link`] recreates a removed link unconfigured too.
    pub fn new_unconfigured() -> Testbed {
        Self::build_new(false)
    }

    fn build_new(configure_device: bool) -> Testbed {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("lw{}n{}", std::process::id() % 10000, n);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("linkwatch-testbed-{prefix}-"))
            .tempdir()
            .expect("create the testbed's temporary directory");
        let mut tb = Testbed {
            dev: format!("{prefix}dev"),
            isp: [1, 2, 3].map(|i| format!("{prefix}isp{i}")),
            inet: format!("{prefix}inet"),
            prefix,
            created: Vec::new(),
            children: Mutex::new(Vec::new()),
            portal_started: Mutex::new([false; 3]),
            refused: Mutex::new(Vec::new()),
            extra_servers: AtomicU32::new(0),
            tmp: Some(tmp),
            configure_device,
        };
        // A panic in here drops `tb`, which cleans up what was built so far.
        tb.build();
        tb
    }

    fn build(&mut self) {
        let started = Instant::now();
        let mut all = vec![self.dev.clone()];
        all.extend(self.isp.iter().cloned());
        all.push(self.inet.clone());
        for ns in &all {
            self.add_netns(ns);
            let forwarding = if *ns == self.dev { "0" } else { "1" };
            // rp_filter off before any interface exists, so new interfaces inherit it: replies
            // arrive on the link a probe was bound to, which is not always the best route back.
            run(&mut exec_in(
                ns,
                [
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.ping_group_range=0 2147483647",
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    &format!("net.ipv4.ip_forward={forwarding}"),
                    // IPv6: no duplicate address detection (addresses usable at once), and
                    // forwarding in the ISPs and inet.
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                    &format!("net.ipv6.conf.all.forwarding={forwarding}"),
                ],
            ));
            ip(["-n", ns, "link", "set", "lo", "up"]);
        }

        let inet = self.inet.clone();
        for a in [
            "192.0.2.1/32",
            "192.0.2.2/32",
            "203.0.113.10/32",
            "198.51.100.53/32",
        ] {
            ip(["-n", &inet, "addr", "add", a, "dev", "lo"]);
        }
        let mut v6: Vec<Ipv6Addr> = ICMP_TARGETS_V6.to_vec();
        v6.push(DNS_SERVER_V6);
        for a in v6 {
            ip([
                "-n",
                &inet,
                "addr",
                "add",
                &format!("{a}/128"),
                "dev",
                "lo",
                "nodad",
            ]);
        }
        for i in 0..10 {
            ip([
                "-n",
                &inet,
                "addr",
                "add",
                &format!("{}/32", spare_addr(i)),
                "dev",
                "lo",
            ]);
            let a6 = format!("{}/128", spare_addr_v6(i));
            ip(["-n", &inet, "addr", "add", &a6, "dev", "lo", "nodad"]);
        }
        for link in Uplink::ALL {
            let isp = self.isp_netns(link).to_string();
            let inet_if = format!("isp{}", link.number());
            ip([
                "-n", &isp, "link", "add", "up0", "type", "veth", "peer", "name", &inet_if,
                "netns", &inet,
            ]);
            ip([
                "-n",
                &isp,
                "addr",
                "add",
                &format!("{}/24", link.isp_uplink_addr()),
                "dev",
                "up0",
            ]);
            ip([
                "-n",
                &inet,
                "addr",
                "add",
                &format!("{}/24", link.inet_addr()),
                "dev",
                &inet_if,
            ]);
            let isp6 = format!("{}/64", link.isp_uplink_addr6());
            ip(["-n", &isp, "addr", "add", &isp6, "dev", "up0", "nodad"]);
            let inet6 = format!("{}/64", link.inet_addr6());
            ip(["-n", &inet, "addr", "add", &inet6, "dev", &inet_if, "nodad"]);
            ip(["-n", &isp, "link", "set", "up0", "up"]);
            ip(["-n", &inet, "link", "set", &inet_if, "up"]);
            ip([
                "-n",
                &isp,
                "route",
                "add",
                "default",
                "via",
                &link.inet_addr().to_string(),
            ]);
            let dev_net = format!("10.{}.0.0/24", 10 + link.number());
            ip([
                "-n",
                &inet,
                "route",
                "add",
                &dev_net,
                "via",
                &link.isp_uplink_addr().to_string(),
            ]);
            let via6 = link.inet_addr6().to_string();
            ip(["-n", &isp, "-6", "route", "add", "default", "via", &via6]);
            let dev_net6 = format!("2001:db8:{:x}::/64", 0x10 + link.number());
            let isp6 = link.isp_uplink_addr6().to_string();
            ip(["-n", &inet, "-6", "route", "add", &dev_net6, "via", &isp6]);
            self.create_device_link(link);
        }

        self.start_inet_servers();
        if self.configure_device {
            self.wait_ready();
        }
        eprintln!("testbed {} ready in {:?}", self.prefix, started.elapsed());
    }

    /// Returns once dnsmasq answers and HTTP gives 204 through each of the three links, and
    /// IPv6 (ICMP, DNS over IPv6) works through each; panics after the testbed's deadline.
    /// [`Testbed::new`] calls it; after [`Testbed::new_unconfigured`] call it once the links
    /// are configured.
    pub fn wait_ready(&self) {
        // One probe.py run polls every 50 ms (up to 10 s) until dnsmasq answers and HTTP gives
        // 204 through each of the three links.
        let mut args: Vec<String> = [
            "ready",
            "--server",
            &DNS_SERVER.to_string(),
            "--name",
            PROBE_NAMES[0],
            "--url",
            "http://192.0.2.1/generate_204",
            "--timeout",
            &READY_TIMEOUT.as_secs_f64().to_string(),
        ]
        .map(String::from)
        .to_vec();
        args.extend(Uplink::ALL.map(|l| l.iface().to_string()));
        if let Err(e) = self.probe(&args) {
            self.assert_servers_alive();
            panic!("testbed {}: {e}", self.prefix);
        }
        // And IPv6 through each link (DNS over IPv6 answers too).
        for link in Uplink::ALL {
            wait_until(
                READY_TIMEOUT,
                &format!("IPv6 works through {}", link.iface()),
                || {
                    self.ping_ip(link, IpAddr::V6(ICMP_TARGETS_V6[0]))
                        && self
                            .dns_query_at(
                                link,
                                IpAddr::V6(DNS_SERVER_V6),
                                PROBE_NAMES[0],
                                true,
                                Duration::from_millis(300),
                            )
                            .is_ok_and(|a| a == [IpAddr::V6(PROBE_ADDR_V6)])
                },
            );
        }
    }

    fn add_netns(&mut self, name: &str) {
        if let Err(e) = try_run(Command::new("ip").args(["netns", "add", name])) {
            // A namespace left behind by a killed earlier run with the same pid: reuse the name
            // only when nothing runs inside it.
            if netns_exists(name) && netns_pids(name).is_empty() {
                eprintln!("testbed: deleting stale namespace {name}");
                ip(["netns", "del", name]);
                ip(["netns", "add", name]);
            } else {
                panic!("{e}");
            }
        }
        self.created.push(name.to_string());
    }

    /// The device's veth for `link`, its ISP peer `dn0`, addresses and the default route (only
    /// the veth pair and the ISP's side when the testbed does not configure the device).
    fn create_device_link(&self, link: Uplink) {
        let (dev, isp, ifc) = (&self.dev, self.isp_netns(link), link.iface());
        ip([
            "-n", dev, "link", "add", ifc, "type", "veth", "peer", "name", "dn0", "netns", isp,
        ]);
        ip([
            "-n",
            isp,
            "addr",
            "add",
            &format!("{}/24", link.gateway()),
            "dev",
            "dn0",
        ]);
        ip(["-n", isp, "link", "set", "dn0", "up"]);
        let gw6 = format!("{}/64", link.gateway6());
        ip(["-n", isp, "addr", "add", &gw6, "dev", "dn0", "nodad"]);
        if !self.configure_device {
            return;
        }
        ip([
            "-n",
            dev,
            "addr",
            "add",
            &format!("{}/24", link.dev_addr()),
            "dev",
            ifc,
        ]);
        ip(["-n", dev, "link", "set", ifc, "up"]);
        let gw = link.gateway().to_string();
        let metric = link.metric().to_string();
        ip([
            "-n", dev, "route", "add", "default", "via", &gw, "dev", ifc, "metric", &metric,
        ]);
        let dev6 = format!("{}/64", link.dev_addr6());
        ip(["-n", dev, "addr", "add", &dev6, "dev", ifc, "nodad"]);
        let gw6 = link.gateway6().to_string();
        ip([
            "-n", dev, "-6", "route", "add", "default", "via", &gw6, "dev", ifc, "metric", &metric,
        ]);
    }

    fn log_file(&self, name: &str) -> fs::File {
        let path = self.log_dir().join(name);
        fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
    }

    fn spawn_server(&self, log_name: &str, mut cmd: Command) {
        let log = self.log_file(log_name);
        let log2 = log.try_clone().expect("clone log file handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
        self.children
            .lock()
            .unwrap()
            .push((log_name.to_string(), child));
    }

    fn start_inet_servers(&self) {
        fs::write(self.hosts_file(), "").expect("write the testbed's hosts file");
        let dnsmasq = find_tool("dnsmasq").expect("dnsmasq not installed");
        let pid_file = self.log_dir().join("dnsmasq.pid");
        let args: Vec<String> = vec![
            dnsmasq.display().to_string(),
            "--no-daemon".into(),
            "--conf-file=/dev/null".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={DNS_SERVER},{DNS_SERVER_V6}"),
            format!("--address=/probe.test/{PROBE_ADDR}"),
            format!("--address=/www.probe.test/{PROBE_ADDR}"),
            format!("--address=/probe.test/{PROBE_ADDR_V6}"),
            format!("--address=/www.probe.test/{PROBE_ADDR_V6}"),
            // A name with only an AAAA: A queries get an empty answer, not a refusal.
            format!("--address=/{V6_ONLY_NAME}/{PROBE_ADDR_V6}"),
            format!("--local=/{V6_ONLY_NAME}/"),
            // Stand-ins for the `whatsapp` preset's hosts come from the hosts file
            // (set_hosts); any other name in these domains does not exist.
            format!("--addn-hosts={}", self.hosts_file().display()),
            "--local=/example.net/".into(),
            "--local=/example.com/".into(),
            format!("--pid-file={}", pid_file.display()),
            "--user=root".into(),
            "--group=root".into(),
            "--log-queries".into(),
            "--log-facility=-".into(),
        ];
        self.spawn_server("dnsmasq.log", exec_in(&self.inet, &args));

        let ready = self.log_dir().join("httpd-inet.ready");
        let mut args = vec![
            python().display().to_string(),
            fixture("httpd.py").display().to_string(),
            "--ready".into(),
            ready.display().to_string(),
        ];
        args.extend(HTTP_SERVERS.iter().map(|a| format!("{a}:80=normal")));
        args.extend(HTTP_SERVERS_V6.iter().map(|a| format!("[{a}]:80=normal")));
        self.spawn_server("httpd-inet.log", exec_in(&self.inet, &args));
        wait_until(
            READY_TIMEOUT,
            "the HTTP server in inet is listening",
            || {
                self.assert_servers_alive();
                ready.exists()
            },
        );
    }

    /// Panics (with the server's log) when a server the testbed started has exited.
    fn assert_servers_alive(&self) {
        let mut children = self.children.lock().unwrap();
        for (name, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    fs::read_to_string(self.log_dir().join(name.as_str())).unwrap_or_default();
                panic!("testbed server {name} exited ({status}):\n{log}");
            }
        }
    }

    // ----- names ---------------------------------------------------------------------------

    /// The per-instance prefix of all namespace names, e.g. `lw1234n0`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// Name of the device namespace.
    pub fn dev_netns(&self) -> &str {
        &self.dev
    }
    /// `/run/netns/<dev>`: open it and `setns` to enter the device namespace.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.dev)
    }
    pub fn isp_netns(&self, link: Uplink) -> &str {
        &self.isp[usize::from(link.number() - 1)]
    }
    pub fn inet_netns(&self) -> &str {
        &self.inet
    }
    /// All namespaces of this testbed: dev, isp1, isp2, isp3, inet.
    pub fn netns_names(&self) -> Vec<String> {
        let mut v = vec![self.dev.clone()];
        v.extend(self.isp.iter().cloned());
        v.push(self.inet.clone());
        v
    }
    /// Directory of the server logs (dnsmasq.log, httpd-inet.log, portal-ispN.log).
    pub fn log_dir(&self) -> &Path {
        self.tmp.as_ref().expect("testbed temp dir").path()
    }

    // ----- running things --------------------------------------------------------------------

    /// A Command running `args` in the device namespace (`ip netns exec DEV ARGS...`).
    pub fn exec_dev<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Command {
        exec_in(&self.dev, args)
    }
    pub fn exec_isp<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(
        &self,
        link: Uplink,
        args: I,
    ) -> Command {
        exec_in(self.isp_netns(link), args)
    }
    pub fn exec_inet<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Command {
        exec_in(&self.inet, args)
    }

    /// One ping from the device through `link` (`ping -c1 -W1 -I IFACE target`).
    pub fn ping(&self, link: Uplink, target: Ipv4Addr) -> bool {
        self.exec_dev([
            "ping",
            "-n",
            "-q",
            "-c1",
            "-W1",
            "-I",
            link.iface(),
            &target.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    }

    /// `count` pings `interval` apart through `link`; returns how many were answered.
    pub fn ping_count(
        &self,
        link: Uplink,
        target: Ipv4Addr,
        count: u32,
        interval: Duration,
    ) -> u32 {
        let out = self
            .exec_dev([
                "ping",
                "-n",
                "-q",
                &format!("-c{count}"),
                &format!("-i{:.3}", interval.as_secs_f64()),
                "-W1",
                "-I",
                link.iface(),
                &target.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run ping");
        let text = String::from_utf8_lossy(&out.stdout);
        // "40 packets transmitted, 21 received, 47.5% packet loss, time 412ms"
        text.lines()
            .find(|l| l.contains("packets transmitted"))
            .and_then(|l| l.split(", ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "unexpected ping output:\n{text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }

    fn probe(&self, args: &[String]) -> Result<serde_json::Value, String> {
        let mut cmd = self.exec_dev([python().as_os_str(), fixture("probe.py").as_os_str()]);
        cmd.args(args);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "probe.py gave no JSON ({e}): {cmd:?}\n--- stdout ---\n{stdout}--- stderr ---\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        match v.get("error") {
            Some(err) => Err(err.as_str().unwrap_or_default().to_string()),
            None => Ok(v),
        }
    }

    /// HTTP request from the device through `link` (socket bound with SO_BINDTODEVICE). `url`
    /// must be `http://` with a literal IPv4 host. Err on connection errors and timeouts; any
    /// HTTP status is Ok.
    pub fn http_get(
        &self,
        link: Uplink,
        url: &str,
        timeout: Duration,
    ) -> Result<HttpReply, String> {
        let v = self.probe(&[
            "http".into(),
            link.iface().into(),
            url.into(),
            "--timeout".into(),
            format!("{:.3}", timeout.as_secs_f64()),
        ])?;
        Ok(HttpReply {
            status: v["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .expect("status"),
            location: v["location"].as_str().map(str::to_string),
            body: v["body"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// DNS A query for `name` to [`DNS_SERVER`] from the device through `link`. Err on
    /// timeouts, network errors and a non-zero rcode.
    pub fn dns_query(
        &self,
        link: Uplink,
        name: &str,
        timeout: Duration,
    ) -> Result<Vec<Ipv4Addr>, String> {
        let v = self.probe(&[
            "dns".into(),
            link.iface().into(),
            DNS_SERVER.to_string(),
            name.into(),
            "--timeout".into(),
            format!("{:.3}", timeout.as_secs_f64()),
        ])?;
        match v["rcode"].as_u64() {
            Some(0) => Ok(v["a"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
                .unwrap_or_default()),
            rcode => Err(format!("DNS rcode {rcode:?} for {name}")),
        }
    }

    /// One ping (IPv4 or IPv6) from the device through `link`.
    pub fn ping_ip(&self, link: Uplink, target: IpAddr) -> bool {
        let family = if target.is_ipv6() { "-6" } else { "-4" };
        self.exec_dev([
            "ping",
            family,
            "-n",
            "-q",
            "-c1",
            "-W1",
            "-I",
            link.iface(),
            &target.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    }

    /// DNS query (A, or AAAA with `aaaa`) for `name` to `server` (IPv4 or IPv6) from the
    /// device through `link`. Err on timeouts, network errors and a non-zero rcode.
    pub fn dns_query_at(
        &self,
        link: Uplink,
        server: IpAddr,
        name: &str,
        aaaa: bool,
        timeout: Duration,
    ) -> Result<Vec<IpAddr>, String> {
        let mut args = vec![
            "dns".to_string(),
            link.iface().into(),
            server.to_string(),
            name.into(),
            "--timeout".into(),
            format!("{:.3}", timeout.as_secs_f64()),
        ];
        if aaaa {
            args.push("--aaaa".into());
        }
        let v = self.probe(&args)?;
        match v["rcode"].as_u64() {
            Some(0) => Ok(v["a"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
                .unwrap_or_default()),
            rcode => Err(format!("DNS rcode {rcode:?} for {name}")),
        }
    }

    fn read_dev_sysfs(&self, link: Uplink, attr: &str) -> Option<String> {
        let out = self
            .exec_dev(["cat", &format!("/sys/class/net/{}/{attr}", link.iface())])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Whether the device's interface for `link` exists.
    pub fn link_present(&self, link: Uplink) -> bool {
        self.exec_dev(["test", "-e", &format!("/sys/class/net/{}", link.iface())])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
    /// `/sys/class/net/IFACE/carrier` in the device namespace; None when the link is absent.
    pub fn carrier(&self, link: Uplink) -> Option<bool> {
        self.read_dev_sysfs(link, "carrier").map(|c| c == "1")
    }
    /// `/sys/class/net/IFACE/operstate` in the device namespace (`up`, `down`, ...).
    pub fn operstate(&self, link: Uplink) -> Option<String> {
        self.read_dev_sysfs(link, "operstate")
    }

    // ----- fault injection -----------------------------------------------------------------

    /// Applies an nft script in `ns` atomically.
    fn nft(&self, ns: &str, script: &str) {
        let mut child = exec_in(ns, ["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start nft in {ns}: {e}"));
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("nft stdin");
            stdin
                .write_all(script.as_bytes())
                .expect("write nft script");
        }
        let out = child.wait_with_output().expect("wait for nft");
        if !out.status.success() {
            panic!(
                "nft failed ({}) in {ns}:\n--- script ---\n{script}\n--- stderr ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Replaces (or with `body` None, removes) table `family name` in `ns`.
    fn nft_table(&self, ns: &str, family: &str, name: &str, body: Option<&str>) {
        let mut script = format!("table {family} {name} {{}}\ndelete table {family} {name}\n");
        if let Some(body) = body {
            script.push_str(&format!("table {family} {name} {{\n{body}\n}}\n"));
        }
        self.nft(ns, &script);
    }

    /// Silent upstream cut: the ISP drops everything it would forward (the device keeps its
    /// carrier and can still reach the ISP's own address).
    pub fn cut_upstream(&self, link: Uplink) {
        let body = "chain forward { type filter hook forward priority filter; policy drop; }";
        self.nft_table(self.isp_netns(link), "inet", "lw_cut", Some(body));
    }
    pub fn heal_upstream(&self, link: Uplink) {
        self.nft_table(self.isp_netns(link), "inet", "lw_cut", None);
    }

    /// The ISP sets its side of the device's veth down: the device's interface loses carrier.
    /// Returns once the device sees carrier 0.
    pub fn drop_carrier(&self, link: Uplink) {
        ip(["-n", self.isp_netns(link), "link", "set", "dn0", "down"]);
        wait_until(
            READY_TIMEOUT,
            &format!("{} has no carrier", link.iface()),
            || self.carrier(link) == Some(false),
        );
    }
    /// Undoes [`Self::drop_carrier`]; returns once the device sees carrier 1 and operstate up
    /// and its gateway on that link answers a ping (a ping sent while the carrier was down
    /// leaves an INCOMPLETE neighbour entry that otherwise delays traffic for up to 1 s).
    pub fn restore_carrier(&self, link: Uplink) {
        ip(["-n", self.isp_netns(link), "link", "set", "dn0", "up"]);
        self.wait_link_usable(link);
    }

    /// Carrier 1, operstate up, and the ISP's gateway address answers a ping through `link`
    /// (not affected by cut_upstream or set_loss, which act on forwarded traffic only).
    fn wait_link_usable(&self, link: Uplink) {
        let what = format!(
            "{} has carrier, is up and reaches its gateway",
            link.iface()
        );
        wait_until(READY_TIMEOUT, &what, || {
            self.carrier(link) == Some(true)
                && self.operstate(link).as_deref() == Some("up")
                && self
                    .exec_dev([
                        "ping",
                        "-n",
                        "-q",
                        "-c1",
                        "-W0.2",
                        "-I",
                        link.iface(),
                        &link.gateway().to_string(),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        });
    }

    /// Random loss of `pct` percent of the packets the ISP forwards toward inet (one direction
    /// only). Replaces an earlier loss setting; 0 clears it.
    pub fn set_loss(&self, link: Uplink, pct: u8) {
        assert!(pct <= 100, "loss percentage {pct} > 100");
        if pct == 0 {
            return self.clear_loss(link);
        }
        // numgen values are 0..=99, and nft rejects `< 100`: 100 % is a plain drop.
        let matcher = if pct == 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {pct} ")
        };
        let body = format!(
            "chain forward {{ type filter hook forward priority filter; policy accept; \
             oifname \"up0\" {matcher}drop; }}"
        );
        self.nft_table(self.isp_netns(link), "inet", "lw_loss", Some(&body));
    }
    pub fn clear_loss(&self, link: Uplink) {
        self.nft_table(self.isp_netns(link), "inet", "lw_loss", None);
    }

    /// Captive portal on `link`'s ISP: every new TCP connection from the device to port 80
    /// (any destination) is DNATed to the portal server; None switches it off. The portal
    /// server is started on first use and keeps running.
    pub fn captive(&self, link: Uplink, mode: Option<PortalMode>) {
        let isp = self.isp_netns(link);
        let Some(mode) = mode else {
            return self.nft_table(isp, "ip", "lw_portal", None);
        };
        self.ensure_portal(link);
        let port = match mode {
            PortalMode::Redirect => PORTAL_REDIRECT_PORT,
            PortalMode::LoginPage => PORTAL_LOGIN_PORT,
        };
        let body = format!(
            "chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; \
             iifname \"dn0\" tcp dport 80 dnat to {}:{port}; }}",
            link.isp_uplink_addr()
        );
        self.nft_table(isp, "ip", "lw_portal", Some(&body));
    }

    fn ensure_portal(&self, link: Uplink) {
        let i = usize::from(link.number() - 1);
        if self.portal_started.lock().unwrap()[i] {
            return;
        }
        let n = link.number();
        let ready = self.log_dir().join(format!("portal-isp{n}.ready"));
        let addr = link.isp_uplink_addr();
        let args = vec![
            python().display().to_string(),
            fixture("httpd.py").display().to_string(),
            "--ready".into(),
            ready.display().to_string(),
            "--location".into(),
            link.portal_location(),
            format!("{addr}:{PORTAL_REDIRECT_PORT}=redirect"),
            format!("{addr}:{PORTAL_LOGIN_PORT}=login"),
        ];
        self.spawn_server(
            &format!("portal-isp{n}.log"),
            exec_in(self.isp_netns(link), &args),
        );
        wait_until(
            READY_TIMEOUT,
            &format!("the portal in isp{n} is listening"),
            || {
                self.assert_servers_alive();
                ready.exists()
            },
        );
        self.portal_started.lock().unwrap()[i] = true;
    }

    /// Deletes the device's interface for `link` (both veth ends): the link is `absent`.
    pub fn remove_link(&self, link: Uplink) {
        ip(["-n", &self.dev, "link", "del", link.iface()]);
        wait_until(READY_TIMEOUT, &format!("{} is gone", link.iface()), || {
            !self.link_present(link)
        });
    }
    /// Recreates the interface removed by [`Self::remove_link`] with its address and default
    /// route; returns once it has carrier, is up and reaches its gateway. (Unconfigured
    /// testbed: recreates the bare veth pair and returns at once.)
    pub fn add_link(&self, link: Uplink) {
        self.create_device_link(link);
        if self.configure_device {
            self.wait_link_usable(link);
        }
    }

    fn dump_logs(&self) {
        let Ok(entries) = fs::read_dir(self.log_dir()) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        paths.sort();
        for path in paths {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("----- {} (last {} lines) -----", path.display(), tail.len());
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

impl Default for Testbed {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let children = match self.children.get_mut() {
            Ok(c) => std::mem::take(c),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for (_, mut child) in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.created {
            // Anything still running inside (e.g. a program a test spawned with exec_dev and
            // did not wait for) would keep the namespace alive after `ip netns del`.
            for pid in netns_pids(ns) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            if let Err(e) = try_run(Command::new("ip").args(["netns", "del", ns])) {
                eprintln!("testbed cleanup: {e}");
            }
        }
        if std::thread::panicking() {
            self.dump_logs();
        }
        if std::env::var_os("LW_TESTBED_KEEP_LOGS").is_some()
            && let Some(tmp) = self.tmp.take()
        {
            eprintln!(
                "testbed {}: logs kept in {}",
                self.prefix,
                tmp.keep().display()
            );
        }
    }
}
