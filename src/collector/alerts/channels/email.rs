//! The e-mail channel: SMTP through `lettre` (rustls, tokio), with STARTTLS
//! required by default (`tls = "starttls"`), implicit TLS (`"tls"`, port
//! 465) or none (`"none"`, for a relay on the same machine). One connection
//! per message, the whole exchange bounded by the channel's `timeout`
//! (lettre bounds only the connect). The dedupe key becomes the Message-ID, so a message sent
//! twice (at-least-once) is recognisable as one.

use super::{Message, SendError, Sender};
use crate::collector::alerts::Secret;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; refused without it.
    #[default]
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption (a relay on loopback only).
    None,
}

impl SmtpTls {
    pub fn parse(s: &str) -> Option<SmtpTls> {
        match s.trim() {
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Tls),
            "none" => Some(SmtpTls::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailSpec {
    pub server: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Mailbox,
    pub timeout: Duration,
    /// PEM of the only CA trusted for the server (`ca_file`); `None`: the
    /// platform's roots.
    pub ca_pem: Option<String>,
}

/// Sends mail through one SMTP server.
pub struct EmailSender {
    name: String,
    from: Mailbox,
    /// The whole exchange's bound (lettre's own covers only the connect).
    timeout: Duration,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl EmailSender {
    pub fn new(name: &str, spec: &EmailSpec) -> Result<Self, SendError> {
        let bad = |m: String| SendError::permanent(name, m);
        let tls = match spec.tls {
            SmtpTls::None => Tls::None,
            mode => {
                let mut b = TlsParameters::builder(spec.server.clone());
                if let Some(pem) = &spec.ca_pem {
                    let cert = Certificate::from_pem(pem.as_bytes())
                        .map_err(|e| bad(format!("ca_file is not a PEM certificate: {e}")))?;
                    b = b
                        .certificate_store(CertificateStore::None)
                        .add_root_certificate(cert);
                }
                let params = b
                    .build_rustls()
                    .map_err(|e| bad(format!("TLS settings: {e}")))?;
                if mode == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&spec.server)
            .port(spec.port)
            .tls(tls)
            .timeout(Some(spec.timeout));
        if let Some(user) = &spec.username {
            let password = spec
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(EmailSender {
            name: name.to_string(),
            from: spec.from.clone(),
            timeout: spec.timeout,
            transport: builder.build(),
        })
    }
}

/// `<hex(sha256(dedupe key))[..32]@linkwatch>`: stable per message.
fn message_id(dedupe_key: &str) -> String {
    let h = Sha256::digest(dedupe_key.as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@linkwatch>")
}

#[async_trait::async_trait]
impl Sender for EmailSender {
    async fn send(&self, to: &str, msg: &Message) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::permanent(&self.name, format!("bad address `{to}`: {e}")))?;
        let mut text = msg.rendered.text.clone();
        if let Some(url) = &msg.ack_url
            && !text.contains(url.as_str())
        {
            text.push_str(&format!("\n\n{url}"));
        }
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.rendered.subject.clone())
            .message_id(Some(message_id(&msg.dedupe_key)))
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| {
                SendError::permanent(&self.name, format!("cannot build the message: {e}"))
            })?;
        let sent = tokio::time::timeout(self.timeout, self.transport.send(email)).await;
        let Ok(sent) = sent else {
            return Err(SendError::transient(
                &self.name,
                format!(
                    "timed out: no complete SMTP exchange within {:?}",
                    self.timeout
                ),
            ));
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_tls() {
                    "TLS failed".to_string()
                } else if let Some(code) = e.status() {
                    format!("the server answered {code}")
                } else {
                    "SMTP failed".to_string()
                };
                let message = format!("{what}: {e}");
                Err(if e.is_permanent() {
                    SendError::permanent(&self.name, message)
                } else {
                    SendError::transient(&self.name, message)
                })
            }
        }
    }
}
