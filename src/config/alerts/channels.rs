//! `[alerts.channel.NAME]`: one table per channel, `type` saying which
//! (`webhook`, `email`, `sms`), as written. `collector::alerts::setup`
//! compiles it, refusing keys of another type by name.

use crate::shared::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// One channel as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelSection {
    #[serde(rename = "type")]
    pub kind: String,
    /// All types: how long one send may take (default 10s, e-mail 30s).
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// webhook, sms: an HTTP proxy (default: none).
    pub proxy: Option<String>,
    /// webhook: the URL; sms: the URL template.
    pub url: Option<Secret>,
    /// webhook: json, slack or teams.
    pub format: Option<String>,
    pub bearer_token: Option<Secret>,
    /// email
    pub server: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// sms
    pub method: Option<String>,
    pub body: Option<String>,
    pub encoding: Option<String>,
    pub api_key: Option<Secret>,
    pub success_match: Option<String>,
}
