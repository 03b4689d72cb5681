//! A real NetworkManager (Debian's `network-manager`) managing the testbed's uplinks, as on an
//! officer's laptop, without touching the machine's own networking.
//!
//! [`NmBed::new`] builds an unconfigured [`Testbed`] (the device's veths bb0, wl0, mb0 have no
//! addresses or routes), then starts inside the device namespace:
//! - a private D-Bus system bus: `dbus-daemon` with its own config (the system bus's default
//!   policy plus NetworkManager's own `/usr/share/dbus-1/system.d` policy file) and its own
//!   socket in the test's temporary directory; NetworkManager, `nmcli` and the agent find it
//!   through `DBUS_SYSTEM_BUS_ADDRESS`;
//! - NetworkManager in a private mount and UTS namespace (`unshare -m -u` inside
//!   `ip netns exec`): temporary directories are bind-mounted over `/etc/NetworkManager`,
//!   `/var/lib/NetworkManager` and `/run` (with an empty `/run/NetworkManager`), so it reads
//!   only the config and keyfile profiles the test writes and keeps its state in the test's
//!   directory, over `/etc/resolv.conf` (the testbed's dnsmasq, nothing else) and over
//!   `/etc/hosts` (the check's host name, see [`NmOptions::check_host_in_hosts`]); `hostname-mode=none`, `dns=none` and `rc-manager=unmanaged`, so it leaves the
//!   host name and resolv.conf alone. `/sys` is remounted read-only in that namespace: this
//!   is how NetworkManager knows it runs without udev (as in a container). With a writable
//!   `/sys` it waits forever for udev to announce each interface ("startup complete is
//!   waiting for device 'lo' (link-init)") and never manages them.
//!
//! Profiles (keyfiles, one per uplink, `lw-bb0`, `lw-wl0`, `lw-mb0`): static IPv4 and IPv6
//! addresses and gateways as in the plain testbed, route metrics like a laptop (bb0 left at
//! NetworkManager's default for its device type, which is 100 for Ethernet and veth; wl0 600
//! like Wi-Fi; mb0 700 like mobile broadband; see [`NmOptions`]). `auth-polkit=root-only`: only
//! root may change anything, so a non-root caller is denied as polkit would deny it.
//! Connectivity checking against [`CHECK_URI`] (expects 204) at an interval
//! the test picks, or switched off.
//!
//! The machine itself never gets a NetworkManager: NetworkManager only ever runs inside the
//! namespaces the test creates, and `Drop` stops it and the bus before the testbed goes.

use super::{
    DNS_SERVER, DNS_SERVER_V6, PROBE_ADDR, PROBE_ADDR_V6, PROBE_NAMES, Testbed, Uplink, find_tool,
    require_tool, try_run, wait_until,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// NetworkManager's connectivity check in the testbed (answered by inet's HTTP server).
/// Its host name resolves (from NetworkManager's hosts file, or through the testbed's dnsmasq,
/// the only nameserver NetworkManager sees) to 192.0.2.1 and 2001:db8:ff::1, so IPv4 and IPv6
/// connectivity are both checked.
pub const CHECK_URI: &str = "http://probe.test/generate_204";

/// Deadline for NetworkManager to start and activate the three profiles.
const NM_READY: Duration = Duration::from_secs(30);

/// NetworkManager's connectivity checking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectivity {
    /// No `[connectivity]` section: no checks (Debian's default without the
    /// connectivity package).
    Off,
    /// Checks against [`CHECK_URI`]; `interval` None is NetworkManager's default (300 s).
    On { interval: Option<u32> },
}

#[derive(Clone, Debug)]
pub struct NmOptions {
    /// `ipv4.route-metric` and `ipv6.route-metric` of the profiles of bb0, wl0, mb0; None
    /// leaves the key out (NetworkManager's default for the device type, `-1`).
    pub metrics: [Option<u32>; 3],
    pub connectivity: Connectivity,
    /// The check's host name resolves from NetworkManager's `/etc/hosts` (true, the default)
    /// or through DNS (false). NetworkManager without systemd-resolved resolves it with the
    /// system's resolver, through whichever link carries the default route: when that link's
    /// upstream dies, every link's check fails alike, every link gets the same penalty and
    /// the route never moves. A hosts entry stands in for systemd-resolved's per-link
    /// resolution, NetworkManager's best case.
    pub check_host_in_hosts: bool,
}

impl Default for NmOptions {
    fn default() -> Self {
        NmOptions {
            metrics: [None, Some(600), Some(700)],
            connectivity: Connectivity::On { interval: None },
            check_host_in_hosts: true,
        }
    }
}

