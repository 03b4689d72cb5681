//! The SMS channel: an HTTP gateway called through templates (Bangladeshi
//! SMS gateways are plain HTTP APIs, each with its own parameters). The URL
//! and the optional body are templates with the placeholders `{to}`,
//! `{message}` and `{api_key}`; values are escaped for where they go
//! (percent-encoded in the URL and in a form body, JSON-escaped in a JSON
//! body), so a message cannot break out of its parameter. Success is a 2xx
//! answer, and, when `success_match` is set, a body containing it (many
//! gateways answer 200 with an error inside).

use super::{Message, SendError, Sender, http_client, http_error, status_error};
use crate::collector::alerts::Secret;
use crate::collector::alerts::template::{Template, json_escape, url_escape};
use std::borrow::Cow;
use std::time::Duration;

/// Placeholders of the gateway templates.
pub const SMS_PLACEHOLDERS: [&str; 3] = ["to", "message", "api_key"];

/// How the body is written (and its values escaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmsEncoding {
    /// `application/x-www-form-urlencoded`.
    #[default]
    Form,
    /// `application/json`.
    Json,
}

impl SmsEncoding {
    pub fn parse(s: &str) -> Option<SmsEncoding> {
        match s.trim() {
            "form" => Some(SmsEncoding::Form),
            "json" => Some(SmsEncoding::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmsSpec {
    pub url: Template,
    /// `None`: a GET with everything in the URL.
    pub body: Option<Template>,
    pub encoding: SmsEncoding,
    pub api_key: Option<Secret>,
    pub success_match: Option<String>,
    pub timeout: Duration,
    pub proxy: Option<String>,
}

impl SmsSpec {
    /// The request for one message: URL and body (`None`: GET).
    pub fn request(&self, to: &str, text: &str) -> (String, Option<String>) {
        let key = self
            .api_key
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default();
        let value = |name: &str| -> Cow<'_, str> {
            Cow::Owned(
                match name {
                    "to" => to,
                    "message" => text,
                    "api_key" => key,
                    _ => "",
                }
                .to_string(),
            )
        };
        let url = self.url.render(value, url_escape);
        let body = self.body.as_ref().map(|b| match self.encoding {
            SmsEncoding::Form => b.render(value, url_escape),
            SmsEncoding::Json => b.render(value, json_escape),
        });
        (url, body)
    }
}

/// Sends SMS through one gateway.
pub struct SmsSender {
    name: String,
    spec: SmsSpec,
    client: reqwest::Client,
}

impl SmsSender {
    pub fn new(name: &str, spec: SmsSpec) -> Result<Self, SendError> {
        Ok(SmsSender {
            name: name.to_string(),
            client: http_client(name, spec.timeout, spec.proxy.as_deref())?,
            spec,
        })
    }
}

#[async_trait::async_trait]
impl Sender for SmsSender {
    async fn send(&self, to: &str, msg: &Message) -> Result<(), SendError> {
        let (url, body) = self.spec.request(to, &msg.rendered.text);
        let req = match body {
            None => self.client.get(&url),
            Some(body) => {
                let ct = match self.spec.encoding {
                    SmsEncoding::Form => "application/x-www-form-urlencoded",
                    SmsEncoding::Json => "application/json",
                };
                self.client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, ct)
                    .body(body)
            }
        };
        let resp = req.send().await.map_err(|e| http_error(&self.name, e))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(status_error(&self.name, status, &text));
        }
        if let Some(m) = &self.spec.success_match
            && !text.contains(m.as_str())
        {
            let snippet: String = text.chars().take(200).collect();
            return Err(SendError::transient(
                &self.name,
                format!(
                    "answered {status} without `{m}` (the gateway's sign of success): {}",
                    snippet.trim()
                ),
            ));
        }
        Ok(())
    }
}
