//! The alert engine at work in the collector: the thin I/O layer around
//! the pure [`evaluate`](super::evaluate) and [`outbox`](super::outbox).
//! Under `Job::Alerts` (one replica at a time, see `collector::lead`), each
//! round
//!
//! 1. [`tick`]: builds the engine's input from the store (every device's
//!    last seen, read in full only when the catalog changed, otherwise only
//!    the devices that uploaded since the last round, [`super::fleet`];
//!    whether its last record is a clean stop; the offices; the open
//!    alerts; the late data of silent devices heard from again),
//!    evaluates, and applies the decisions with their outbox rows in one
//!    transaction;
//! 2. [`deliver`]: reads the outbox, expires and defers what
//!    [`outbox::due`] says, claims each row to send (compare-and-set, so a
//!    row is never claimed twice), sends it through its channel (channels
//!    in parallel, one channel's rows in order) and stores the outcome
//!    ([`outbox::settle`]: delivered, retried after a back-off, refused or
//!    expired). A collector that dies mid-send leaves the row claimed; it
//!    is due again when the lease runs out, and sent again with the same
//!    dedupe key (at least once).
//!
//! The silences in force or planned (ending after now) and the contacts
//! stored from the CLI are read each round, beside the configuration's.
//!
//! The devices named in `alerts.gateways` are office gateways; a device
//! some link rule watches has its links read from its last state-setting
//! records ([`super::links`]), once per upload.

use super::annotate::{self, Annotation};
use super::channels::Sender;
use super::contacts::Routing;
use super::model::{DeviceFacts, Event, Silence, StopKind};
use super::outbox::{self, OutboxRow, Planner, RowState};
use super::rules::{Context, Rule, RuleKind};
use super::{Input, annotation_requests, evaluate};
use crate::collector::alerts::AlertsConfig;
use crate::collector::fleet_copy::Fleet;
use crate::collector::lead::{Job, JobMetrics, Leadership, run_job};
use crate::collector::store::{Device, Office, Store, StoreError};
use crate::collector::uptime::Params;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

mod reads;

pub use reads::stop_kind;
use reads::{LinksCache, StopCache, refresh};

/// Labels of the alert counters: a kind, an event or a channel name (from
/// the configuration: a handful).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub label: String,
}

/// The collector metrics of alerts.
#[derive(Clone)]
pub struct AlertMetrics {
    /// Alerts opened, by kind.
    pub opened: Family<AlertLabels, Counter>,
    /// Notices decided, by event (opened, escalated, recovered).
    pub notices: Family<AlertLabels, Counter>,
    /// Messages delivered, by channel.
    pub delivered: Family<AlertLabels, Counter>,
    /// Failed attempts, by channel (retried or not).
    pub failures: Family<AlertLabels, Counter>,
    /// Messages given up (refused for good or expired), by channel.
    pub given_up: Family<AlertLabels, Counter>,
    /// From a message's creation to its delivery.
    pub latency: Histogram,
}

impl AlertMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = AlertMetrics {
            opened: Family::default(),
            notices: Family::default(),
            delivered: Family::default(),
            failures: Family::default(),
            given_up: Family::default(),
            latency: Histogram::new([0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0]),
        };
        registry.register(
            "alerts_opened",
            "Alerts opened, by kind (label)",
            m.opened.clone(),
        );
        registry.register(
            "alert_notices",
            "Alert notices decided, by event (label: opened, escalated, recovered)",
            m.notices.clone(),
        );
        registry.register(
            "alert_messages_delivered",
            "Alert messages accepted by their receiver, by channel (label)",
            m.delivered.clone(),
        );
        registry.register(
            "alert_delivery_failures",
            "Failed attempts to deliver an alert message, by channel (label)",
            m.failures.clone(),
        );
        registry.register(
            "alert_messages_given_up",
            "Alert messages refused for good or expired, by channel (label)",
            m.given_up.clone(),
        );
        registry.register(
            "alert_delivery_seconds",
            "Time from an alert message's creation to its delivery",
            m.latency.clone(),
        );
        m
    }

    fn inc(f: &Family<AlertLabels, Counter>, label: &str) {
        f.get_or_create(&AlertLabels {
            label: label.to_string(),
        })
        .inc();
    }
}

