//! What the agent publishes about itself: the per-link views the workers
//! update, what the main loop decided (the device's `online`, the failover
//! status), the Prometheus metrics, and the local status listener
//! (`GET /status` as JSON, `GET /metrics` in the Prometheus text format).
//! Nothing here feeds a decision: the loop decides on the facts the workers
//! send it ([`crate::agent::worker::Note`]).

use crate::config::agent::LinkPlan;
use crate::shared::time::Clock;
use crate::shared::time::rfc3339;
use crate::wire::{AgentStatus, FailoverStatus, LinkState, LinkStatus, RecordStatus};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Labels of per-link series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    pub link: String,
    pub kind: String,
}

/// A link state as a label value, spelled as `status` spells it (`down`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum StateLabel {
    Up,
    Degraded,
    Down,
    Absent,
}

impl EncodeLabelValue for StateLabel {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(match self {
            StateLabel::Up => "up",
            StateLabel::Degraded => "degraded",
            StateLabel::Down => "down",
            StateLabel::Absent => "absent",
        })
    }
}

impl From<LinkState> for StateLabel {
    fn from(s: LinkState) -> Self {
        match s {
            LinkState::Up => StateLabel::Up,
            LinkState::Degraded => StateLabel::Degraded,
            LinkState::Down => StateLabel::Down,
            LinkState::Absent => StateLabel::Absent,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub link: String,
    pub kind: String,
    pub state: StateLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub link: String,
    pub to: StateLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub link: String,
    pub probe: String,
    pub result: String,
}

/// The agent's Prometheus metrics.
pub struct Metrics {
    pub registry: Registry,
    pub link_state: Family<StateLabels, Gauge>,
    pub link_active: Family<LinkLabels, Gauge>,
    pub rtt: Family<LinkLabels, Histogram>,
    pub loss: Family<LinkLabels, Gauge<f64, AtomicU64>>,
    pub transitions: Family<TransitionLabels, Counter>,
    pub probes: Family<ProbeLabels, Counter>,
    pub probe_bytes: Family<LinkLabels, Counter>,
    pub online: Gauge,
    pub switches: Family<SwitchLabels, Counter>,
    pub route_apply: Histogram,
    pub spool_depth: Gauge,
    pub spool_oldest: Gauge,
    pub upload_bytes: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwitchLabels {
    pub cause: String,
    pub from: String,
    pub to: String,
}

fn rtt_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("linkwatch");
        let link_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "link_state",
            "1 for the link's current state (up, degraded, down, absent), 0 for the others",
            link_state.clone(),
        );
        let link_active = Family::<LinkLabels, Gauge>::default();
        registry.register(
            "link_active",
            "1 when the link carries the default route",
            link_active.clone(),
        );
        let rtt = Family::<LinkLabels, Histogram>::new_with_constructor(
            rtt_histogram as fn() -> Histogram,
        );
        registry.register(
            "probe_rtt_seconds",
            "Round-trip time of reachability probes",
            rtt.clone(),
        );
        let loss = Family::<LinkLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "link_loss_ratio",
            "Probe loss over the health window (0 to 1)",
            loss.clone(),
        );
        let transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "link_transitions",
            "Link state changes, by new state",
            transitions.clone(),
        );
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register("probes", "Probes run, by kind and result", probes.clone());
        let probe_bytes = Family::<LinkLabels, Counter>::default();
        registry.register_with_unit(
            "probe",
            "Estimated bytes put on the wire by probes",
            prometheus_client::registry::Unit::Bytes,
            probe_bytes.clone(),
        );
        let online = Gauge::default();
        registry.register(
            "device_online",
            "1 when at least one link reaches the internet",
            online.clone(),
        );
        let switches = Family::<SwitchLabels, Counter>::default();
        registry.register(
            "failovers",
            "Changes of the chosen link (failover, fail-back, manual), by cause",
            switches.clone(),
        );
        let route_apply = Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]);
        registry.register(
            "route_apply_seconds",
            "Time from a decision to its routes being in the kernel",
            route_apply.clone(),
        );
        let spool_depth = Gauge::default();
        registry.register(
            "spool_records",
            "Records in the spool not yet acknowledged by the collector",
            spool_depth.clone(),
        );
        let spool_oldest = Gauge::default();
        registry.register_with_unit(
            "spool_oldest_unsent_age",
            "Age of the oldest record not yet acknowledged",
            prometheus_client::registry::Unit::Seconds,
            spool_oldest.clone(),
        );
        let upload_bytes = Gauge::default();
        registry.register_with_unit(
            "upload_sent",
            "Compressed bytes sent to the collector since start",
            prometheus_client::registry::Unit::Bytes,
            upload_bytes.clone(),
        );
        Metrics {
            registry,
            spool_depth,
            spool_oldest,
            upload_bytes,
            switches,
            route_apply,
            link_state,
            link_active,
            rtt,
            loss,
            transitions,
            probes,
            probe_bytes,
            online,
        }
    }

    /// Set the one-hot state series of a link.
    pub fn set_state(&self, link: &str, kind: &str, state: LinkState) {
        for s in [
            LinkState::Up,
            LinkState::Degraded,
            LinkState::Down,
            LinkState::Absent,
        ] {
            self.link_state
                .get_or_create(&StateLabels {
                    link: link.into(),
                    kind: kind.into(),
                    state: s.into(),
                })
                .set(i64::from(s == state));
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What the status listener shows of one link.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub plan: LinkPlan,
    pub state: LinkState,
    pub reason: Option<String>,
    pub since: SystemTime,
    pub rtt_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    pub active: bool,
    pub warnings: Vec<String>,
    pub probe_bytes: u64,
}

/// What the status listener shows: the links' views (from their workers)
/// and the main loop's decisions.
pub struct Shared {
    pub links: RwLock<BTreeMap<String, LinkView>>,
    pub metrics: Metrics,
    pub started: SystemTime,
    pub hostname: String,
    pub failover: RwLock<FailoverStatus>,
    pub record: RwLock<RecordStatus>,
    /// The clock the links' timestamps are on.
    pub clock: Clock,
    /// The device's `online` as the main loop last decided it.
    online: AtomicBool,
}

impl Shared {
    pub fn new(hostname: String, clock: Clock) -> Arc<Self> {
        Arc::new(Shared {
            clock,
            links: RwLock::new(BTreeMap::new()),
            metrics: Metrics::new(),
            started: SystemTime::now(),
            hostname,
            failover: RwLock::new(FailoverStatus::default()),
            record: RwLock::new(RecordStatus::default()),
            online: AtomicBool::new(false),
        })
    }

    /// Replace one link's view and refresh the derived metrics.
    pub fn update(&self, view: LinkView) {
        let kind = view.plan.kind.to_string();
        self.metrics.set_state(&view.plan.name, &kind, view.state);
        let labels = LinkLabels {
            link: view.plan.name.clone(),
            kind,
        };
        self.metrics
            .link_active
            .get_or_create(&labels)
            .set(i64::from(view.active));
        if let Some(l) = view.loss_pct {
            self.metrics.loss.get_or_create(&labels).set(l / 100.0);
        }
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        links.insert(view.plan.name.clone(), view);
    }

    /// Publish the device's `online` (status and the `device_online` gauge).
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Relaxed);
        self.metrics.online.set(i64::from(online));
    }

    /// The device's `online` as last published.
    pub fn online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// Forget a link (removed from the configuration).
    pub fn remove(&self, name: &str) {
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        links.remove(name);
    }

    /// The status document.
    pub fn snapshot(&self) -> AgentStatus {
        let online = self.online();
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<LinkStatus> = links
            .values()
            .map(|v| LinkStatus {
                name: v.plan.name.clone(),
                kind: v.plan.kind,
                state: v.state,
                reason: v.reason.clone(),
                rtt_ms: v.rtt_ms.map(|r| (r * 100.0).round() / 100.0),
                loss_pct: v.loss_pct.map(|l| (l * 10.0).round() / 10.0),
                since: rfc3339(v.since),
                active: v.active,
                metered: v.plan.metered,
                priority: v.plan.priority,
                warnings: v.warnings.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.name.cmp(&b.name)));
        AgentStatus {
            online,
            hostname: self.hostname.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            started: rfc3339(self.started),
            links: out,
            failover: self
                .failover
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            record: self
                .record
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Errors of the status listener.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot listen for status on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("status listener on {addr} failed: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Bind the status listener (so a port clash stops the agent at start).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StatusError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StatusError::Bind { addr, source })
}

/// A request from the local listener to the agent's main loop.
#[derive(Debug)]
pub enum Control {
    /// `linkwatch prefer LINK` (Some) or `--auto` (None); the reply is the
    /// message to show, or an error.
    Prefer {
        link: Option<String>,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
}

/// Body of `POST /prefer`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferRequest {
    pub link: Option<String>,
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    control: tokio::sync::mpsc::UnboundedSender<Control>,
}

/// Serve `/status`, `/metrics` and `POST /prefer` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    control: tokio::sync::mpsc::UnboundedSender<Control>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StatusError> {
    use axum::{
        Json, Router,
        extract::State,
        http::{StatusCode, header},
        response::IntoResponse,
        routing::{get, post},
    };
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    async fn status(State(s): State<AppState>) -> Json<AgentStatus> {
        Json(s.shared.snapshot())
    }
    async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s.shared.metrics.encode(),
        )
    }
    async fn prefer(
        State(s): State<AppState>,
        Json(req): Json<PreferRequest>,
    ) -> (StatusCode, String) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if s.control
            .send(Control::Prefer {
                link: req.link,
                reply: tx,
            })
            .is_err()
        {
            return (StatusCode::SERVICE_UNAVAILABLE, "agent is stopping".into());
        }
        match rx.await {
            Ok(Ok(msg)) => (StatusCode::OK, msg),
            Ok(Err(msg)) => (StatusCode::BAD_REQUEST, msg),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "agent is stopping".into()),
        }
    }
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/prefer", post(prefer))
        .with_state(AppState { shared, control });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| StatusError::Serve { addr, source })
}

#[cfg(test)]
mod label_tests {
    use super::*;

    /// Label values are spelled as `status` spells the states.
    #[test]
    fn state_labels_are_lower_case_like_status() {
        let m = Metrics::new();
        m.set_state("eth0", "broadband", LinkState::Down);
        m.transitions
            .get_or_create(&TransitionLabels {
                link: "eth0".into(),
                to: LinkState::Degraded.into(),
            })
            .inc();
        let text = m.encode();
        for s in ["up", "degraded", "down", "absent"] {
            assert!(text.contains(&format!("state=\"{s}\"")), "{s}: {text}");
        }
        assert!(text.contains("to=\"degraded\""), "{text}");
        assert!(
            text.contains("state=\"down\"} 1"),
            "the one-hot series: {text}"
        );
        for s in ["Up", "Degraded", "Down", "Absent"] {
            assert!(!text.contains(&format!("\"{s}\"")), "{s}: {text}");
        }
        for s in [LinkState::Up, LinkState::Down] {
            assert!(text.contains(&format!("\"{s}\"")));
        }
    }
}