/// Everything [`NmBed`] needs besides the testbed's own tools; prints why not and returns
/// false when something is missing.
pub fn nm_available() -> bool {
    super::testbed_available()
        && [
            "NetworkManager",
            "nmcli",
            "dbus-daemon",
            "unshare",
            "nsenter",
        ]
        .iter()
        .all(|t| require_tool(t))
}

/// The uuid of the test's profile for `link`.
pub fn profile_uuid(link: Uplink) -> String {
    format!("6b6f0d3e-0000-4000-8000-00000000000{}", link.number())
}

/// The id (name) of the test's profile for `link`.
pub fn profile_id(link: Uplink) -> String {
    format!("lw-{}", link.iface())
}

pub struct NmBed {
    pub tb: Testbed,
    dir: tempfile::TempDir,
    bus: Mutex<Option<Child>>,
    nm: Mutex<Option<Child>>,
    opts: NmOptions,
}

impl NmBed {
    /// The testbed, its private bus and NetworkManager with the three profiles; returns once
    /// NetworkManager has activated all three and DNS, HTTP and IPv6 work through each link.
    pub fn new(opts: NmOptions) -> NmBed {
        let started = Instant::now();
        let tb = Testbed::new_unconfigured();
        let dir = tempfile::Builder::new()
            .prefix("linkwatch-nm-")
            .tempdir()
            .expect("create NetworkManager's temporary directory");
        // The bus socket's directory must be reachable by the non-root user of the
        // permission test.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let bed = NmBed {
            tb,
            dir,
            bus: Mutex::new(None),
            nm: Mutex::new(None),
            opts,
        };
        bed.write_files();
        bed.start_bus();
        bed.start_nm();
        bed.wait_activated();
        bed.tb.wait_ready();
        eprintln!(
            "NetworkManager testbed {} ready in {:?}",
            bed.tb.prefix(),
            started.elapsed()
        );
        bed
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `unix:path=...` of the private system bus.
    pub fn bus_address(&self) -> String {
        format!("unix:path={}", self.path("bus/socket").display())
    }

    /// The keyfile of `link`'s profile.
    pub fn profile_path(&self, link: Uplink) -> PathBuf {
        self.path(&format!(
            "etc/system-connections/{}.nmconnection",
            profile_id(link)
        ))
    }

    /// NetworkManager's log (stderr, info level).
    pub fn nm_log(&self) -> String {
        fs::read_to_string(self.path("NetworkManager.log")).unwrap_or_default()
    }

    fn write_files(&self) {
        for d in ["bus", "etc/system-connections", "etc/conf.d", "lib", "run"] {
            fs::create_dir_all(self.path(d)).expect("create directory");
        }
        fs::set_permissions(self.path("bus"), fs::Permissions::from_mode(0o755)).expect("chmod");
        let bus_conf = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include ignore_missing="no">/usr/share/dbus-1/system.d/org.freedesktop.NetworkManager.conf</include>
</busconfig>
"#,
            socket = self.path("bus/socket").display()
        );
        fs::write(self.path("bus.conf"), bus_conf).expect("write bus.conf");
        // Names (the connectivity check's host) are resolved by the testbed's dnsmasq only.
        fs::write(
            self.path("resolv.conf"),
            format!("nameserver {DNS_SERVER}\nnameserver {DNS_SERVER_V6}\n"),
        )
        .expect("write resolv.conf");
        let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
        if self.opts.check_host_in_hosts {
            hosts.push_str(&format!(
                "{PROBE_ADDR} {PROBE_NAMES0}\n{PROBE_ADDR_V6} {PROBE_NAMES0}\n",
                PROBE_NAMES0 = PROBE_NAMES[0]
            ));
        }
        fs::write(self.path("hosts"), hosts).expect("write hosts");