/// The engine: the compiled configuration, the channels' senders, and
/// what is remembered between rounds.
pub struct Engine {
    pub cfg: AlertsConfig,
    routing: Routing,
    senders: BTreeMap<String, Arc<dyn Sender>>,
    pub metrics: AlertMetrics,
    /// Per device id: (its last upload, whether its last record was a
    /// clean stop), so that a silent device's last record is read once.
    stops: Mutex<StopCache>,
    /// Per device id: (its last upload, its links as its records tell), so
    /// that a gateway's records are read once per upload.
    links: Mutex<LinksCache>,
    /// The devices and offices as of the last round ([`super::fleet`]).
    fleet: tokio::sync::Mutex<Option<Fleet>>,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundStats {
    pub opened: usize,
    pub resolved: usize,
    pub notices: usize,
    pub sent: usize,
    pub delivered: usize,
    pub failed: usize,
    /// When something falls due next, as far as this round knows
    /// ([`super::wake`]).
    pub next_due_ms: Option<i64>,
}

impl Engine {
    pub fn new(
        cfg: AlertsConfig,
        metrics: AlertMetrics,
    ) -> Result<Engine, super::channels::SendError> {
        let senders = super::channels::senders(&cfg.channels)?;
        Ok(Engine {
            routing: Routing::new(cfg.contacts.clone()),
            senders,
            cfg,
            metrics,
            stops: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            fleet: tokio::sync::Mutex::new(None),
        })
    }

    /// The engine with senders of its own (tests, benchmarks).
    pub fn with_senders(
        cfg: AlertsConfig,
        senders: BTreeMap<String, Arc<dyn Sender>>,
        metrics: AlertMetrics,
    ) -> Engine {
        Engine {
            routing: Routing::new(cfg.contacts.clone()),
            senders,
            cfg,
            metrics,
            stops: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            fleet: tokio::sync::Mutex::new(None),
        }
    }

    /// The configuration's contacts and those stored from the CLI
    /// (`linkwatch contacts import`); a stored contact named like one of
    /// the configuration is left out (the configuration wins), as is one
    /// using a channel the configuration does not define.
    fn routing_with(&self, stored: Vec<super::contacts::Contact>) -> std::borrow::Cow<'_, Routing> {
        if stored.is_empty() {
            return std::borrow::Cow::Borrowed(&self.routing);
        }
        let mut all = self.routing.contacts.clone();
        for c in stored {
            if all.iter().any(|k| k.name.eq_ignore_ascii_case(&c.name)) {
                tracing::warn!(contact = %c.name, "alerts: a stored contact is named like one of the configuration; the configuration's is used");
            } else if let Some(ch) = c
                .channels
                .iter()
                .find(|ch| !self.cfg.channel_needs.contains_key(*ch))
            {
                tracing::warn!(contact = %c.name, channel = %ch, "alerts: a stored contact uses a channel the configuration does not define; left out");
            } else {
                all.push(c);
            }
        }
        std::borrow::Cow::Owned(Routing::new(all))
    }
}

/// The engine's facts about a device.
fn facts(d: &Device, gateway: bool, stopped: Option<StopKind>) -> DeviceFacts {
    DeviceFacts {
        name: d.name.clone(),
        office: d.office.clone(),
        gateway,
        last_record_ms: d.seen.last_record_ms,
        last_upload_ms: d.seen.last_upload_ms,
        next_upload_due_ms: d.seen.next_upload_due_ms,
        stopped,
        links_down: Vec::new(),
        links: None,
    }
}

