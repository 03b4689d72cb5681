//! What the HTTP handlers share: the store, the metrics, the limits of the
//! ingest endpoint (uploads in flight, per device and in all), its token
//! cache, the holidays of report schedules and the key of alert
//! acknowledgement links.

use super::intake::DeviceSlots;
use super::tokens::TokenCache;
use crate::collector::alerts::ack::AckKey;
use crate::collector::metrics::CollectorMetrics;
use crate::collector::store::Store;
use crate::config::collector::IngestLimits;
use jiff::civil::Date;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Limits of the API (from `[collector]`).
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub max_body_bytes: usize,
    pub max_inflight: usize,
    /// Holidays applied to every office-hours schedule of the read API.
    pub holidays: BTreeSet<Date>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) metrics: Arc<CollectorMetrics>,
    pub(super) inflight: Semaphore,
    pub(super) devices: Arc<DeviceSlots>,
    /// Which device each recently seen upload token belongs to.
    pub(super) tokens: TokenCache,
    pub(super) max_body_bytes: usize,
    pub(super) limits: IngestLimits,
    holidays: BTreeSet<Date>,
    /// The key of alert acknowledgement links, once alerts are configured.
    ack_key: OnceLock<AckKey>,
    /// `collector.raw_retention_days` as the storage view states it (when
    /// never set: the default configuration's).
    raw_retention: OnceLock<Option<i64>>,
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState(pub(super) Arc<Inner>);

impl ApiState {
    /// With the default [`IngestLimits`].
    pub fn new(store: Arc<dyn Store>, opts: ApiOptions) -> Self {
        Self::with_limits(
            store,
            opts,
            IngestLimits::default(),
            Arc::new(CollectorMetrics::new()),
        )
    }

    /// With the ingest limits given, reporting into `metrics` (shared with
    /// the connection guard).
    pub fn with_limits(
        store: Arc<dyn Store>,
        opts: ApiOptions,
        limits: IngestLimits,
        metrics: Arc<CollectorMetrics>,
    ) -> Self {
        ApiState(Arc::new(Inner {
            store,
            metrics,
            inflight: Semaphore::new(opts.max_inflight.min(Semaphore::MAX_PERMITS)),
            devices: DeviceSlots::new(limits.max_inflight_per_device),
            tokens: TokenCache::default(),
            max_body_bytes: opts.max_body_bytes,
            limits,
            holidays: opts.holidays,
            ack_key: OnceLock::new(),
            raw_retention: OnceLock::new(),
        }))
    }

    /// Accept acknowledgement links signed with `key` (once; later calls
    /// change nothing).
    pub fn set_ack_key(&self, key: AckKey) {
        let _ = self.0.ack_key.set(key);
    }
    pub fn ack_key(&self) -> Option<&AckKey> {
        self.0.ack_key.get()
    }
    /// State `days` as the raw retention (once; later calls change nothing).
    pub fn set_raw_retention_days(&self, days: Option<i64>) {
        let _ = self.0.raw_retention.set(days);
    }
    pub fn raw_retention_days(&self) -> Option<i64> {
        match self.0.raw_retention.get() {
            Some(d) => *d,
            None => crate::config::collector::RollupSettings::default().raw_retention_days,
        }
    }
    /// Holidays applied to office-hours schedules of reports.
    pub fn holidays(&self) -> &BTreeSet<Date> {
        &self.0.holidays
    }
    pub fn metrics(&self) -> &CollectorMetrics {
        &self.0.metrics
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }
    /// Largest request body accepted, as sent.
    pub fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }
}
