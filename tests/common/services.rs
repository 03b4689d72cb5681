//! Stand-in services in the testbed's `inet` namespace, for what the fixed
//! servers do not cover: names dnsmasq answers from a hosts file the test
//! writes ([`Testbed::set_hosts`]), extra HTTP and HTTPS servers
//! ([`Testbed::serve_http`], certificates from [`super::tls`]) and services
//! that refuse connections for a while ([`Testbed::refuse_tcp`]).

use super::{READY_TIMEOUT, Testbed, exec_in, fixture, python, run, tls, wait_until};
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;

impl Testbed {
    /// The hosts file dnsmasq answers from besides its fixed names.
    pub fn hosts_file(&self) -> PathBuf {
        self.log_dir().join("hosts")
    }

    /// Make dnsmasq answer `entries` (name, address; several addresses per name allowed) and
    /// nothing else from its hosts file (names set earlier are forgotten). Returns once
    /// dnsmasq has read the new file.
    pub fn set_hosts(&self, entries: &[(&str, IpAddr)]) {
        let text: String = entries
            .iter()
            .map(|(name, addr)| format!("{addr} {name}\n"))
            .collect();
        let hosts = self.hosts_file();
        fs::write(&hosts, text).expect("write the testbed's hosts file");
        let log = self.log_dir().join("dnsmasq.log");
        let needle = format!("read {}", hosts.display());
        let reads = || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .matches(&needle)
                .count()
        };
        let before = reads();
        // `ip netns exec` execs the program: the child is dnsmasq itself.
        let pid = self
            .children
            .lock()
            .unwrap()
            .iter()
            .find(|(name, _)| name == "dnsmasq.log")
            .map(|(_, child)| child.id().to_string())
            .expect("dnsmasq runs");
        // SIGHUP: dnsmasq clears its cache and reads its hosts files again.
        run(Command::new("kill").args(["-HUP", &pid]));
        wait_until(READY_TIMEOUT, "dnsmasq read the new hosts file", || {
            self.assert_servers_alive();
            reads() > before
        });
    }

    /// Start httpd.py in inet (mode `normal`) on each `(address, certificate)`: plain HTTP
    /// without a certificate, HTTPS with one. Returns once every listener accepts connections;
    /// the servers run until the testbed is dropped.
    pub fn serve_http(&self, listeners: &[(SocketAddr, Option<&tls::ServerCert>)]) {
        let n = self.extra_servers.fetch_add(1, Ordering::SeqCst);
        let ready = self.log_dir().join(format!("httpd-extra{n}.ready"));
        let mut args = vec![
            python().display().to_string(),
            fixture("httpd.py").display().to_string(),
            "--ready".into(),
            ready.display().to_string(),
        ];
        for (addr, cert) in listeners {
            let mut spec = format!("{addr}=normal");
            if let Some(c) = cert {
                spec.push_str(&format!(";tls={},{}", c.cert.display(), c.key.display()));
            }
            args.push(spec);
        }
        self.spawn_server(&format!("httpd-extra{n}.log"), exec_in(&self.inet, &args));
        wait_until(
            READY_TIMEOUT,
            "the extra HTTP servers are listening",
            || {
                self.assert_servers_alive();
                ready.exists()
            },
        );
    }

    /// inet refuses TCP connections to `service` (a reset, as from a stopped server) until
    /// [`Self::accept_tcp`].
    pub fn refuse_tcp(&self, service: SocketAddr) {
        let mut refused = self.refused.lock().unwrap();
        if !refused.contains(&service) {
            refused.push(service);
        }
        self.apply_refused(&refused);
    }
    pub fn accept_tcp(&self, service: SocketAddr) {
        let mut refused = self.refused.lock().unwrap();
        refused.retain(|s| *s != service);
        self.apply_refused(&refused);
    }

    fn apply_refused(&self, refused: &[SocketAddr]) {
        if refused.is_empty() {
            return self.nft_table(&self.inet, "inet", "lw_refuse", None);
        }
        let rules: String = refused
            .iter()
            .map(|s| {
                let family = if s.is_ipv6() { "ip6" } else { "ip" };
                format!(
                    "{family} daddr {} tcp dport {} reject with tcp reset; ",
                    s.ip(),
                    s.port()
                )
            })
            .collect();
        let body = format!(
            "chain input {{ type filter hook input priority filter; policy accept; {rules}}}"
        );
        self.nft_table(&self.inet, "inet", "lw_refuse", Some(&body));
    }
}