/// One evaluation at `now_ms`: see the module documentation.
pub async fn tick(store: &dyn Store, e: &Engine, now_ms: i64) -> Result<RoundStats, StoreError> {
    let mut fleet = e.fleet.lock().await;
    let fleet = refresh(store, &mut fleet, now_ms).await?;
    let devices: Vec<&Device> = fleet.devices().iter().filter(|d| !d.revoked).collect();
    let offices = fleet.offices().to_vec();
    let by_code: HashMap<String, Office> = offices
        .iter()
        .map(|o| (o.code.clone(), o.clone()))
        .collect();
    let ctx = Context::new(e.cfg.rules.clone(), offices);
    let mut all = Vec::with_capacity(devices.len());
    let link_rules: Vec<&Rule> = ctx
        .rules
        .rules
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                RuleKind::Failover | RuleKind::LinkDown | RuleKind::MeteredTraffic
            )
        })
        .collect();
    e.read_stops(store, &devices, now_ms).await?;
    for &d in &devices {
        let gateway = e.cfg.gateways.contains(&d.name);
        let mut f = facts(d, gateway, e.stopped(d, now_ms));
        if link_rules.iter().any(|r| r.watches(&f, &ctx.offices)) {
            f.links = e.links(store, d).await?;
        }
        all.push(f);
    }
    let open = store.open_alerts().await?;
    let silences: Vec<Silence> = store
        .silences(now_ms)
        .await?
        .into_iter()
        .map(|r| r.silence)
        .collect();
    let routing = e.routing_with(store.stored_contacts().await?);
    let mut annotations: BTreeMap<String, Annotation> = BTreeMap::new();
    {
        let input = Input {
            now_ms,
            devices: &all,
            open: &open,
            silences: &silences,
            annotations: &annotations,
        };
        let requests = annotation_requests(&ctx, &input);
        let wanted: std::collections::HashSet<&str> =
            requests.iter().map(|r| r.device.as_str()).collect();
        let by_name: HashMap<&str, &Device> = if wanted.is_empty() {
            HashMap::new()
        } else {
            devices
                .iter()
                .filter(|d| wanted.contains(d.name.as_str()))
                .map(|&d| (d.name.as_str(), d))
                .collect()
        };
        let mut found = BTreeMap::new();
        for req in requests {
            let Some(d) = by_name.get(req.device.as_str()) else {
                continue;
            };
            let recs = match crate::collector::report::records_around(
                store,
                d,
                req.from_ms,
                req.to_ms,
            )
            .await
            {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(device = %d.name, error = %err, "alerts: cannot read the late data");
                    continue;
                }
            };
            let a = annotate::annotate(&recs, req.from_ms, req.to_ms, now_ms, &Params::default());
            found.insert(req.device.clone(), a);
        }
        annotations = found;
    }
    let input = Input {
        now_ms,
        devices: &all,
        open: &open,
        silences: &silences,
        annotations: &annotations,
    };
    let d = evaluate(&ctx, &routing, &input);
    let planner = Planner {
        routing: &routing,
        channels: &e.cfg.channel_needs,
        templates: &e.cfg.templates,
        zone: &e.cfg.zone,
        ack: e.cfg.ack.as_ref(),
        policy: e.cfg.outbox,
    };
    let plan = |k: usize, id: i64| {
        let n = &d.notify[k];
        let office = n.view.office.as_ref().and_then(|c| by_code.get(c));
        planner.plan(n, id, office, now_ms)
    };
    store.apply_alerts(&d, &plan).await?;
    // What is open after this round, for the next wake.
    let mut after = open.clone();
    let mut next_id = after.iter().map(|a| a.id).max().unwrap_or(0);
    d.apply(&mut after, &mut next_id);
    let next_due_ms = super::wake::next_wake(&ctx.rules, now_ms, &all, &after, &silences);
    for a in &d.open {
        AlertMetrics::inc(&e.metrics.opened, a.kind.as_str());
    }
    for n in &d.notify {
        AlertMetrics::inc(&e.metrics.notices, n.event.as_str());
        if n.event == Event::Opened {
            tracing::info!(alert = %n.view.key, kind = %n.view.kind, "alert told");
        }
    }
    Ok(RoundStats {
        opened: d.open.len(),
        resolved: d.resolve.len(),
        notices: d.notify.len(),
        next_due_ms,
        ..RoundStats::default()
    })
}

