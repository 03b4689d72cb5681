//! Which collector replica runs which periodic job. Several collectors may
//! share one PostgreSQL; each periodic job ([`Job`]: the roll-ups, the
//! retention, and the alert evaluation and delivery) must run on exactly one of
//! them at a time, and another must take over within one interval when that
//! one dies. The jobs know only the [`Leadership`] trait: the store provides
//! it (`Store::leadership`), as PostgreSQL advisory locks
//! (`store::postgres::lead`) or, for SQLite's one process, [`Solo`], which
//! always holds every job.
//!
//! [`run_job`] is the loop every job runs in: every interval it asks to hold
//! the job (taking it when free, confirming it when held) and runs a round
//! only when it does; while a round runs it watches for the hold being lost
//! and abandons the round then (each store call is its own transaction, so
//! an abandoned round leaves nothing half-written; the roll-ups' dirty-mark
//! versions keep a round that overlaps the next leader's from storing stale
//! rows). A change of leadership is logged (`leads job` / `no longer leads
//! job`) and shown in the collector metric
//! `linkwatch_collector_job_leader{job}` (1 on the replica that holds it).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A periodic job that runs on one replica at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    /// Bringing day and hour roll-ups up to date (`collector::maintainer`).
    Rollups,
    /// Deleting raw minute summaries past `raw_retention_days`.
    Retention,
    /// Evaluating alert rules (the hook the alert evaluator runs under).
    Alerts,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Rollups, Job::Retention, Job::Alerts];

    /// The job's name in logs, metrics and lock keys.
    pub fn name(self) -> &'static str {
        match self {
            Job::Rollups => "rollups",
            Job::Retention => "retention",
            Job::Alerts => "alerts",
        }
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why holding a job could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum LeadError {
    #[error("cannot reach the database to hold job `{job}`: {source}")]
    Connect {
        job: Job,
        #[source]
        source: sqlx::Error,
    },
    #[error("no answer from the database within {after:?} while taking job `{job}`")]
    Timeout { job: Job, after: Duration },
    #[error("the lock connection failed while holding job `{job}`: {detail}")]
    Lost { job: Job, detail: String },
}

/// Who runs which job. `hold` is asked before every round.
#[async_trait::async_trait]
pub trait Leadership: Send + Sync + 'static {
    /// Take `job` when no replica holds it, or confirm this process still
    /// does. `Ok(true)`: run the round; `Ok(false)`: another replica holds
    /// it. An error means this process does not hold it (any hold it had is
    /// given up).
    async fn hold(&self, job: Job) -> Result<bool, LeadError>;
    /// Resolves when `job`, held, is found lost (its lock connection died);
    /// never where a hold cannot be lost.
    async fn lost(&self, job: Job);
}

/// One process alone on its database (SQLite): every job is always held.
pub struct Solo;

#[async_trait::async_trait]
impl Leadership for Solo {
    async fn hold(&self, _job: Job) -> Result<bool, LeadError> {
        Ok(true)
    }
    async fn lost(&self, _job: Job) {
        std::future::pending::<()>().await
    }
}

/// This replica's name in logs and in the database's view of who holds a
/// lock (`application_name`): host name and process id.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    format!("{host}/{}", std::process::id())
}

/// Labels of the per-job metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: String,
}

/// The collector metrics of the periodic jobs (registered with the API's).
#[derive(Clone, Default)]
pub struct JobMetrics {
    /// 1 while this replica holds the job, else 0.
    pub leader: Family<JobLabels, Gauge>,
    /// Rounds this replica ran, per job.
    pub rounds: Family<JobLabels, Counter>,
    /// Device-days of roll-ups computed by this replica (each day with its
    /// hours and day timeline).
    pub rollup_days: Counter,
    /// Hours of days under way computed by this replica.
    pub rollup_hours: Counter,
    /// Raw minute summaries deleted by this replica's retention rounds.
    pub minutes_deleted: Counter,
}

impl JobMetrics {
    /// New metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = JobMetrics::default();
        registry.register(
            "job_leader",
            "1 while this replica runs the periodic job (one replica per job at a time)",
            m.leader.clone(),
        );
        registry.register(
            "job_rounds",
            "Rounds of the periodic job run by this replica",
            m.rounds.clone(),
        );
        registry.register(
            "rollup_days_computed",
            "Device-days of roll-ups computed by this replica",
            m.rollup_days.clone(),
        );
        registry.register(
            "rollup_hours_computed",
            "Hours of the day under way rolled up by this replica",
            m.rollup_hours.clone(),
        );
        registry.register(
            "retention_minutes_deleted",
            "Raw minute summaries deleted by this replica's retention rounds",
            m.minutes_deleted.clone(),
        );
        m
    }

    fn set_leader(&self, job: Job, held: bool) {
        self.leader
            .get_or_create(&JobLabels {
                job: job.name().into(),
            })
            .set(i64::from(held));
    }
}