        let connectivity = match self.opts.connectivity {
            Connectivity::Off => String::new(),
            Connectivity::On { interval } => format!(
                "\n[connectivity]\nenabled=true\nuri={CHECK_URI}\nresponse=\n{}",
                interval
                    .map(|i| format!("interval={i}\n"))
                    .unwrap_or_default()
            ),
        };
        let nm_conf = format!(
            "[main]\nplugins=keyfile\nno-auto-default=*\nauth-polkit=root-only\n\
             hostname-mode=none\ndns=none\nrc-manager=unmanaged\nsystemd-resolved=false\n\
             \n[logging]\nlevel=INFO\n\
             \n[keyfile]\nunmanaged-devices=except:interface-name:bb0;except:interface-name:wl0;except:interface-name:mb0\n\
             {connectivity}"
        );
        fs::write(self.path("etc/NetworkManager.conf"), nm_conf).expect("write config");
        for link in Uplink::ALL {
            self.write_profile(link);
        }
    }

    fn write_profile(&self, link: Uplink) {
        let metric = self.opts.metrics[usize::from(link.number() - 1)]
            .map(|m| format!("route-metric={m}\n"))
            .unwrap_or_default();
        let text = format!(
            "[connection]\nid={id}\nuuid={uuid}\ntype=ethernet\ninterface-name={ifc}\n\
             autoconnect=true\nautoconnect-retries=0\n\
             \n[ethernet]\n\
             \n[ipv4]\nmethod=manual\naddress1={a4}/24,{g4}\n{metric}\
             \n[ipv6]\nmethod=manual\naddr-gen-mode=eui64\naddress1={a6}/64,{g6}\n{metric}",
            id = profile_id(link),
            uuid = profile_uuid(link),
            ifc = link.iface(),
            a4 = link.dev_addr(),
            g4 = link.gateway(),
            a6 = link.dev_addr6(),
            g6 = link.gateway6(),
        );
        let path = self.profile_path(link);
        fs::write(&path, text).expect("write profile");
        // NetworkManager ignores keyfiles others can read.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod profile");
    }

    fn start_bus(&self) {
        let dbus = find_tool("dbus-daemon").expect("dbus-daemon");
        let log = fs::File::create(self.path("dbus.log")).expect("bus log");
        let child = self
            .tb
            .exec_dev([
                dbus.as_os_str(),
                "--nofork".as_ref(),
                format!("--config-file={}", self.path("bus.conf").display()).as_ref(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dbus-daemon");
        *self.bus.lock().unwrap() = Some(child);
        let socket = self.path("bus/socket");
        wait_until(Duration::from_secs(10), "the private bus listens", || {
            socket.exists()
        });
    }

    /// Starts NetworkManager (again, after [`Self::stop_nm`]); returns once it owns its name
    /// on the bus.
    pub fn start_nm(&self) {
        let nm = find_tool("NetworkManager").expect("NetworkManager");
        let script = format!(
            "set -e\n\
             mount --bind {run} /run\n\
             mkdir -p /run/NetworkManager\n\
             mount --bind {etc} /etc/NetworkManager\n\
             mount --bind {lib} /var/lib/NetworkManager\n\
             target=$(readlink -f /etc/resolv.conf)\n\
             case \"$target\" in /run/*) mkdir -p \"$(dirname \"$target\")\"; : > \"$target\";; esac\n\
             mount --bind {resolv} \"$target\"\n\
             mount --bind {hosts} /etc/hosts\n\
             mount -o remount,ro /sys\n\
             exec {nm} --no-daemon --debug\n",
            run = self.path("run").display(),
            etc = self.path("etc").display(),
            lib = self.path("lib").display(),
            resolv = self.path("resolv.conf").display(),
            hosts = self.path("hosts").display(),
            nm = nm.display(),
        );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("NetworkManager.log"))
            .expect("NetworkManager log");
        let log2 = log.try_clone().expect("clone log");
        let child = self
            .tb
            .exec_dev([
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("start NetworkManager");
        *self.nm.lock().unwrap() = Some(child);
        wait_until(NM_READY, "NetworkManager runs on the private bus", || {
            self.assert_nm_alive();
            self.try_nmcli(&["-t", "-f", "RUNNING", "general"])
                .is_ok_and(|o| o.trim() == "running")
        });
    }

    fn assert_nm_alive(&self) {
        if let Some(child) = self.nm.lock().unwrap().as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("NetworkManager exited ({status}):\n{}", self.nm_log());
        }
    }

    /// Waits until NetworkManager has activated the profiles of all three links.
    pub fn wait_activated(&self) {
        for link in Uplink::ALL {
            self.wait_link_activated(link);
        }
    }

    /// Waits until `link`'s device is `connected` with its profile.
    pub fn wait_link_activated(&self, link: Uplink) {
        let mut last = String::new();
        let start = Instant::now();
        loop {
            self.assert_nm_alive();
            last = self
                .try_nmcli(&["-t", "-f", "DEVICE,STATE,CONNECTION", "device"])
                .unwrap_or(last);
            let want = format!("{}:connected:{}", link.iface(), profile_id(link));
            if last.lines().any(|l| l == want) {
                return;
            }
            assert!(
                start.elapsed() < NM_READY,
                "NetworkManager did not activate {} within {NM_READY:?}: devices\n{last}\nlog:\n{}",
                link.iface(),
                self.nm_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of NetworkManager (for `nsenter`), None when stopped.
    pub fn nm_pid(&self) -> Option<u32> {
        self.nm.lock().unwrap().as_ref().map(|c| c.id())
    }

    /// Stops NetworkManager (SIGTERM; it leaves the links configured, as on a real system) and
    /// waits for it to exit.
    pub fn stop_nm(&self) {
        let Some(mut child) = self.nm.lock().unwrap().take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A command in the device namespace and NetworkManager's mount namespace (where
    /// `/etc/NetworkManager` is the test's), with the private bus in
    /// `DBUS_SYSTEM_BUS_ADDRESS`: how the agent sees a laptop.
    pub fn exec_nm<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let pid = self.nm_pid().expect("NetworkManager runs").to_string();
        let mut all: Vec<std::ffi::OsString> = ["nsenter", "-t", &pid, "-m", "-u", "--"]
            .iter()
            .map(Into::into)
            .collect();
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        let mut cmd = self.tb.exec_dev(all);
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address());
        cmd
    }

    /// The prefix that runs a program the way [`Self::exec_nm`] does (for
    /// [`super::agent::Agent::spawn_env`]).
    pub fn agent_prefix(&self) -> Vec<String> {
        let pid = self.nm_pid().expect("NetworkManager runs").to_string();
        ["nsenter", "-t", &pid, "-m", "-u", "--"]
            .map(String::from)
            .to_vec()
    }

    pub fn try_nmcli(&self, args: &[&str]) -> Result<String, String> {
        let out = try_run(
            self.tb
                .exec_dev(std::iter::once("nmcli").chain(args.iter().copied()))
                .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address()),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `nmcli ARGS` on the private bus; panics with its error output on failure.
    pub fn nmcli(&self, args: &[&str]) -> String {
        self.try_nmcli(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `ipv4.route-metric` of `link`'s saved profile, as NetworkManager reports it.
    pub fn profile_metric(&self, link: Uplink) -> i64 {
        self.nmcli(&[
            "-g",
            "ipv4.route-metric",
            "connection",
            "show",
            &profile_id(link),
        ])
        .trim()
        .parse()
        .expect("route metric")
    }

    /// The kernel's default routes in the device namespace: (interface, metric), IPv4 or IPv6.
    pub fn default_routes(&self, ipv6: bool) -> Vec<(String, u32)> {
        let family = if ipv6 { "-6" } else { "-4" };
        let out = super::run(
            &mut self
                .tb
                .exec_dev(["ip", family, "-j", "route", "show", "default"]),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let mut routes: Vec<(String, u32)> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| {
                        Some((
                            r["dev"].as_str()?.to_string(),
                            r["metric"].as_u64().unwrap_or(0) as u32,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        routes.sort();
        routes
    }

    /// The metric of the kernel's default route through `link` (IPv4 or IPv6).
    pub fn route_metric(&self, link: Uplink, ipv6: bool) -> Option<u32> {
        self.default_routes(ipv6)
            .into_iter()
            .find(|(d, _)| d == link.iface())
            .map(|(_, m)| m)
    }

    /// The interface the kernel picks for internet traffic (`ip route get 192.0.2.1`; with
    /// `ipv6`, 2001:db8:ff::1).
    pub fn kernel_route(&self, ipv6: bool) -> String {
        let (family, target) = if ipv6 {
            ("-6", "2001:db8:ff::1")
        } else {
            ("-4", "192.0.2.1")
        };
        let out = self
            .tb
            .exec_dev(["ip", family, "-j", "route", "get", target])
            .stdin(Stdio::null())
            .output()
            .expect("ip route get");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v[0]["dev"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until the kernel routes internet traffic (IPv4) through `link`; the time it took.
    pub fn wait_kernel_route(
        &self,
        link: Uplink,
        deadline: Duration,
        log: impl Fn() -> String,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if self.kernel_route(false) == link.iface() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < deadline,
                "the kernel's route is not on {} within {deadline:?}: on {:?}, default routes {:?}\n{}",
                link.iface(),
                self.kernel_route(false),
                self.default_routes(false),
                log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Path of NetworkManager's config as the agent sees it (inside NetworkManager's mount
    /// namespace it is `/etc/NetworkManager/NetworkManager.conf`).
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for NmBed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.nm_log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("----- NetworkManager (last 80 lines) -----");
            for l in &lines[lines.len().saturating_sub(80)..] {
                eprintln!("{l}");
            }
        }
        self.stop_nm();
        if let Some(mut bus) = self.bus.lock().unwrap().take() {
            let _ = bus.kill();
            let _ = bus.wait();
        }
    }
}
