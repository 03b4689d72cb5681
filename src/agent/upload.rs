//! Upload of the spool to the collector: batches in sequence order, gzip'd
//! JSON (`wire::v1::Batch`) POSTed to `{collector_url}/api/v1/ingest` with the
//! device's bearer token; records are deleted from the spool only once the
//! collector's `Ack` covers them, so a lost answer, a crash or days offline
//! lose nothing (the collector de-duplicates by sequence number).
//!
//! [`Uploader::drain`] sends everything ready, once; [`Uploader::run`] drains
//! every `upload_interval`, whenever a link comes back, and `urgent_delay`
//! after an urgent record (see [`is_urgent`]), backing off exponentially with
//! full jitter on failure and honouring `Retry-After`.
//!
//! Bytes on the wire matter (mobile data is metered): the HTTP client keeps
//! its connection for longer than the upload interval, so a network that
//! keeps idle connections pays no new TCP and TLS handshake per upload, and a
//! request that fails on a connection the network dropped meanwhile is sent
//! again at once on a new one (the collector de-duplicates, so a repeat is
//! harmless).
//!
//! This file builds the uploader and sends batches; `upload/schedule.rs`
//! decides when, `upload/answer.rs` reads the collector's answers and
//! `upload/token.rs` reads the token.

mod answer;
mod schedule;
mod token;

use crate::agent::spool::{Spool, SpoolError};
use crate::config::agent::UploadSection;
use crate::shared::time::now_ms;
use crate::wire::v1::{Ack, Backlog, Batch, Body, MAX_RECORDS, Record, VERSION};
use answer::{chain, error_message, retry_after, shorten};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use token::{check_token, read_token};
use tokio::sync::Notify;

/// First back-off step; it doubles on every consecutive failure.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest `Retry-After` honoured.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);
/// Back-off steps of a failed upload the announced deadline leaves room
/// for (1 + 2 + 4 s at most, full jitter): a momentary failure right at the
/// next interval is not silence.
const DEADLINE_RETRY_STEPS: u32 = 3;
/// Longest part of a collector's error answer kept in messages.
const MESSAGE_MAX: usize = 300;

/// Why the uploader could not be built, or an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(
        "cannot read the upload token file {path}: {source}. Put this device's token there \
         (`linkwatch device add NAME --output FILE` or `linkwatch device rotate NAME --output FILE` \
         on the collector), readable by the agent only (mode 0600 or 0640), then start the agent \
         or send it SIGHUP; or remove upload.collector_url to keep records in the spool only"
    )]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the upload token file {path} is empty: put the device's token in it")]
    EmptyToken { path: PathBuf },
    #[error("upload.token_file: {0}")]
    TokenFileOpen(#[from] crate::shared::files::SecretFileError),
    #[error("upload.token_file is required with upload.collector_url")]
    NoToken,
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable PEM certificate: {message}")]
    CaPem { path: PathBuf, message: String },
    #[error("collector URL: {0}")]
    BadUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot encode a batch: {0}")]
    Encode(String),
    #[error("cannot reach the collector at {url}: {message}")]
    Network { url: String, message: String },
    #[error("the collector refused a batch of {records} records with {status}: {message}")]
    Rejected {
        status: u16,
        message: String,
        records: usize,
        retry_after: Option<Duration>,
    },
    #[error("the collector's acknowledgement cannot be read: {0}")]
    BadAck(String),
    #[error(
        "the collector acknowledged up to seq {acked} of a batch {first}..={last}: \
         the rest stays spooled and is sent again"
    )]
    PartialAck { acked: u64, first: u64, last: u64 },
}

/// What one [`Uploader::drain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainReport {
    /// Batches the collector accepted.
    pub batches: u64,
    /// Records in those batches.
    pub records: u64,
    /// The highest sequence number the collector acknowledged (0: none).
    pub acked: u64,
    /// Records deleted from the spool.
    pub deleted: u64,
    /// Request bytes sent (compressed).
    pub bytes: u64,
}