/// One pass over the outbox at `now_ms`: see the module documentation.
pub async fn deliver(store: &dyn Store, e: &Engine, now_ms: i64) -> Result<RoundStats, StoreError> {
    let p = e.cfg.outbox;
    let rows = store
        .outbox_rows(now_ms.saturating_sub(p.rate_window_ms))
        .await?;
    let plan = outbox::due(&rows, now_ms, &p);
    // Rows not touched this round wake the loop at their time; rows sent
    // now and failing wait at least `first_retry` (the interval covers it).
    let touched: std::collections::HashSet<&str> = plan
        .send
        .iter()
        .chain(&plan.expire)
        .chain(&plan.defer)
        .map(|u| u.dedupe_key.as_str())
        .collect();
    let untouched: Vec<OutboxRow> = rows
        .iter()
        .filter(|r| !touched.contains(r.dedupe_key.as_str()))
        .cloned()
        .collect();
    let outbox_next = super::wake::outbox_wake(&untouched, now_ms);
    let by_key: HashMap<&str, &OutboxRow> =
        rows.iter().map(|r| (r.dedupe_key.as_str(), r)).collect();
    let mut stats = RoundStats {
        next_due_ms: outbox_next,
        ..RoundStats::default()
    };
    // Outcomes are stamped on the same clock as `now_ms`, plus the time
    // the sends took.
    let started = std::time::Instant::now();
    for u in plan.expire.iter().chain(&plan.defer) {
        let Some(r) = by_key.get(u.dedupe_key.as_str()) else {
            continue;
        };
        let mut r = (*r).clone();
        r.apply(u);
        if r.state == RowState::Expired {
            AlertMetrics::inc(&e.metrics.given_up, &r.channel);
            tracing::warn!(key = %r.dedupe_key, channel = %r.channel, "alert message expired undelivered");
        }
        store.settle_outbox(&r).await?;
    }
    // Claimed rows, by channel.
    let mut work: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
    for u in &plan.send {
        let Some(r) = by_key.get(u.dedupe_key.as_str()) else {
            continue;
        };
        let was = r.next_attempt_ms;
        let mut r = (*r).clone();
        r.apply(u);
        if store.claim_outbox(&r, was).await? {
            work.entry(r.channel.clone()).or_default().push(r);
        }
    }
    let sends = work.into_iter().map(|(channel, rows)| async move {
        let mut out = Vec::with_capacity(rows.len());
        let sender = e.senders.get(&channel).cloned();
        for r in rows {
            let result = match &sender {
                Some(s) => s.send(&r.address, &r.message).await,
                None => Err(super::channels::SendError::permanent(
                    &channel,
                    "no such channel in the configuration",
                )),
            };
            out.push((r, result));
        }
        out
    });
    for (mut r, result) in futures::future::join_all(sends).await.into_iter().flatten() {
        stats.sent += 1;
        let now = now_ms.saturating_add(started.elapsed().as_millis() as i64);
        let u = outbox::settle(
            &r,
            result.as_ref().map(|_| ()),
            now,
            &p,
            rand::random::<f64>(),
        );
        r.apply(&u);
        // Stored first: what the metrics count is in the outbox.
        store.settle_outbox(&r).await?;
        match (&result, r.state) {
            (Ok(()), _) => {
                stats.delivered += 1;
                AlertMetrics::inc(&e.metrics.delivered, &r.channel);
                e.metrics
                    .latency
                    .observe(now.saturating_sub(r.created_ms).max(0) as f64 / 1000.0);
            }
            (Err(err), state) => {
                stats.failed += 1;
                AlertMetrics::inc(&e.metrics.failures, &r.channel);
                if state != RowState::Pending {
                    AlertMetrics::inc(&e.metrics.given_up, &r.channel);
                }
                tracing::warn!(key = %r.dedupe_key, error = %err, state = state.as_str(), "alert message not delivered");
            }
        }
    }
    Ok(stats)
}

/// Evaluate and deliver every `cfg.interval` while this replica holds
/// `Job::Alerts`, until dropped; and in between, when something falls due
/// sooner (an upload deadline plus the grace, an escalation, a silence's
/// end, an outbox retry: [`super::wake`]), then, at most once a
/// [`super::wake::MIN_GAP`] and never sooner than the last round took.
pub async fn run(
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    lead: Arc<dyn Leadership>,
    jobs: JobMetrics,
) {
    let every = engine.cfg.interval;
    run_job(lead, Job::Alerts, every, jobs, move |_| {
        let (store, engine) = (store.clone(), engine.clone());
        async move {
            let started = std::time::Instant::now();
            loop {
                let this = std::time::Instant::now();
                let next = round(store.as_ref(), &engine).await;
                let took = this.elapsed();
                let now = crate::collector::last_seen::now_ms();
                match super::wake::sleep_before(now, next, started.elapsed(), took, every) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => break,
                }
            }
        }
    })
    .await
}

/// One evaluation and one delivery, now; when something falls due next.
async fn round(store: &dyn Store, engine: &Engine) -> Option<i64> {
    let now = crate::collector::last_seen::now_ms();
    let mut next = None;
    match tick(store, engine, now).await {
        Ok(s) => {
            if s.opened + s.resolved + s.notices > 0 {
                tracing::info!(
                    opened = s.opened,
                    resolved = s.resolved,
                    notices = s.notices,
                    "alerts evaluated"
                );
            }
            next = s.next_due_ms;
        }
        Err(err) => {
            tracing::warn!(error = %err, "alerts: evaluation failed; next round will try again")
        }
    }
    let now = crate::collector::last_seen::now_ms();
    match deliver(store, engine, now).await {
        Ok(s) => next = next.into_iter().chain(s.next_due_ms).min(),
        Err(err) => {
            tracing::warn!(error = %err, "alerts: delivery round failed; next round will try again")
        }
    }
    next
}
