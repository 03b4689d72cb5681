//! HTTP/HTTPS checks through one interface, with captive-portal detection.
//!
//! This module owns the HTTP probe: one GET through a reqwest client bound to
//! the interface (SO_BINDTODEVICE), proxies ignored, redirects never
//! followed, a fresh connection each time (no idle pool, so every probe
//! measures the path and not a kept-alive socket). Host names in URLs are
//! resolved through the same interface (see [`super::dns`]), never through the
//! system resolver. An HTTPS check may trust a CA file besides the system's
//! roots (see [`super::tls`]); a certificate it rejects is a
//! [`ProbeFailure::TlsCert`]. One client per (interface, nameservers, CA) is
//! kept so that the TLS configuration is not rebuilt for every probe (the CA
//! file is read at every probe, so a replaced file takes effect at once).
//! rtt is the time to the response headers.
//!
//! Captive portals (when the check asks for it): a redirect instead of the
//! expected answer, an HTTP 511, or a page with content where an empty 204
//! was expected. A 200 with an empty body where 204 was expected counts as
//! success (some transparent proxies rewrite 204 that way).

use super::dns::{self, NameServers};
use super::{ProbeFailure, ProbeOutcome, bind, tls};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, Url, header};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most this much of a body is read (for `body_contains` and portal
/// detection).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Time allowed for resolving a host name inside a request; the request's own
/// timeout still bounds the whole probe.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Rough extra bytes of a TLS handshake (certificate chain included).
const TLS_BYTES: u64 = 4500;

/// One client per (interface, nameservers, extra CA certificates in PEM).
type ClientKey = (String, NameServers, Option<Vec<u8>>);

/// What an HTTP(S) check asks for.
#[derive(Debug, Clone, Copy)]
pub struct HttpCheck<'a> {
    pub url: &'a str,
    pub expect_status: u16,
    /// The body must contain this (read only with the expected status).
    pub body_contains: Option<&'a str>,
    /// Tell captive portals from other wrong answers.
    pub captive: bool,
    /// Extra CA certificate(s), PEM, trusted besides the system's.
    pub ca_file: Option<&'a Path>,
}

fn clients() -> &'static Mutex<HashMap<ClientKey, Client>> {
    static CLIENTS: OnceLock<Mutex<HashMap<ClientKey, Client>>> = OnceLock::new();
    CLIENTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A resolve failure carried through reqwest's error chain.
#[derive(Debug)]
struct ResolveError(ProbeFailure);

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for ResolveError {}

/// reqwest resolver that asks through the probed interface.
struct IfaceResolver {
    iface: String,
    nameservers: NameServers,
}

impl Resolve for IfaceResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let iface = self.iface.clone();
        let nameservers = self.nameservers.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let servers = nameservers.servers_for(&iface).map_err(|f| {
                Box::new(ResolveError(f)) as Box<dyn std::error::Error + Send + Sync>
            })?;
            let (res, _bytes) = dns::resolve(&iface, &servers, &host, RESOLVE_TIMEOUT).await;
            match res {
                Ok(addrs) => {
                    let it: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(it)
                }
                Err(f) => Err(Box::new(ResolveError(dns::as_resolve_failure(&host, f)))
                    as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// The extra CA file's text (read now, so that a replaced file counts at
/// once), or why it cannot be used.
async fn ca_pem(ca_file: Option<&Path>) -> Result<Option<Vec<u8>>, ProbeFailure> {
    let Some(path) = ca_file else {
        return Ok(None);
    };
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || tls::load_ca_file(&path))
        .await
        .map_err(|e| ProbeFailure::Network(format!("ca_file: {e}")))?
        .map(Some)
        .map_err(|e| ProbeFailure::Network(e.to_string()))
}

fn client_for(
    iface: &str,
    nameservers: &NameServers,
    ca: &Option<Vec<u8>>,
    ca_file: Option<&Path>,
) -> Result<Client, ProbeFailure> {
    let key = (iface.to_string(), nameservers.clone(), ca.clone());
    let mut map = clients().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = map.get(&key) {
        return Ok(c.clone());
    }
    let mut builder = Client::builder();
    if let Some(pem) = ca {
        let path = ca_file.unwrap_or(Path::new("ca_file"));
        let certs = tls::parse_ca_pem(path, pem)
            .map_err(|e| ProbeFailure::Network(e.to_string()))?
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProbeFailure::Network(format!("ca_file: {}", bind::chain_text(&e))))?;
        builder = builder.tls_certs_merge(certs);
    }
    let client = builder
        .interface(iface)
        .no_proxy()
        .redirect(Policy::none())
        .pool_max_idle_per_host(0)
        .user_agent(concat!("linkwatch/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(IfaceResolver {
            iface: iface.to_string(),
            nameservers: nameservers.clone(),
        }))
        .build()
        .map_err(|e| ProbeFailure::Network(format!("HTTP client: {}", bind::chain_text(&e))))?;
    map.insert(key, client.clone());
    Ok(client)
}

