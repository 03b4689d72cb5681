//! Wiring of the durable record inside the agent: opens the spool, writes
//! every record the [`Recorder`] hands over (start, facts, transitions,
//! minute summaries, failovers, heartbeats, clock steps, clean stop), and runs
//! the uploader when a collector is configured. The main loop records the
//! facts ([`facts`]) and the heartbeats itself.

use crate::agent::record::{Recorder, Stamp, ToSpool};
use crate::agent::spool::{Spool, SpoolError, SpoolStats};
use crate::agent::upload::{UploadError, Uploader, is_urgent};
use crate::config::agent::{AgentConfig, LinkPlan};
use crate::wire::v1::{Body, LifecycleEvent, LinkFact};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// The running record: recorder handle, spool writer and uploader.
pub struct Reporting {
    pub recorder: Recorder,
    spool: Arc<Spool>,
    writer: JoinHandle<()>,
    uploader: Option<(JoinHandle<()>, Arc<Notify>, Arc<Notify>)>,
    drainer: Option<Uploader>,
}

/// The OS name for the facts record (`PRETTY_NAME` of /etc/os-release).
fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// The record of what the device is (at start).
pub fn facts(hostname: &str, plans: &[LinkPlan]) -> Body {
    Body::Facts {
        hostname: hostname.to_string(),
        os: os_name(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        links: plans
            .iter()
            .map(|p| LinkFact {
                name: p.name.clone(),
                kind: p.kind,
                metered: p.metered,
                priority: p.priority,
            })
            .collect(),
    }
}

impl Reporting {
    /// Open the spool, record the start, and start writing and uploading.
    /// `only_metered` tells the uploader whether the only online links are metered.
    pub async fn start(
        cfg: &AgentConfig,
        device: &str,
        only_metered: Arc<dyn Fn() -> bool + Send + Sync>,
    ) -> Result<Self, ReportError> {
        let up = &cfg.upload;
        let spool = Arc::new(Spool::open(&up.spool_path, up.spool_max_bytes).await?);
        let stamp = Stamp::now();
        let boot_id = stamp.boot_id.clone();
        let boot_time = stamp.boot_time();
        let (recorder, mut rx) = Recorder::new(stamp);
        let (uploader, drainer, urgent) = match &up.collector_url {
            Some(url) => {
                let run = Uploader::new(up, device.to_string(), spool.clone())?;
                let drain = run.clone();
                let wake = Arc::new(Notify::new());
                let stop = Arc::new(Notify::new());
                let urgent = run.urgent_handle();
                let h = tokio::spawn(run.run(wake.clone(), stop.clone(), only_metered));
                info!(collector = %url, "uploading to the collector");
                (Some((h, wake, stop)), Some(drain), Some(urgent))
            }
            None => {
                warn!("no upload.collector_url: records are kept in the spool only");
                (None, None, None)
            }
        };
        let w_spool = spool.clone();
        let writer = tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                let (at, mono, body) = match item {
                    ToSpool::Record(at, mono, body) => (at, mono, body),
                    ToSpool::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                // A write that fails (disk full) is retried: records are
                // never dropped silently, and their order is kept.
                let mut delay = Duration::from_millis(100);
                loop {
                    match w_spool.append(at, mono, &boot_id, &body).await {
                        Ok(_) => {
                            if let Some(u) = urgent.as_ref().filter(|_| is_urgent(&body)) {
                                u.notify_one();
                            }
                            break;
                        }
                        Err(e) => {
                            error!("cannot write to the spool, retrying: {e}");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            }
        });
        recorder.record(Body::Lifecycle {
            event: LifecycleEvent::Start,
            boot_time: Some(boot_time),
            detail: Some(format!("linkwatch {}", env!("CARGO_PKG_VERSION"))),
        });
        Ok(Reporting {
            recorder,
            spool,
            writer,
            uploader,
            drainer,
        })
    }

    /// Read the upload token file again (SIGHUP); an error keeps the old token.
    pub fn reload_token(&self) -> Result<(), UploadError> {
        match &self.drainer {
            Some(d) => d.reload_token(),
            None => Ok(()),
        }
    }

    /// A link came back: try uploading now rather than at the next interval.
    pub fn link_back(&self) {
        if let Some((_, wake, _)) = &self.uploader {
            wake.notify_one();
        }
    }

    pub async fn stats(&self) -> Option<SpoolStats> {
        self.spool.stats().await.ok()
    }

    /// Spool and upload figures for `status` and metrics.
    pub async fn status(&self) -> crate::wire::RecordStatus {
        let s = self.stats().await.unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let up = self.drainer.as_ref().map(|d| d.stats());
        let ms_to_rfc = |ms: i64| {
            crate::shared::time::rfc3339(
                std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
            )
        };
        crate::wire::RecordStatus {
            depth: s.depth,
            bytes: s.bytes,
            oldest_unsent_age_s: s.oldest_at_ms.map(|o| ((now - o).max(0) / 1000) as u64),
            upload_enabled: up.is_some(),
            last_upload: up.as_ref().and_then(|u| u.last_success_ms).map(ms_to_rfc),
            last_error: up.as_ref().and_then(|u| u.last_error.clone()),
            upload_bytes: up.as_ref().map(|u| u.bytes_sent).unwrap_or(0),
        }
    }

    /// Clean stop: record it, flush the spool, and send what can be sent
    /// within `timeout` (the "going down" notice).
    pub async fn stop(self, timeout: Duration) {
        self.recorder.record(Body::Lifecycle {
            event: LifecycleEvent::Stop,
            boot_time: None,
            detail: Some("clean stop".into()),
        });
        let _ = tokio::time::timeout(timeout, self.recorder.flush()).await;
        let Reporting {
            writer,
            uploader,
            drainer,
            ..
        } = self;
        writer.abort();
        if let Some((h, _, stop)) = uploader {
            stop.notify_one();
            let _ = tokio::time::timeout(Duration::from_millis(200), h).await;
        }
        if let Some(d) = drainer {
            match tokio::time::timeout(timeout, d.drain()).await {
                Ok(Ok(r)) => info!(records = r.records, "sent the backlog before stopping"),
                Ok(Err(e)) => warn!("could not send the stop notice (kept in the spool): {e}"),
                Err(_) => warn!("collector too slow at stop: records kept in the spool"),
            }
        }
    }
}
