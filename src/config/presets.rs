//! Named bundles of probes a link can select: `internet` (can this link reach
//! the internet at all, and is it behind a captive portal?) and `whatsapp`
//! (can an officer reach WhatsApp through it?), and the `[preset.whatsapp]`
//! section that says where the latter looks. They name public targets for
//! real deployments. `[probe_defaults]` applies to them: its nameservers
//! resolve their names and answer their DNS checks, its CA file is trusted by
//! their HTTPS checks. With `[preset.whatsapp]` pointing at stand-ins, that
//! is also how tests run them inside network namespaces, without a query
//! leaving the machine.

use super::probes::{KeyError, ProbeRole, ProbeSpec};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Every preset name, for messages.
pub const NAMES: &[&str] = &["internet", "whatsapp"];

fn icmp(ip: IpAddr) -> ProbeSpec {
    ProbeSpec::Icmp {
        target: ip,
        role: None,
    }
}

/// `[preset]`: settings of the named presets.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PresetSettings {
    #[serde(default)]
    pub whatsapp: WhatsappPreset,
}

/// `[preset.whatsapp]`: where the `whatsapp` preset looks. The defaults are
/// WhatsApp's own chat and web front ends; a site that reaches WhatsApp
/// through its own relay names that here.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WhatsappPreset {
    /// The chat front end: resolved by the DNS check, connected to on
    /// `chat_port` by the TCP check.
    #[serde(default = "default_chat_host")]
    pub chat_host: String,
    #[serde(default = "default_chat_port")]
    pub chat_port: u16,
    /// The web client's page, fetched over HTTPS and expected to answer 200.
    #[serde(default = "default_web_url")]
    pub web_url: String,
}

fn default_chat_host() -> String {
    "g.whatsapp.net".into()
}
fn default_chat_port() -> u16 {
    5222
}
fn default_web_url() -> String {
    "https://web.whatsapp.com/".into()
}

impl Default for WhatsappPreset {
    fn default() -> Self {
        WhatsappPreset {
            chat_host: default_chat_host(),
            chat_port: default_chat_port(),
            web_url: default_web_url(),
        }
    }
}

/// The probes of a preset, or `None` for an unknown name.
pub fn probes(name: &str, settings: &PresetSettings) -> Option<Vec<ProbeSpec>> {
    match name {
        "internet" => Some(vec![
            // Three anycast resolvers of three operators: one dead target never
            // marks the link down (quorum 1 of 3 by default).
            icmp(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1))),
            icmp(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8))),
            icmp(IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9))),
            // IPv6 targets are probed only when the link has a global IPv6 address.
            icmp(IpAddr::V6(Ipv6Addr::new(
                0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111,
            ))),
            icmp(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888,
            ))),
            ProbeSpec::Dns {
                server: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), 53),
                name: "www.gov.bd".into(),
                ipv6: false,
                role: Some(ProbeRole::App),
            },
            ProbeSpec::Http {
                url: "http://connectivitycheck.gstatic.com/generate_204".into(),
                expect_status: 204,
                body_contains: None,
                captive: true,
                ca_file: None,
                nameservers: None,
                role: Some(ProbeRole::App),
            },
        ]),
        "whatsapp" => Some(vec![
            ProbeSpec::Dns {
                server: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), 53),
                name: settings.whatsapp.chat_host.clone(),
                ipv6: false,
                role: Some(ProbeRole::App),
            },
            ProbeSpec::Tcp {
                target: host_port(&settings.whatsapp.chat_host, settings.whatsapp.chat_port),
                nameservers: None,
                role: Some(ProbeRole::App),
            },
            ProbeSpec::Http {
                url: settings.whatsapp.web_url.clone(),
                expect_status: 200,
                body_contains: None,
                captive: false,
                ca_file: None,
                nameservers: None,
                role: Some(ProbeRole::App),
            },
        ]),
        _ => None,
    }
}

/// `host:port`, with brackets around an IPv6 literal.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Check `[preset.whatsapp]`: the probes it makes must pass the same checks
/// as probes written out by hand.
pub fn check_settings(settings: &PresetSettings) -> Result<(), super::probes::KeyError> {
    let w = &settings.whatsapp;
    if w.chat_host.is_empty() || w.chat_host.contains([' ', '/']) {
        return Err((
            "preset.whatsapp.chat_host".into(),
            "must be a host name or address such as \"chat.example.org\"".into(),
        ));
    }
    if w.chat_port == 0 {
        return Err((
            "preset.whatsapp.chat_port".into(),
            "must be 1 to 65535".into(),
        ));
    }
    if !w.web_url.starts_with("https://") || reqwest::Url::parse(&w.web_url).is_err() {
        return Err((
            "preset.whatsapp.web_url".into(),
            format!(
                "`{}` must be an https:// URL such as \"https://web.example.org/\"",
                w.web_url
            ),
        ));
    }
    Ok(())
}

/// Check the preset names listed under `key`.
pub fn check_presets(key: &str, presets: &[String]) -> Result<(), KeyError> {
    for (i, p) in presets.iter().enumerate() {
        if !NAMES.contains(&p.as_str()) {
            return Err((
                format!("{key}[{i}]"),
                format!("unknown preset `{p}`: use one of {}", NAMES.join(", ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_preset_exists_and_internet_has_reach_probes() {
        for n in NAMES {
            assert!(probes(n, &PresetSettings::default()).is_some(), "{n}");
        }
        assert!(probes("nope", &PresetSettings::default()).is_none());
        let reach = probes("internet", &PresetSettings::default())
            .unwrap()
            .iter()
            .filter(|p| p.role() == ProbeRole::Reach && !p.is_ipv6())
            .count();
        assert_eq!(reach, 3);
    }

    #[test]
    fn whatsapp_preset_looks_where_its_section_says() {
        let mut settings = PresetSettings::default();
        settings.whatsapp.chat_host = "chat.example.net".into();
        settings.whatsapp.chat_port = 443;
        settings.whatsapp.web_url = "https://web.example.com/app".into();
        let labels: Vec<String> = probes("whatsapp", &settings)
            .unwrap()
            .iter()
            .map(|p| p.label())
            .collect();
        assert!(
            labels.iter().any(|l| l.starts_with("dns chat.example.net")),
            "{labels:?}"
        );
        assert!(
            labels.iter().any(|l| l == "tcp chat.example.net:443"),
            "{labels:?}"
        );
        assert!(
            labels
                .iter()
                .any(|l| l == "http https://web.example.com/app"),
            "{labels:?}"
        );
        settings.whatsapp.chat_host = "2001:db8::5".into();
        let tcp: Vec<String> = probes("whatsapp", &settings)
            .unwrap()
            .iter()
            .map(|p| p.label())
            .filter(|l| l.starts_with("tcp"))
            .collect();
        assert_eq!(tcp, vec!["tcp [2001:db8::5]:443".to_string()]);
        assert!(check_settings(&settings).is_ok());
    }

    #[test]
    fn bad_whatsapp_settings_name_the_key() {
        let mut s = PresetSettings::default();
        assert!(check_settings(&s).is_ok());
        s.whatsapp.web_url = "http://web.example.com/".into();
        assert_eq!(check_settings(&s).unwrap_err().0, "preset.whatsapp.web_url");
        s = PresetSettings::default();
        s.whatsapp.chat_host = "a b".into();
        assert_eq!(
            check_settings(&s).unwrap_err().0,
            "preset.whatsapp.chat_host"
        );
        s = PresetSettings::default();
        s.whatsapp.chat_port = 0;
        assert_eq!(
            check_settings(&s).unwrap_err().0,
            "preset.whatsapp.chat_port"
        );
    }
}
