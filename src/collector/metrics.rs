//! The collector's Prometheus metrics (served on `GET /metrics`): ingest
//! requests by status, records stored and replayed, latency, uploads in
//! flight, and the connection guard's figures (open connections, closed for
//! a timeout, refused or evicted at the cap), and the fleet's last seen
//! (`collector::last_seen`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of the per-status-code request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

/// Labels of the counter of connections closed for a timeout.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `header` (no complete request head in time) or `idle` (nothing sent
    /// on a kept connection).
    pub reason: String,
}

/// The collector's Prometheus metrics.
pub struct CollectorMetrics {
    registry: Registry,
    pub requests: Family<CodeLabels, Counter>,
    pub records_stored: Counter,
    pub records_duplicate: Counter,
    pub latency: Histogram,
    pub inflight: Gauge,
    pub connections: Gauge,
    pub connections_timed_out: Family<ReasonLabels, Counter>,
    pub connections_refused: Counter,
    pub connections_evicted: Counter,
    /// The periodic jobs' (who leads which, what they did).
    pub jobs: crate::collector::lead::JobMetrics,
    /// Devices silent, never heard from, by age of their last upload.
    pub seen: crate::collector::last_seen::SeenGauges,
    /// Alerts opened, notices, deliveries, failures, delivery latency.
    pub alerts: crate::collector::alerts::run::AlertMetrics,
    /// The database's size and its oldest raw minute.
    pub storage: crate::collector::storage::StorageGauges,
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CollectorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("linkwatch_collector");
        let requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "ingest_requests",
            "Ingest requests answered, by HTTP status code",
            requests.clone(),
        );
        let records_stored = Counter::default();
        registry.register(
            "ingest_records_stored",
            "Records stored for the first time",
            records_stored.clone(),
        );
        let records_duplicate = Counter::default();
        registry.register(
            "ingest_records_duplicate",
            "Records received again (replays) and not stored twice",
            records_duplicate.clone(),
        );
        let latency = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ]);
        registry.register(
            "ingest_duration_seconds",
            "Time to answer an ingest request",
            latency.clone(),
        );
        let inflight = Gauge::default();
        registry.register(
            "ingest_inflight",
            "Ingest requests being handled now",
            inflight.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Client connections open now",
            connections.clone(),
        );
        let connections_timed_out = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_timed_out",
            "Connections closed because no complete request head arrived in time (header) \
             or nothing was sent on a kept connection (idle)",
            connections_timed_out.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at once: max_connections open and none of them idle",
            connections_refused.clone(),
        );
        let connections_evicted = Counter::default();
        registry.register(
            "connections_evicted",
            "Idle connections closed to make room for a new one at max_connections",
            connections_evicted.clone(),
        );
        let jobs = crate::collector::lead::JobMetrics::register(&mut registry);
        let seen = crate::collector::last_seen::SeenGauges::register(&mut registry);
        let storage = crate::collector::storage::StorageGauges::register(&mut registry);
        let alerts = crate::collector::alerts::run::AlertMetrics::register(&mut registry);
        CollectorMetrics {
            alerts,
            registry,
            jobs,
            seen,
            storage,
            requests,
            records_stored,
            records_duplicate,
            latency,
            inflight,
            connections,
            connections_timed_out,
            connections_refused,
            connections_evicted,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_the_ingest_series() {
        let m = CollectorMetrics::new();
        m.requests
            .get_or_create(&CodeLabels { code: "200".into() })
            .inc();
        m.records_stored.inc_by(3);
        m.latency.observe(0.01);
        let text = m.encode();
        assert!(
            text.contains("linkwatch_collector_ingest_requests_total{code=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("linkwatch_collector_ingest_records_stored_total 3"));
        assert!(text.contains("linkwatch_collector_ingest_duration_seconds_bucket"));
    }
}