/// What a round of a job sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// The first round since this replica took the job (or started).
    pub first: bool,
}

/// Run `job` every `every` until dropped: a round (`work`) only while this
/// replica holds the job, abandoned when the hold is lost meanwhile. The
/// first attempt is at once.
pub async fn run_job<F, Fut>(
    lead: Arc<dyn Leadership>,
    job: Job,
    every: Duration,
    metrics: JobMetrics,
    mut work: F,
) where
    F: FnMut(Round) -> Fut + Send,
    Fut: Future<Output = ()> + Send,
{
    let replica = replica_name();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held = false;
    metrics.set_leader(job, false);
    loop {
        tick.tick().await;
        let now = match lead.hold(job).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(%job, error = %e, "cannot hold the job; trying again next interval");
                false
            }
        };
        if now != held {
            if now {
                tracing::info!(%job, %replica, "this replica leads job `{job}`");
            } else {
                tracing::info!(%job, %replica, "this replica no longer leads job `{job}`");
            }
            metrics.set_leader(job, now);
        }
        let first = now && !held;
        held = now;
        if !held {
            continue;
        }
        let lost = tokio::select! {
            () = work(Round { first }) => false,
            () = lead.lost(job) => true,
        };
        metrics
            .rounds
            .get_or_create(&JobLabels {
                job: job.name().into(),
            })
            .inc();
        if lost {
            tracing::warn!(%job, %replica, "lost job `{job}` during a round: round abandoned");
            held = false;
            metrics.set_leader(job, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Holds while `holds` says so; `lost` fires once `lose` is set.
    struct Scripted {
        holds: Mutex<Vec<bool>>,
        lose: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl Leadership for Scripted {
        async fn hold(&self, _job: Job) -> Result<bool, LeadError> {
            let mut h = self.holds.lock().unwrap();
            Ok(if h.len() > 1 { h.remove(0) } else { h[0] })
        }
        async fn lost(&self, _job: Job) {
            self.lose.notified().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rounds_run_only_while_held_and_first_marks_each_take_over() {
        let lead = Arc::new(Scripted {
            holds: Mutex::new(vec![false, true, true, false, true, false]),
            lose: tokio::sync::Notify::new(),
        });
        let metrics = JobMetrics::default();
        let firsts = Arc::new(Mutex::new(Vec::new()));
        let f = firsts.clone();
        let task = tokio::spawn(run_job(
            lead,
            Job::Rollups,
            Duration::from_secs(10),
            metrics.clone(),
            move |r: Round| {
                f.lock().unwrap().push(r.first);
                async {}
            },
        ));
        tokio::time::sleep(Duration::from_secs(55)).await;
        task.abort();
        // Ticks at 0, 10, 20, 30, 40, 50: held at 10, 20, 40.
        assert_eq!(*firsts.lock().unwrap(), [true, false, true]);
        let leader = metrics
            .leader
            .get_or_create(&JobLabels {
                job: "rollups".into(),
            })
            .get();
        assert_eq!(leader, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_is_abandoned_when_the_hold_is_lost() {
        let lead = Arc::new(Scripted {
            holds: Mutex::new(vec![true]),
            lose: tokio::sync::Notify::new(),
        });
        let metrics = JobMetrics::default();
        let finished = Arc::new(AtomicUsize::new(0));
        let done = finished.clone();
        let task = tokio::spawn(run_job(
            lead.clone(),
            Job::Retention,
            Duration::from_secs(10),
            metrics.clone(),
            move |_| {
                let done = done.clone();
                async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        lead.lose.notify_one();
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(finished.load(Ordering::SeqCst), 0);
        let g = || {
            metrics
                .leader
                .get_or_create(&JobLabels {
                    job: "retention".into(),
                })
                .get()
        };
        assert_eq!(g(), 0);
        // Held again at the next tick: the round runs to its end.
        tokio::time::sleep(Duration::from_secs(10)).await;
        task.abort();
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