fn forget_client(iface: &str, nameservers: &NameServers, ca: &Option<Vec<u8>>) {
    let mut map = clients().lock().unwrap_or_else(|p| p.into_inner());
    map.remove(&(iface.to_string(), nameservers.clone(), ca.clone()));
}

/// Probe: GET `url` through `iface`, names resolved with the system's
/// nameservers through the same interface.
pub async fn probe(
    iface: &str,
    url: &str,
    expect_status: u16,
    body_contains: Option<&str>,
    captive: bool,
    timeout: Duration,
) -> ProbeOutcome {
    probe_with(
        iface,
        url,
        expect_status,
        body_contains,
        captive,
        &NameServers::System,
        timeout,
    )
    .await
}

/// Bytes-on-the-wire estimate for one request.
struct Estimate {
    segment: u64,
    fixed: u64,
    dns: u64,
}

impl Estimate {
    fn new(url: &Url, request_len: u64) -> Self {
        let host = url.host_str().unwrap_or("");
        let host_is_ip = is_ip_literal(host);
        let v6 = host.starts_with('[');
        let segment = if v6 { 72 } else { 52 };
        let tls = if url.scheme() == "https" {
            TLS_BYTES
        } else {
            0
        };
        // One A query and its answer when the host is a name.
        let dns = if host_is_ip {
            0
        } else {
            2 * (28 + 12 + url.host_str().map_or(0, |h| h.len() as u64) + 6 + 11) + 16
        };
        Estimate {
            segment,
            // Handshake and teardown (7 segments), the request in one segment, TLS, DNS.
            fixed: 7 * segment + request_len + segment + tls + dns,
            dns,
        }
    }

    /// After a response: its headers and `body` bytes in full segments.
    fn with_response(&self, head: u64, body: u64) -> u64 {
        let segments = (head + body).div_ceil(1448).max(1);
        self.fixed + head + body + segments * self.segment
    }

    /// When no response came.
    fn without_response(&self, f: &ProbeFailure, timeout: Duration) -> u64 {
        match f {
            ProbeFailure::NoSuchInterface | ProbeFailure::Permission(_) => 0,
            ProbeFailure::Resolve(_) => self.dns,
            ProbeFailure::Timeout => self.dns + super::tcp::syn_attempts(timeout) * self.segment,
            // The handshake ran until the certificate was refused.
            ProbeFailure::TlsCert(_) => self.dns + 5 * self.segment + TLS_BYTES,
            _ => self.dns + 2 * self.segment,
        }
    }
}

