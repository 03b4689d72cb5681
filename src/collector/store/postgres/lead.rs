//! [`Leadership`] on PostgreSQL: one session-level advisory lock per job,
//! held by a connection of its own (not one of the pool's), so that the lock
//! lives exactly as long as that session.
//!
//! - **Taking a job**: `pg_try_advisory_lock(key)` never waits; the key is
//!   derived from the database, the schema and the job's name, so replicas
//!   on one schema contend and deployments on other schemas of the same
//!   database do not.
//! - **Keeping it**: before each round (and every [`CHECK_EVERY`] during
//!   one) the holder sends `SELECT 1` on the lock connection, with a
//!   timeout. A session-level advisory lock ends only with an unlock or with
//!   its session, so a live session still holds it. A failed or slow check
//!   drops the connection (which ends the session on the server and frees
//!   its locks) and counts the job as lost.
//! - **When a replica dies**: killed or crashed, its socket is closed by the
//!   kernel; the server ends the session at once and frees its locks, and
//!   the next replica to ask (each asks once per interval) takes the job. A
//!   replica that vanishes without closing its socket (power cut, network
//!   split) is found out by the server's TCP keepalives, which the lock
//!   connection asks for (`tcp_keepalives_idle` 10 s, then 3 probes 5 s
//!   apart: about 25 s), after which the job is taken as above.
//! - The lock connection's `application_name` is
//!   `linkwatch-collector REPLICA`, so `pg_locks` joined with
//!   `pg_stat_activity` shows who holds which job.

use crate::collector::lead::{Job, LeadError, Leadership};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::Mutex;

/// How often a held job's lock connection is checked during a round.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Longest a check or a lock attempt may take before the connection is
/// given up.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Jobs held through advisory locks on a dedicated connection.
pub struct PgLeadership {
    options: PgConnectOptions,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conn: Option<PgConnection>,
    /// Lock key of each job, for the connection's database and schema.
    keys: BTreeMap<Job, i64>,
    held: BTreeSet<Job>,
}

impl State {
    /// Drop the connection: the server ends the session and frees its locks.
    fn give_up(&mut self) {
        self.conn = None;
        self.held.clear();
    }
}

/// The advisory lock key of `job` in `database` and `schema`: the first
/// eight bytes of a SHA-256.
pub fn lock_key(database: &str, schema: &str, job: Job) -> i64 {
    let d = Sha256::digest(format!("linkwatch/{database}/{schema}/{}", job.name()));
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

impl PgLeadership {
    /// Lock connections are made with `options` (those of the store's
    /// pool), named after `replica`.
    pub fn new(options: &PgConnectOptions, replica: &str) -> Self {
        let options = options
            .clone()
            .application_name(&format!("linkwatch-collector {replica}"))
            .options([
                ("tcp_keepalives_idle", "10"),
                ("tcp_keepalives_interval", "5"),
                ("tcp_keepalives_count", "3"),
            ]);
        PgLeadership {
            options,
            state: Mutex::new(State::default()),
        }
    }

    /// Connect when not connected, and learn the lock keys.
    async fn connect(&self, st: &mut State, job: Job) -> Result<(), LeadError> {
        if st.conn.is_none() {
            let connect = async {
                let mut conn = self.options.connect().await?;
                let (db, schema): (String, Option<String>) =
                    sqlx::query_as("SELECT current_database(), current_schema()")
                        .fetch_one(&mut conn)
                        .await?;
                Ok::<_, sqlx::Error>((conn, db, schema.unwrap_or_default()))
            };
            let (conn, db, schema) = tokio::time::timeout(CHECK_TIMEOUT, connect)
                .await
                .map_err(|_| LeadError::Timeout {
                    job,
                    after: CHECK_TIMEOUT,
                })?
                .map_err(|source| LeadError::Connect { job, source })?;
            st.keys = Job::ALL
                .into_iter()
                .map(|j| (j, lock_key(&db, &schema, j)))
                .collect();
            st.held.clear();
            st.conn = Some(conn);
        }
        Ok(())
    }

    /// `SELECT 1` on the lock connection within [`CHECK_TIMEOUT`].
    async fn alive(conn: &mut PgConnection) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, conn.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    }
}

#[async_trait::async_trait]
impl Leadership for PgLeadership {
    async fn hold(&self, job: Job) -> Result<bool, LeadError> {
        let mut st = self.state.lock().await;
        let st = &mut *st;
        self.connect(st, job).await?;
        let key = st.keys[&job];
        let Some(conn) = st.conn.as_mut() else {
            return Ok(false);
        };
        if st.held.contains(&job) {
            return match Self::alive(conn).await {
                Ok(()) => Ok(true),
                Err(detail) => {
                    st.give_up();
                    Err(LeadError::Lost { job, detail })
                }
            };
        }
        let tried = tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn),
        )
        .await;
        match tried {
            Ok(Ok(true)) => {
                st.held.insert(job);
                Ok(true)
            }
            Ok(Ok(false)) => Ok(false),
            Ok(Err(e)) => {
                st.give_up();
                Err(LeadError::Lost {
                    job,
                    detail: e.to_string(),
                })
            }
            Err(_) => {
                st.give_up();
                Err(LeadError::Lost {
                    job,
                    detail: format!("no answer within {CHECK_TIMEOUT:?}"),
                })
            }
        }
    }

    async fn lost(&self, job: Job) {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let mut st = self.state.lock().await;
            if !st.held.contains(&job) {
                return;
            }
            let Some(conn) = st.conn.as_mut() else {
                return;
            };
            if let Err(detail) = Self::alive(conn).await {
                tracing::warn!(%job, %detail, "the lock connection failed");
                st.give_up();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_job_schema_and_database() {
        let k = |d, s, j| lock_key(d, s, j);
        assert_ne!(
            k("lw", "public", Job::Rollups),
            k("lw", "public", Job::Retention)
        );
        assert_ne!(
            k("lw", "public", Job::Rollups),
            k("lw", "other", Job::Rollups)
        );
        assert_ne!(
            k("lw", "public", Job::Rollups),
            k("lw2", "public", Job::Rollups)
        );
        assert_eq!(
            k("lw", "public", Job::Alerts),
            k("lw", "public", Job::Alerts)
        );
    }
}
