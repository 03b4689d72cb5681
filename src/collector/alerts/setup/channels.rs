//! Compiling `[alerts.channel.NAME]` into a channel's settings: the keys of
//! its type checked, keys of another type refused by name.

use crate::collector::alerts::channels::{
    ChannelSpec, EmailSpec, SMS_PLACEHOLDERS, SmsEncoding, SmsSpec, SmtpTls, WebhookFormat,
    WebhookSpec,
};
use crate::collector::alerts::template::Template;
use crate::config::alerts::ChannelSection;
use std::collections::BTreeMap;
use std::time::Duration;

type Fail = (&'static str, String);

fn http_url(url: &str, field: &'static str) -> Result<(), Fail> {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err((field, "must be an http:// or https:// URL".into()))
    }
}

impl ChannelSection {
    /// The keys set, by name (to refuse those of another type).
    fn set_keys(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut k = |set: bool, name: &'static str| {
            if set {
                v.push(name);
            }
        };
        k(self.proxy.is_some(), "proxy");
        k(self.url.is_some(), "url");
        k(self.format.is_some(), "format");
        k(self.bearer_token.is_some(), "bearer_token");
        k(self.server.is_some(), "server");
        k(self.port.is_some(), "port");
        k(self.tls.is_some(), "tls");
        k(self.username.is_some(), "username");
        k(self.password.is_some(), "password");
        k(self.from.is_some(), "from");
        k(self.ca_file.is_some(), "ca_file");
        k(self.method.is_some(), "method");
        k(self.body.is_some(), "body");
        k(self.encoding.is_some(), "encoding");
        k(self.api_key.is_some(), "api_key");
        k(self.success_match.is_some(), "success_match");
        v
    }

    /// Check and compile; the error is the key within the table and the fix.
    pub fn compile(&self) -> Result<ChannelSpec, Fail> {
        let allowed: &[&str] = match self.kind.as_str() {
            "webhook" => &["url", "format", "bearer_token", "proxy"],
            "email" => &[
                "server", "port", "tls", "username", "password", "from", "ca_file",
            ],
            "sms" => &[
                "url",
                "method",
                "body",
                "encoding",
                "api_key",
                "success_match",
                "proxy",
            ],
            other => {
                return Err((
                    "type",
                    format!("unknown channel type `{other}`: use webhook, email or sms"),
                ));
            }
        };
        if let Some(k) = self.set_keys().into_iter().find(|k| !allowed.contains(k)) {
            return Err((
                k,
                format!(
                    "not a key of a {} channel (its keys: type, timeout, {})",
                    self.kind,
                    allowed.join(", ")
                ),
            ));
        }
        // A whole SMTP exchange (greeting delays, TLS) takes longer than a POST.
        let default = if self.kind == "email" { 30 } else { 10 };
        let timeout = self.timeout.unwrap_or(Duration::from_secs(default));
        if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(300) {
            return Err((
                "timeout",
                "must be between 100ms and 5m (default \"10s\", e-mail \"30s\")".into(),
            ));
        }
        if let Some(p) = &self.proxy {
            http_url(p, "proxy")?;
        }
        match self.kind.as_str() {
            "webhook" => self.webhook(timeout),
            "email" => self.email(timeout),
            _ => self.sms(timeout),
        }
    }

    fn webhook(&self, timeout: Duration) -> Result<ChannelSpec, Fail> {
        let url = self
            .url
            .clone()
            .ok_or(("url", "missing: give the webhook's URL".to_string()))?;
        http_url(url.expose(), "url")?;
        let format = match self.format.as_deref() {
            None => WebhookFormat::Json,
            Some(f) => WebhookFormat::parse(f).ok_or((
                "format",
                format!("unknown format `{f}`: use json, slack or teams"),
            ))?,
        };
        Ok(ChannelSpec::Webhook(WebhookSpec {
            url,
            format,
            bearer_token: self.bearer_token.clone(),
            timeout,
            proxy: self.proxy.clone(),
        }))
    }

    fn email(&self, timeout: Duration) -> Result<ChannelSpec, Fail> {
        let server = self
            .server
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or((
                "server",
                "missing: give the SMTP server's host name".to_string(),
            ))?;
        let tls = match self.tls.as_deref() {
            None => SmtpTls::StartTls,
            Some(t) => SmtpTls::parse(t).ok_or((
                "tls",
                format!("unknown `{t}`: use starttls (default), tls (port 465) or none"),
            ))?,
        };
        let local = matches!(server.as_str(), "localhost" | "::1")
            || server
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if tls == SmtpTls::None && !local {
            return Err((
                "tls",
                format!(
                    "\"none\" sends mail and passwords unencrypted: only for a relay on this machine (server = \"127.0.0.1\"), not `{server}`; use starttls"
                ),
            ));
        }
        let port = self.port.unwrap_or(match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        if port == 0 {
            return Err(("port", "must be 1 to 65535".into()));
        }
        let from_text = self.from.clone().ok_or((
            "from",
            "missing: give the sender, e.g. \"linkwatch <alerts@example.gov.bd>\"".to_string(),
        ))?;
        let from = from_text.parse().map_err(|e| {
            (
                "from",
                format!("`{from_text}` is not an address ({e}): e.g. \"linkwatch <alerts@example.gov.bd>\""),
            )
        })?;
        match (&self.username, &self.password) {
            (Some(_), None) => {
                return Err((
                    "password",
                    "username is set but password is not: set both or neither".into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "username",
                    "password is set but username is not: set both or neither".into(),
                ));
            }
            _ => {}
        }
        let ca_pem = match &self.ca_file {
            None => None,
            Some(f) => {
                let pem = std::fs::read_to_string(f)
                    .map_err(|e| ("ca_file", format!("cannot read {}: {e}", f.display())))?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err((
                        "ca_file",
                        format!("{} holds no PEM certificate", f.display()),
                    ));
                }
                Some(pem)
            }
        };
        Ok(ChannelSpec::Email(EmailSpec {
            server,
            port,
            tls,
            username: self.username.clone(),
            password: self.password.clone(),
            from,
            timeout,
            ca_pem,
        }))
    }

    fn sms(&self, timeout: Duration) -> Result<ChannelSpec, Fail> {
        let url_text = self.url.clone().ok_or((
            "url",
            "missing: give the gateway's URL template, e.g. \"https://sms.example.com.bd/send?to={to}&text={message}\"".to_string(),
        ))?;
        http_url(url_text.expose(), "url")?;
        let url = Template::parse(url_text.expose(), &SMS_PLACEHOLDERS).map_err(|m| ("url", m))?;
        let body = self
            .body
            .as_deref()
            .map(|b| Template::parse(b, &SMS_PLACEHOLDERS).map_err(|m| ("body", m)))
            .transpose()?;
        match (
            self.method
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            &body,
        ) {
            (None, _) | (Some("post"), Some(_)) | (Some("get"), None) => {}
            (Some("get"), Some(_)) => {
                return Err((
                    "body",
                    "a GET has no body: drop the body, or use method = \"post\"".into(),
                ));
            }
            (Some("post"), None) => {
                return Err((
                    "body",
                    "method is post but no body is given: write the body template".into(),
                ));
            }
            (Some(m), _) => {
                return Err(("method", format!("unknown method `{m}`: use get or post")));
            }
        }
        let encoding = match self.encoding.as_deref() {
            None => SmsEncoding::Form,
            Some(e) => SmsEncoding::parse(e).ok_or((
                "encoding",
                format!("unknown encoding `{e}`: use form or json"),
            ))?,
        };
        let used: Vec<&str> = url
            .names()
            .chain(body.iter().flat_map(|b| b.names()))
            .collect();
        for needed in ["to", "message"] {
            if !used.contains(&needed) {
                return Err((
                    if body.is_some() { "body" } else { "url" },
                    format!(
                        "{{{needed}}} appears nowhere: the gateway must be told the number ({{to}}) and the text ({{message}})"
                    ),
                ));
            }
        }
        if used.contains(&"api_key") && self.api_key.is_none() {
            return Err(("api_key", "{api_key} is used but api_key is not set".into()));
        }
        Ok(ChannelSpec::Sms(SmsSpec {
            url,
            body,
            encoding,
            api_key: self.api_key.clone(),
            success_match: self.success_match.clone(),
            timeout,
            proxy: self.proxy.clone(),
        }))
    }
}

/// The longest send timeout of the channels, ms (for the outbox lease).
pub fn longest_timeout(specs: &BTreeMap<String, ChannelSpec>) -> i64 {
    specs
        .values()
        .map(|s| match s {
            ChannelSpec::Webhook(w) => w.timeout,
            ChannelSpec::Email(e) => e.timeout,
            ChannelSpec::Sms(s) => s.timeout,
        })
        .max()
        .map_or(0, |d| d.as_millis() as i64)
}