fn request_len(url: &Url) -> u64 {
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let host = url.host_str().unwrap_or("");
    let ua = concat!("linkwatch/", env!("CARGO_PKG_VERSION"));
    format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: {ua}\r\naccept: */*\r\n\r\n").len()
        as u64
}

fn head_len(resp: &Response) -> u64 {
    let status_line = 17 + resp.status().canonical_reason().map_or(0, str::len) as u64;
    let headers: u64 = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
        .sum();
    status_line + headers + 2
}

/// Read at most [`BODY_LIMIT`] bytes of the body; returns them and the count
/// of bytes that arrived.
async fn read_body(resp: &mut Response) -> Result<(Vec<u8>, u64), reqwest::Error> {
    let mut buf = Vec::new();
    let mut arrived = 0u64;
    while buf.len() < BODY_LIMIT {
        match resp.chunk().await? {
            Some(c) => {
                arrived += c.len() as u64;
                let take = c.len().min(BODY_LIMIT - buf.len());
                buf.extend_from_slice(&c[..take]);
            }
            None => break,
        }
    }
    Ok((buf, arrived))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    n.is_empty() || hay.windows(n.len()).any(|w| w == n)
}

fn looks_like_html(resp_type: Option<&str>, body: &[u8]) -> bool {
    if resp_type.is_some_and(|t| t.to_ascii_lowercase().contains("html")) {
        return true;
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    head.contains("<html") || head.contains("<!doctype html") || head.contains("<meta")
}

/// Map a reqwest error to the failure IT staff see.
fn request_failure(e: &reqwest::Error) -> ProbeFailure {
    if let Some(r) = bind::find_in_chain::<ResolveError>(e) {
        return r.0.clone();
    }
    if let Some(f) = bind::find_in_chain::<rustls::Error>(e).and_then(tls::cert_failure) {
        return f;
    }
    let io = bind::find_io_error(e);
    if let Some(io) = io {
        if bind::is_no_such_device(io) {
            return ProbeFailure::NoSuchInterface;
        }
        if bind::is_permission(io) {
            return ProbeFailure::Permission(bind::BIND_PERMISSION_HINT.into());
        }
    }
    if e.is_timeout() {
        return ProbeFailure::Timeout;
    }
    if let Some(io) = io.filter(|io| io.raw_os_error().is_some()) {
        // Refused, unreachable, reset, ...: the short OS word says it all.
        return bind::io_failure(io, bind::BIND_PERMISSION_HINT);
    }
    // TLS and protocol errors: the chain says what went wrong, without the
    // generic wrappers of reqwest and hyper.
    let mut text = bind::chain_text(e);
    if let Some(u) = e.url() {
        text = text.replace(&format!(" for url ({u})"), "");
    }
    for wrapper in ["error sending request: ", "client error (Connect): "] {
        if text.len() > wrapper.len() && text.starts_with(wrapper) {
            text = text[wrapper.len()..].to_string();
        }
    }
    ProbeFailure::Network(text)
}

/// [`probe`] with the nameservers for a host name given.
pub async fn probe_with(
    iface: &str,
    url: &str,
    expect_status: u16,
    body_contains: Option<&str>,
    captive: bool,
    nameservers: &NameServers,
    timeout: Duration,
) -> ProbeOutcome {
    let c = HttpCheck {
        url,
        expect_status,
        body_contains,
        captive,
        ca_file: None,
    };
    check(iface, &c, nameservers, timeout).await
}

/// Run `c` through `iface`, host names resolved with `nameservers` through
/// the same interface.
pub async fn check(
    iface: &str,
    c: &HttpCheck<'_>,
    nameservers: &NameServers,
    timeout: Duration,
) -> ProbeOutcome {
    let HttpCheck {
        url,
        expect_status,
        body_contains,
        captive,
        ca_file,
    } = *c;
    if let Err(f) = bind::check_iface(iface) {
        return ProbeOutcome::fail(f, 0);
    }
    let parsed = match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            return ProbeOutcome::fail(
                ProbeFailure::Network(format!("bad URL {url:?} (want http:// or https://)")),
                0,
            );
        }
    };
    let estimate = Estimate::new(&parsed, request_len(&parsed));
    let ca = match ca_pem(ca_file).await {
        Ok(ca) => ca,
        Err(f) => return ProbeOutcome::fail(f, 0),
    };
    let client = match client_for(iface, nameservers, &ca, ca_file) {
        Ok(c) => c,
        Err(f) => return ProbeOutcome::fail(f, 0),
    };

    let start = Instant::now();
    let sent = client.get(parsed).timeout(timeout).send().await;
    let rtt = start.elapsed();
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let f = request_failure(&e);
            if f == ProbeFailure::NoSuchInterface {
                forget_client(iface, nameservers, &ca);
            }
            let bytes = estimate.without_response(&f, timeout);
            return ProbeOutcome::fail(f, bytes);
        }
    };
    let head = head_len(&resp);
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // What the server sends anyway when the body is not read.
    let unread = resp.content_length().unwrap_or(0).min(BODY_LIMIT as u64);

    if status == expect_status {
        let Some(needle) = body_contains else {
            return ProbeOutcome::ok(rtt, estimate.with_response(head, unread));
        };
        return match read_body(&mut resp).await {
            Ok((body, arrived)) => {
                let bytes = estimate.with_response(head, arrived);
                if contains(&body, needle) {
                    ProbeOutcome::ok(rtt, bytes)
                } else {
                    ProbeOutcome::fail(ProbeFailure::BodyMismatch, bytes)
                }
            }
            Err(e) => ProbeOutcome::fail(request_failure(&e), estimate.with_response(head, unread)),
        };
    }

    let bad_status = ProbeFailure::BadStatus {
        got: status,
        expected: expect_status,
    };
    if !captive {
        return ProbeOutcome::fail(bad_status, estimate.with_response(head, unread));
    }
    if (300..400).contains(&status) && !(300..400).contains(&expect_status) {
        let detail = match resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
        {
            Some(loc) => format!("redirect to {loc}"),
            None => format!("redirect (HTTP {status}) without a Location"),
        };
        return ProbeOutcome::fail(
            ProbeFailure::Captive { detail },
            estimate.with_response(head, unread),
        );
    }
    if status == 511 {
        return ProbeOutcome::fail(
            ProbeFailure::Captive {
                detail: "HTTP 511 network authentication required".into(),
            },
            estimate.with_response(head, unread),
        );
    }
    if status == 200 && expect_status == 204 {
        return match read_body(&mut resp).await {
            Ok((body, arrived)) => {
                let bytes = estimate.with_response(head, arrived);
                if body.iter().all(u8::is_ascii_whitespace) {
                    // An empty 200 for a 204: a proxy rewrote it, the path works.
                    ProbeOutcome::ok(rtt, bytes)
                } else if looks_like_html(content_type.as_deref(), &body) {
                    ProbeOutcome::fail(
                        ProbeFailure::Captive {
                            detail: "login page instead of 204".into(),
                        },
                        bytes,
                    )
                } else {
                    ProbeOutcome::fail(
                        ProbeFailure::Captive {
                            detail: format!("{arrived} bytes of content instead of 204"),
                        },
                        bytes,
                    )
                }
            }
            Err(e) => ProbeOutcome::fail(request_failure(&e), estimate.with_response(head, unread)),
        };
    }
    ProbeOutcome::fail(bad_status, estimate.with_response(head, unread))
}

/// True when `s` is an IP literal (with or without brackets).
fn is_ip_literal(s: &str) -> bool {
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_recognised() {
        assert!(looks_like_html(Some("text/html; charset=utf-8"), b""));
        assert!(looks_like_html(None, b"  <!DOCTYPE html><p>"));
        assert!(looks_like_html(None, b"<html>login</html>"));
        assert!(!looks_like_html(Some("text/plain"), b"hello"));
    }

    #[test]
    fn body_search_is_bytewise() {
        assert!(contains(b"hello world", "world"));
        assert!(!contains(b"hello world", "nope"));
        assert!(contains(b"", ""));
    }

    #[test]
    fn estimates_grow_with_tls_and_names() {
        let plain = Url::parse("http://192.0.2.1/generate_204").unwrap();
        let tls = Url::parse("https://probe.test/").unwrap();
        let a = Estimate::new(&plain, request_len(&plain));
        let b = Estimate::new(&tls, request_len(&tls));
        assert!(b.fixed > a.fixed + TLS_BYTES);
        assert!(a.with_response(100, 0) > a.fixed);
    }
}
