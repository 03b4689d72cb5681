//! The agent's probe vocabulary as written in its configuration: one probe
//! (`type = "icmp"`, `dns`, `http`, `tcp`), the `[probe_defaults]` that
//! apply to every probe and preset (the nameservers that resolve names in
//! probe targets, a private CA for HTTPS), and their checks. Every key is
//! documented in `config.example.toml`.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// What a probe counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeRole {
    /// Reachability: decides `up`/`down` through the round quorum.
    Reach,
    /// Application check: a failure makes the link `degraded` with a reason.
    App,
}

/// A DNS server as written in the config: `"10.20.0.53"` (port 53),
/// `"10.20.0.53:5353"`, `"2001:db8::53"` or `"[2001:db8::53]:53"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameServer(pub SocketAddr);

impl NameServer {
    /// Parse the config spelling; the error says what is accepted.
    pub fn parse(s: &str) -> Result<NameServer, String> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(NameServer(a));
        }
        match s.parse::<IpAddr>() {
            Ok(ip) => Ok(NameServer(SocketAddr::new(ip, 53))),
            Err(_) => Err(format!(
                "`{s}` is not a nameserver address: write an IP address such as \"10.20.0.53\" \
                 or \"2001:db8::53\", optionally with a port (\"[2001:db8::53]:53\")"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for NameServer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NameServer::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for NameServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One probe, as written in the config (`type = "icmp"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProbeSpec {
    /// ICMP echo to an address.
    Icmp {
        target: IpAddr,
        #[serde(default)]
        role: Option<ProbeRole>,
    },
    /// A DNS query for `name` sent to `server` through the link, cache off.
    Dns {
        server: SocketAddr,
        name: String,
        /// Ask for AAAA instead of A.
        #[serde(default)]
        ipv6: bool,
        #[serde(default)]
        role: Option<ProbeRole>,
    },
    /// An HTTP or HTTPS request through the link.
    Http {
        url: String,
        #[serde(default = "default_expect_status")]
        expect_status: u16,
        #[serde(default)]
        body_contains: Option<String>,
        /// Captive-portal check: a redirect or a login page instead of the
        /// expected answer marks the link `degraded`, reason `captive`.
        #[serde(default)]
        captive: bool,
        /// Extra CA certificate(s), PEM, trusted for this HTTPS check
        /// besides the system's (default: `probe_defaults.ca_file`).
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Nameservers for the URL's host name (default:
        /// `probe_defaults.nameservers`, else the system's).
        #[serde(default)]
        nameservers: Option<Vec<NameServer>>,
        #[serde(default)]
        role: Option<ProbeRole>,
    },
    /// A TCP connect to `host:port` (a name is resolved through the link).
    Tcp {
        target: String,
        /// Nameservers for the target's host name (default:
        /// `probe_defaults.nameservers`, else the system's).
        #[serde(default)]
        nameservers: Option<Vec<NameServer>>,
        #[serde(default)]
        role: Option<ProbeRole>,
    },
}

fn default_expect_status() -> u16 {
    200
}

impl ProbeSpec {
    /// ICMP and TCP decide reachability by default; DNS and HTTP are application checks.
    pub fn role(&self) -> ProbeRole {
        match self {
            ProbeSpec::Icmp { role, .. } | ProbeSpec::Tcp { role, .. } => {
                role.unwrap_or(ProbeRole::Reach)
            }
            ProbeSpec::Dns { role, .. } | ProbeSpec::Http { role, .. } => {
                role.unwrap_or(ProbeRole::App)
            }
        }
    }
    /// Short human label, unique enough for logs and metrics.
    pub fn label(&self) -> String {
        match self {
            ProbeSpec::Icmp { target, .. } => format!("icmp {target}"),
            ProbeSpec::Dns { server, name, .. } => format!("dns {name} @{server}"),
            ProbeSpec::Http { url, .. } => format!("http {url}"),
            ProbeSpec::Tcp { target, .. } => format!("tcp {target}"),
        }
    }
    /// The probe needs IPv6 on the link.
    pub fn is_ipv6(&self) -> bool {
        match self {
            ProbeSpec::Icmp { target, .. } => target.is_ipv6(),
            ProbeSpec::Dns { server, .. } => server.is_ipv6(),
            ProbeSpec::Tcp { target, .. } => target.starts_with('['),
            ProbeSpec::Http { url, .. } => url.contains("://["),
        }
    }
    /// The kind word: icmp, dns, http, tcp.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Icmp { .. } => "icmp",
            ProbeSpec::Dns { .. } => "dns",
            ProbeSpec::Http { .. } => "http",
            ProbeSpec::Tcp { .. } => "tcp",
        }
    }
}

/// `[probe_defaults]`: settings for every probe that does not set its own,
/// the presets' probes included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeDefaults {
    /// Nameservers that resolve the host names in TCP and HTTP targets
    /// (through the probed link); the presets' DNS checks ask the first of
    /// them instead of their public resolver. Empty: the system's
    /// (`/etc/resolv.conf`), and the presets' own resolvers.
    pub nameservers: Vec<NameServer>,
    /// Extra CA certificate(s), PEM, that HTTPS checks trust besides the
    /// system's (a private or government CA).
    pub ca_file: Option<PathBuf>,
}

impl ProbeDefaults {
    /// `probes` with these defaults filled in. `preset` says they come from
    /// a preset, whose DNS checks then ask the first configured nameserver.
    pub fn apply(&self, probes: Vec<ProbeSpec>, preset: bool) -> Vec<ProbeSpec> {
        probes
            .into_iter()
            .map(|mut p| {
                match &mut p {
                    ProbeSpec::Http {
                        ca_file,
                        nameservers,
                        ..
                    } => {
                        if ca_file.is_none() {
                            ca_file.clone_from(&self.ca_file);
                        }
                        self.fill(nameservers);
                    }
                    ProbeSpec::Tcp { nameservers, .. } => self.fill(nameservers),
                    ProbeSpec::Dns { server, .. } => {
                        if preset && let Some(first) = self.nameservers.first() {
                            *server = first.0;
                        }
                    }
                    ProbeSpec::Icmp { .. } => {}
                }
                p
            })
            .collect()
    }

    fn fill(&self, nameservers: &mut Option<Vec<NameServer>>) {
        if nameservers.is_none() && !self.nameservers.is_empty() {
            *nameservers = Some(self.nameservers.clone());
        }
    }
}

/// Split `host:port` (`[v6]:port` for IPv6 literals).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_string(), port))
}

/// A bad key: the key (below the one passed in) and the message.
pub type KeyError = (String, String);

/// Check a CA file the way an HTTPS probe will use it: readable, and PEM
/// with at least one certificate that parses.
pub fn check_ca_file(key: &str, path: &Path) -> Result<(), KeyError> {
    crate::shared::ca_file::load_ca_file(path)
        .map(|_| ())
        .map_err(|e| (key.to_string(), e.to_string()))
}

fn check_nameservers(key: &str, servers: &Option<Vec<NameServer>>) -> Result<(), KeyError> {
    if servers.as_ref().is_some_and(Vec::is_empty) {
        return Err((
            key.to_string(),
            "must name at least one server, or be left out to use the defaults".into(),
        ));
    }
    Ok(())
}

/// Check the probes listed under `key` (`probes`, `link[0].probes`).
pub fn check_probes(key: &str, probes: &[ProbeSpec]) -> Result<(), KeyError> {
    for (i, p) in probes.iter().enumerate() {
        let key = format!("{key}[{i}]");
        match p {
            ProbeSpec::Http {
                url,
                ca_file,
                nameservers,
                ..
            } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err((
                        format!("{key}.url"),
                        format!("`{url}` must start with http:// or https://"),
                    ));
                }
                if reqwest::Url::parse(url).is_err() {
                    return Err((format!("{key}.url"), format!("`{url}` is not a valid URL")));
                }
                if let Some(ca) = ca_file {
                    check_ca_file(&format!("{key}.ca_file"), ca)?;
                }
                check_nameservers(&format!("{key}.nameservers"), nameservers)?;
            }
            ProbeSpec::Tcp {
                target,
                nameservers,
                ..
            } => {
                if split_host_port(target).is_none() {
                    return Err((
                        format!("{key}.target"),
                        format!("`{target}` must be host:port, for example \"example.org:443\""),
                    ));
                }
                check_nameservers(&format!("{key}.nameservers"), nameservers)?;
            }
            ProbeSpec::Dns { name, .. } => {
                if name.is_empty() || name.contains(' ') {
                    return Err((
                        format!("{key}.name"),
                        "must be a DNS name such as \"example.org\"".into(),
                    ));
                }
            }
            ProbeSpec::Icmp { .. } => {}
        }
    }
    Ok(())
}

/// Check `[probe_defaults]`.
pub fn check_defaults(d: &ProbeDefaults) -> Result<(), KeyError> {
    if let Some(ca) = &d.ca_file {
        check_ca_file("probe_defaults.ca_file", ca)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> NameServer {
        NameServer::parse(s).unwrap()
    }

    #[test]
    fn nameservers_take_addresses_with_or_without_port() {
        assert_eq!(ns("10.20.0.53").0, "10.20.0.53:53".parse().unwrap());
        assert_eq!(ns("10.20.0.53:5353").0.port(), 5353);
        assert_eq!(ns("2001:db8::53").0, "[2001:db8::53]:53".parse().unwrap());
        assert_eq!(ns("[2001:db8::53]:54").0.port(), 54);
        let e = NameServer::parse("dns.example").unwrap_err();
        assert!(e.contains("not a nameserver address"), "{e}");
    }

    #[test]
    fn defaults_fill_what_a_probe_leaves_open() {
        let d = ProbeDefaults {
            nameservers: vec![ns("198.51.100.53")],
            ca_file: Some("/etc/ca.pem".into()),
        };
        let own_ns = Some(vec![ns("10.0.0.53")]);
        let probes = vec![
            ProbeSpec::Http {
                url: "https://a.test/".into(),
                expect_status: 200,
                body_contains: None,
                captive: false,
                ca_file: None,
                nameservers: None,
                role: None,
            },
            ProbeSpec::Http {
                url: "https://b.test/".into(),
                expect_status: 200,
                body_contains: None,
                captive: false,
                ca_file: Some("/own.pem".into()),
                nameservers: own_ns.clone(),
                role: None,
            },
            ProbeSpec::Tcp {
                target: "c.test:5222".into(),
                nameservers: None,
                role: None,
            },
            ProbeSpec::Dns {
                server: "8.8.8.8:53".parse().unwrap(),
                name: "d.test".into(),
                ipv6: false,
                role: None,
            },
        ];
        let out = d.apply(probes.clone(), false);
        let ProbeSpec::Http {
            ca_file,
            nameservers,
            ..
        } = &out[0]
        else {
            panic!()
        };
        assert_eq!(ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(nameservers, &Some(vec![ns("198.51.100.53")]));
        // A probe's own settings win.
        assert_eq!(out[1], probes[1]);
        let ProbeSpec::Tcp { nameservers, .. } = &out[2] else {
            panic!()
        };
        assert_eq!(nameservers, &Some(vec![ns("198.51.100.53")]));
        // A DNS check the user wrote keeps its server; a preset's asks ours.
        assert_eq!(out[3], probes[3]);
        let from_preset = d.apply(probes.clone(), true);
        assert_eq!(from_preset[3].label(), "dns d.test @198.51.100.53:53");
        // No defaults: nothing changes.
        assert_eq!(ProbeDefaults::default().apply(probes.clone(), true), probes);
    }

    #[test]
    fn empty_nameserver_lists_and_bad_ca_files_name_the_key() {
        let p = vec![ProbeSpec::Tcp {
            target: "c.test:5222".into(),
            nameservers: Some(vec![]),
            role: None,
        }];
        let (key, _) = check_probes("probes", &p).unwrap_err();
        assert_eq!(key, "probes[0].nameservers");
        let d = ProbeDefaults {
            nameservers: vec![],
            ca_file: Some("/nonexistent/ca.pem".into()),
        };
        let (key, msg) = check_defaults(&d).unwrap_err();
        assert_eq!(key, "probe_defaults.ca_file");
        assert!(msg.contains("/nonexistent/ca.pem"), "{msg}");
    }

    #[test]
    fn a_config_with_an_unusable_ca_file_is_refused_naming_the_key() {
        use crate::config::agent::AgentConfig;
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let probe = |ca: &Path| {
            format!(
                "{{ type = \"http\", url = \"https://intranet.test/\", ca_file = \"{}\" }}",
                ca.display()
            )
        };
        let cases = [
            (
                format!("probes = [{}]\n", probe(&junk)),
                "probes[0].ca_file",
                "holds no certificate",
            ),
            (
                format!(
                    "[[link]]\nname = \"eth0\"\npresets = [\"internet\"]\nprobes = [{}]\n",
                    probe(&missing)
                ),
                "link[0].probes[0].ca_file",
                "cannot read CA file",
            ),
            (
                format!("[probe_defaults]\nca_file = \"{}\"\n", junk.display()),
                "probe_defaults.ca_file",
                "holds no certificate",
            ),
            (
                "[probe_defaults]\nnameservers = [\"resolver.test\"]\n".to_string(),
                "nameservers",
                "not a nameserver address",
            ),
        ];
        for (text, key, words) in cases {
            let e = AgentConfig::parse(&text, Path::new("agent.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "want `{key}` in: {e}");
            assert!(e.contains(words), "want `{words}` in: {e}");
        }
    }
}