/// Upload figures for metrics and status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadStats {
    /// Is a collector configured at all?
    pub enabled: bool,
    /// Batches accepted since start.
    pub batches: u64,
    /// Records in accepted batches.
    pub records: u64,
    /// Request bytes sent, compressed (every attempt, accepted or not).
    pub bytes_sent: u64,
    /// The same requests before compression.
    pub bytes_raw: u64,
    /// Highest sequence number acknowledged.
    pub acked: u64,
    /// Last accepted batch, Unix ms.
    pub last_success_ms: Option<i64>,
    /// Last failure and when (Unix ms).
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Records per batch now (halved on 413).
    pub batch_size: usize,
    /// Holding a large backlog while only metered links are online.
    pub held_for_metered: bool,
}

/// A cheap, cloneable view of an uploader's figures (take it before `run`).
#[derive(Debug, Clone, Default)]
pub struct UploadStatsHandle(Arc<Mutex<UploadStats>>);

impl UploadStatsHandle {
    /// A copy of the current figures.
    pub fn get(&self) -> UploadStats {
        self.lock().clone()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, UploadStats> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The HTTP side, present when a collector is configured.
struct Net {
    client: reqwest::Client,
    url: reqwest::Url,
    token_file: PathBuf,
    token: Mutex<String>,
    /// Re-read the token file before the next attempt (after 401/403).
    reload_token: AtomicBool,
    /// Notified when the token was read again on request (SIGHUP): ends a
    /// wait after a refused token.
    token_reloaded: Notify,
}

/// Uploads the spool to the collector. Clones share everything (client,
/// figures, batch size): keep one to call [`Uploader::drain`] once more at a
/// clean stop after handing another to [`Uploader::run`].
#[derive(Clone)]
pub struct Uploader {
    net: Option<Arc<Net>>,
    device: String,
    spool: Arc<Spool>,
    batch_size: Arc<AtomicUsize>,
    upload_interval: Duration,
    urgent_delay: Duration,
    /// Notified (by the spool writer) after an urgent record was written.
    urgent: Arc<Notify>,
    backoff_max: Duration,
    hold_backlog_on_metered: bool,
    metered_backlog_threshold: u64,
    stats: UploadStatsHandle,
}

/// What a batch announces as `next_upload_within_s`: the next upload comes
/// at the latest after `upload_interval`, plus the first
/// [`DEADLINE_RETRY_STEPS`] back-off steps should that attempt fail (capped
/// by `backoff_max`), in whole seconds rounded up.
pub fn next_upload_within_s(upload_interval: Duration, backoff_max: Duration) -> u32 {
    let steps = BACKOFF_BASE.saturating_mul((1u32 << DEADLINE_RETRY_STEPS) - 1);
    let total = upload_interval.saturating_add(steps.min(backoff_max));
    let secs = total.as_secs() + u64::from(total.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Records worth sending before the next upload interval: what changes the
/// picture at the collector (a link's state, a failover, a start or stop, a
/// clock step, what the device is). Minute summaries and heartbeats wait.
pub fn is_urgent(body: &Body) -> bool {
    !matches!(body, Body::LinkMinutes { .. } | Body::Heartbeat { .. })
}

/// How long the HTTP client keeps an idle connection: past the next upload.
fn idle_timeout(upload_interval: Duration) -> Duration {
    upload_interval + Duration::from_secs(30)
}

impl Uploader {
    /// Build the uploader: reads the token file (trimmed), the extra CA file
    /// and builds the HTTP client. Without `collector_url` the uploader is
    /// disabled: `drain` does nothing and `run` waits for `stop`.
    pub fn new(
        cfg: &UploadSection,
        device: String,
        spool: Arc<Spool>,
    ) -> Result<Self, UploadError> {
        let batch_size = cfg.batch_max_records.clamp(1, MAX_RECORDS);
        let net = match &cfg.collector_url {
            None => None,
            Some(base) => Some(Arc::new(Self::net(cfg, base)?)),
        };
        let stats = UploadStatsHandle::default();
        {
            let mut s = stats.lock();
            s.enabled = net.is_some();
            s.batch_size = batch_size;
        }
        Ok(Uploader {
            net,
            device,
            spool,
            batch_size: Arc::new(AtomicUsize::new(batch_size)),
            upload_interval: cfg.upload_interval.max(Duration::from_millis(100)),
            urgent_delay: cfg
                .urgent_delay
                .min(cfg.upload_interval)
                .max(Duration::from_millis(10)),
            urgent: Arc::new(Notify::new()),
            backoff_max: cfg.backoff_max.max(BACKOFF_BASE),
            hold_backlog_on_metered: cfg.hold_backlog_on_metered,
            metered_backlog_threshold: cfg.metered_backlog_threshold,
            stats,
        })
    }

    fn net(cfg: &UploadSection, base: &str) -> Result<Net, UploadError> {
        let parsed = UploadSection::check_collector_url(base).map_err(UploadError::BadUrl)?;
        let mut url_text = parsed.as_str().trim_end_matches('/').to_string();
        url_text.push_str("/api/v1/ingest");
        let url = reqwest::Url::parse(&url_text)
            .map_err(|e| UploadError::BadUrl(format!("`{url_text}`: {e}")))?;
        let token_file = cfg.token_file.clone().ok_or(UploadError::NoToken)?;
        let token = read_token(&token_file)?;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .read_timeout(Duration::from_secs(60))
            .pool_idle_timeout(idle_timeout(cfg.upload_interval))
            .user_agent(concat!("linkwatch-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|source| UploadError::CaFile {
                path: ca.clone(),
                source,
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| UploadError::CaPem {
                    path: ca.clone(),
                    message: chain(&e),
                })?;
            if certs.is_empty() {
                return Err(UploadError::CaPem {
                    path: ca.clone(),
                    message: "no `-----BEGIN CERTIFICATE-----` block".into(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| UploadError::Client(chain(&e)))?;
        Ok(Net {
            client,
            url,
            token_file,
            token: Mutex::new(token),
            reload_token: AtomicBool::new(false),
            token_reloaded: Notify::new(),
        })
    }

    /// Notify this after writing an urgent record ([`is_urgent`]): the next
    /// upload then starts `urgent_delay` later at the latest.
    pub fn urgent_handle(&self) -> Arc<Notify> {
        self.urgent.clone()
    }

    /// Read the token file again now (SIGHUP): a readable token is used from
    /// the next attempt on, and a wait after a refused token ends. An
    /// unreadable one keeps the old token and is returned.
    pub fn reload_token(&self) -> Result<(), UploadError> {
        let Some(net) = &self.net else {
            return Ok(());
        };
        let token = read_token(&net.token_file)?;
        *net.token.lock().unwrap_or_else(|p| p.into_inner()) = token;
        net.reload_token.store(false, Ordering::Relaxed);
        net.token_reloaded.notify_one();
        Ok(())
    }

    /// Is a collector configured?
    pub fn enabled(&self) -> bool {
        self.net.is_some()
    }

    /// A copy of the upload figures.
    pub fn stats(&self) -> UploadStats {
        self.stats.get()
    }

    /// A handle on the figures that outlives `run(self)`.
    pub fn stats_handle(&self) -> UploadStatsHandle {
        self.stats.clone()
    }

    /// Upload everything ready, in order, until the spool is empty or an
    /// error (a failed request, a refusal, an acknowledgement that stops
    /// short of the batch). A 413 halves the batch size and tries again at
    /// once. Records are deleted only once acknowledged.
    pub async fn drain(&self) -> Result<DrainReport, UploadError> {
        let mut report = DrainReport::default();
        let Some(net) = &self.net else {
            return Ok(report);
        };
        loop {
            let size = self.batch_size.load(Ordering::Relaxed);
            let records = self.spool.batch(size).await?;
            let (Some(first), Some(last)) = (records.first(), records.last()) else {
                return Ok(report);
            };
            let (first, last) = (first.seq, last.seq_end.unwrap_or(last.seq));
            let n = records.len();
            // What this batch leaves waiting, for the collector's device
            // page; an upload does not fail for want of it.
            let backlog = match self.spool.backlog_after(last).await {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::debug!(error = %e, "spool backlog not counted");
                    None
                }
            };
            match self.send(net, records, backlog).await {
                Ok((ack, bytes)) => {
                    report.bytes += bytes;
                    let deleted = self.spool.ack(ack.acked).await?;
                    report.deleted += deleted;
                    report.acked = report.acked.max(ack.acked);
                    if ack.acked < last {
                        let e = UploadError::PartialAck {
                            acked: ack.acked,
                            first,
                            last,
                        };
                        if ack.acked.saturating_add(1) < first {
                            tracing::error!(
                                "the collector holds this device only up to seq {} but the spool \
                                 starts at {first}: it lost records this agent already deleted and \
                                 will not advance (collector restored from an old backup?)",
                                ack.acked
                            );
                        }
                        self.failed(&e);
                        return Err(e);
                    }
                    report.batches += 1;
                    report.records += n as u64;
                    let mut s = self.stats.lock();
                    s.batches += 1;
                    s.records += n as u64;
                    s.acked = s.acked.max(ack.acked);
                    s.last_success_ms = Some(now_ms());
                    s.consecutive_failures = 0;
                }
                Err(UploadError::Rejected {
                    status: 413,
                    message,
                    ..
                }) if n > 1 => {
                    let smaller = (n / 2).max(1);
                    self.batch_size.store(smaller, Ordering::Relaxed);
                    self.stats.lock().batch_size = smaller;
                    tracing::warn!(
                        "the collector found a batch of {n} records too large ({message}): \
                         sending {smaller} per batch from now on"
                    );
                }
                Err(e) => {
                    self.failed(&e);
                    return Err(e);
                }
            }
        }
    }

    fn failed(&self, e: &UploadError) {
        let mut s = self.stats.lock();
        s.last_error = Some(e.to_string());
        s.last_error_ms = Some(now_ms());
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
    }

    /// POST one batch; the acknowledgement and the compressed size.
    async fn send(
        &self,
        net: &Net,
        records: Vec<Record>,
        backlog: Option<Backlog>,
    ) -> Result<(Ack, u64), UploadError> {
        if net.reload_token.swap(false, Ordering::Relaxed) {
            match read_token(&net.token_file) {
                Ok(t) => *net.token.lock().unwrap_or_else(|p| p.into_inner()) = t,
                Err(e) => tracing::warn!("{e}"),
            }
        }
        let n = records.len();
        let batch = Batch {
            v: VERSION,
            device: self.device.clone(),
            records,
            next_upload_within_s: Some(next_upload_within_s(
                self.upload_interval,
                self.backoff_max,
            )),
            backlog,
        };
        let json = serde_json::to_vec(&batch).map_err(|e| UploadError::Encode(e.to_string()))?;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 4),
            flate2::Compression::default(),
        );
        gz.write_all(&json)
            .map_err(|e| UploadError::Encode(e.to_string()))?;
        let body = gz
            .finish()
            .map_err(|e| UploadError::Encode(e.to_string()))?;
        let bytes = body.len() as u64;
        {
            let mut s = self.stats.lock();
            s.bytes_sent += bytes;
            s.bytes_raw += json.len() as u64;
        }
        let token = net.token.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let network = |e: reqwest::Error| UploadError::Network {
            url: net.url.to_string(),
            message: chain(&e),
        };
        let request = || {
            net.client
                .post(net.url.clone())
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                .body(body.clone())
                .send()
        };
        let resp = match request().await {
            Ok(r) => r,
            // A kept connection the network dropped while idle (a NAT
            // forgetting it) fails the first request on it: once more, on a
            // new connection. Not after a timeout (that took long already).
            Err(e) if !e.is_timeout() => {
                tracing::debug!("upload request failed, retrying once: {}", chain(&e));
                self.stats.lock().bytes_sent += bytes;
                request().await.map_err(network)?
            }
            Err(e) => return Err(network(e)),
        };
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let text = resp.bytes().await.map_err(network)?;
        if status == reqwest::StatusCode::OK {
            let ack: Ack = serde_json::from_slice(&text).map_err(|e| {
                UploadError::BadAck(format!(
                    "{e} in `{}`",
                    shorten(&String::from_utf8_lossy(&text))
                ))
            })?;
            return Ok((ack, bytes));
        }
        if matches!(status.as_u16(), 401 | 403) {
            net.reload_token.store(true, Ordering::Relaxed);
        }
        let mut message = error_message(&text);
        if status == reqwest::StatusCode::FORBIDDEN
            && let Some(owner) = message.strip_prefix("this token belongs to device ")
        {
            message = format!(
                "{message}, but this agent sends the device name `{}`: set agent.device_name = \
                 \"{owner}\" in the agent's config (it defaults to the host name) and restart the agent",
                self.device
            );
        }
        Err(UploadError::Rejected {
            status: status.as_u16(),
            message,
            records: n,
            retry_after,
        })
    }
}
