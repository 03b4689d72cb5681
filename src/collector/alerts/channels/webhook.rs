//! The webhook channel: an HTTP POST of JSON, in one of three shapes: the
//! generic one (everything, including the alert as data and the dedupe
//! key), Slack's incoming-webhook `{"text": ...}`, or a Microsoft Teams
//! (Workflows) message carrying an Adaptive Card.

use super::{Message, SendError, Sender, http_client, http_error, status_error};
use crate::collector::alerts::Secret;
use serde_json::{Value, json};
use std::time::Duration;

/// The JSON shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
    Teams,
}

impl WebhookFormat {
    pub fn parse(s: &str) -> Option<WebhookFormat> {
        match s.trim() {
            "json" => Some(WebhookFormat::Json),
            "slack" => Some(WebhookFormat::Slack),
            "teams" => Some(WebhookFormat::Teams),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    /// `http://` or `https://` URL (it may carry a secret: never logged).
    pub url: Secret,
    pub format: WebhookFormat,
    /// Sent as `Authorization: Bearer ...` when set.
    pub bearer_token: Option<Secret>,
    pub timeout: Duration,
    pub proxy: Option<String>,
}

/// The body of a webhook call.
pub fn payload(format: WebhookFormat, msg: &Message) -> Value {
    match format {
        WebhookFormat::Json => json!({
            "dedupe_key": msg.dedupe_key,
            "event": msg.event,
            "kind": msg.alert.kind,
            "severity": msg.alert.kind.severity(),
            "language": msg.language,
            "subject": msg.rendered.subject,
            "text": msg.rendered.text,
            "ack_url": msg.ack_url,
            "alert": msg.alert,
        }),
        WebhookFormat::Slack => {
            // Slack's mrkdwn: escape its three control characters.
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let mut text = format!(
                "*{}*\n{}",
                esc(&msg.rendered.subject),
                esc(&msg.rendered.text)
            );
            if let Some(url) = &msg.ack_url
                && !msg.rendered.text.contains(url.as_str())
            {
                text.push_str(&format!("\n<{url}|Acknowledge>"));
            }
            json!({ "text": text })
        }
        WebhookFormat::Teams => {
            let mut card = json!({
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": msg.rendered.subject, "weight": "Bolder", "wrap": true},
                    {"type": "TextBlock", "text": msg.rendered.text, "wrap": true},
                ],
            });
            if let Some(url) = &msg.ack_url {
                card["actions"] =
                    json!([{"type": "Action.OpenUrl", "title": "Acknowledge", "url": url}]);
            }
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": card,
                }],
            })
        }
    }
}

/// Posts messages to one webhook.
pub struct WebhookSender {
    name: String,
    spec: WebhookSpec,
    client: reqwest::Client,
}

impl WebhookSender {
    pub fn new(name: &str, spec: WebhookSpec) -> Result<Self, SendError> {
        Ok(WebhookSender {
            name: name.to_string(),
            client: http_client(name, spec.timeout, spec.proxy.as_deref())?,
            spec,
        })
    }
}

#[async_trait::async_trait]
impl Sender for WebhookSender {
    async fn send(&self, _to: &str, msg: &Message) -> Result<(), SendError> {
        let mut req = self
            .client
            .post(self.spec.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload(self.spec.format, msg).to_string());
        if let Some(t) = &self.spec.bearer_token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await.map_err(|e| http_error(&self.name, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(status_error(&self.name, status, &body))
    }
}
