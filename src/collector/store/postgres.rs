//! PostgreSQL adapter of the [`super::Store`] trait: the store of larger
//! deployments, possibly shared by several collector replicas. Its
//! statements are the shared ones ([`super::sql`], in the
//! [`dialect::POSTGRES`] dialect); what is its own is here: connecting,
//! ingest, office upserts (`UNNEST` of arrays, in `offices`) and leadership
//! ([`lead`]).
//!
//! **Group commit.** Ingest goes through `ingest::WRITERS` writer tasks (see
//! `super::group`): the batches that queued while a writer was busy are
//! written in one transaction, which first locks every device of the group
//! (`SELECT ... ORDER BY id FOR UPDATE`: one order for all writers and
//! replicas, so they never deadlock; concurrent batches of one device are
//! serialised across replicas). The batches of distinct devices then go in
//! together with one `INSERT ... SELECT FROM UNNEST(arrays)` and a handful
//! of other statements for the whole group; a batch that fails there is
//! written again alone, in a savepoint, so it fails alone.

mod ingest;
pub mod lead;
mod offices;
mod saids;
mod sizes;

use super::dialect;
use super::group::{self, Job};
use super::sql::Sql;
use super::{Ack, ApiToken, Device, Dirty, Office, Record, Store, StoreError, StoredRecord};
use super::{AlertQuery, AlertRecord, SilenceRecord, UploadMeta};
use crate::collector::alerts::contacts::Contact;
use crate::collector::alerts::model::{Decisions, OpenAlert, Silence};
use crate::collector::alerts::outbox::OutboxRow;
use crate::collector::model::{Branch, Role};
use crate::collector::rollup::{DayEnds, DayRow, DeviceSums};
use crate::wire::v1::Backlog;
use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Connections per collector process.
const MAX_CONNECTIONS: u32 = 16;

/// `url` with the password (if any) replaced by `***`, for error messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// The PostgreSQL store (a connection pool).
pub struct PgStore {
    pool: PgPool,
    /// To the group-commit writers (see the module documentation).
    jobs: mpsc::Sender<Job>,
}

impl PgStore {
    /// Connect to `url` (`postgres://USER:PASSWORD@HOST/DB?...`; PostgreSQL
    /// connection options such as `options[search_path]=SCHEMA` apply) and
    /// run the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            url: redact(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        crate::shared::migrations::migrator(crate::shared::migrations::POSTGRES)
            .run(&pool)
            .await?;
        let (jobs, queue) = mpsc::channel(group::QUEUE);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..ingest::WRITERS {
            // Each ends when the store (the only sender) is dropped.
            tokio::spawn(ingest::group_writer(pool.clone(), queue.clone()));
        }
        Ok(PgStore { pool, jobs })
    }

    /// The shared statements, on this store's pool.
    fn sql(&self) -> Sql<'_, Postgres> {
        Sql {
            pool: &self.pool,
            dialect: &dialect::POSTGRES,
            write: None,
        }
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn storage(&self) -> Result<super::StorageFacts, StoreError> {
        sizes::facts(&self.pool).await
    }

    async fn storage_summary(&self) -> Result<super::StorageSummary, StoreError> {
        sizes::summary(&self.pool).await
    }

    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StoreError> {
        self.sql().open_alerts().await
    }

    async fn apply_alerts(
        &self,
        d: &Decisions,
        plan: &(dyn Fn(usize, i64) -> Vec<OutboxRow> + Send + Sync),
    ) -> Result<Vec<i64>, StoreError> {
        self.sql().apply_alerts(d, plan).await
    }

    async fn list_alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        self.sql().list_alerts(q).await
    }

    async fn alert_by_id(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        self.sql().alert_by_id(id).await
    }

    async fn ack_alert(&self, id: i64, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.sql().ack_alert(id, by, now_ms).await
    }

    async fn outbox_rows(&self, delivered_since_ms: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.sql().outbox_rows(delivered_since_ms).await
    }

    async fn claim_outbox(
        &self,
        claimed: &OutboxRow,
        was_next_ms: i64,
    ) -> Result<bool, StoreError> {
        self.sql().claim_outbox(claimed, was_next_ms).await
    }

    async fn settle_outbox(&self, row: &OutboxRow) -> Result<(), StoreError> {
        self.sql().settle_outbox(row).await
    }

    async fn outbox_of(&self, alert_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.sql().outbox_of(alert_id).await
    }

    async fn add_silence(
        &self,
        s: &Silence,
        created_by: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.sql().add_silence(s, created_by, now_ms).await
    }

    async fn silences(&self, ending_after_ms: i64) -> Result<Vec<SilenceRecord>, StoreError> {
        self.sql().silences(ending_after_ms).await
    }

    async fn silence_by_id(&self, id: i64) -> Result<Option<SilenceRecord>, StoreError> {
        self.sql().silence_by_id(id).await
    }

    async fn remove_silence(&self, id: i64) -> Result<bool, StoreError> {
        self.sql().remove_silence(id).await
    }

    async fn put_contacts(
        &self,
        contacts: &[Contact],
        now_ms: i64,
    ) -> Result<(usize, usize), StoreError> {
        self.sql().put_contacts(contacts, now_ms).await
    }

    async fn stored_contacts(&self) -> Result<Vec<Contact>, StoreError> {
        self.sql().stored_contacts().await
    }

    async fn remove_contact(&self, name: &str) -> Result<bool, StoreError> {
        self.sql().remove_contact(name).await
    }

    async fn add_device(
        &self,
        name: &str,
        office: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Device, StoreError> {
        self.sql()
            .add_device(name, office, token_hash, now_ms)
            .await
    }

    async fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>, StoreError> {
        self.sql().device_by_token(token_hash).await
    }

    async fn device_by_name(&self, name: &str) -> Result<Option<Device>, StoreError> {
        self.sql().device_by_name(name).await
    }

    async fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        self.sql().list_devices().await
    }

    async fn devices_heard_since(&self, from_ms: i64) -> Result<Vec<Device>, StoreError> {
        self.sql().devices_heard_since(from_ms).await
    }

    async fn catalog_version(&self) -> Result<Option<i64>, StoreError> {
        self.sql().catalog_version().await
    }

    async fn revoke_device(&self, name: &str) -> Result<bool, StoreError> {
        self.sql().revoke_device(name).await
    }

    async fn rotate_device_token(&self, name: &str, token_hash: &str) -> Result<bool, StoreError> {
        self.sql().rotate_device_token(name, token_hash).await
    }

    async fn upsert_offices(&self, offices: &[Office]) -> Result<usize, StoreError> {
        offices::upsert(&self.pool, offices).await
    }

    async fn list_offices(&self) -> Result<Vec<Office>, StoreError> {
        self.sql().list_offices().await
    }

    async fn ingest(
        &self,
        device_id: i64,
        records: &[Record],
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        let meta = UploadMeta::default();
        group::submit(&self.jobs, device_id, None, records, meta, now_ms).await
    }

    async fn ingest_reported(
        &self,
        device_id: i64,
        records: &[Record],
        meta: UploadMeta,
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        group::submit(&self.jobs, device_id, None, records, meta, now_ms).await
    }

    async fn ingest_authenticated(
        &self,
        device_id: i64,
        token_hash: &str,
        records: &[Record],
        meta: UploadMeta,
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        group::submit(
            &self.jobs,
            device_id,
            Some(token_hash),
            records,
            meta,
            now_ms,
        )
        .await
    }

    async fn spool_backlog(&self, device_id: i64) -> Result<Option<Backlog>, StoreError> {
        self.sql().spool_backlog(device_id).await
    }

    async fn records(
        &self,
        device_id: i64,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.sql().records(device_id, from_seq, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.sql().ping().await
    }

    fn leadership(&self, replica: &str) -> Arc<dyn crate::collector::lead::Leadership> {
        Arc::new(lead::PgLeadership::new(
            &self.pool.connect_options(),
            replica,
        ))
    }

    async fn add_user(
        &self,
        name: &str,
        role: Role,
        branch: Option<&Branch>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<super::WebUser, StoreError> {
        self.sql()
            .add_user(name, role, branch, password_hash, now_ms)
            .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<super::WebUser>, StoreError> {
        self.sql().user_by_name(name).await
    }

    async fn list_users(&self) -> Result<Vec<super::WebUser>, StoreError> {
        self.sql().list_users().await
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        self.sql().remove_user(name).await
    }

    async fn set_user_password(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        self.sql().set_user_password(name, hash).await
    }

    async fn set_user_lang(&self, user_id: i64, lang: &str) -> Result<(), StoreError> {
        self.sql().set_user_lang(user_id, lang).await
    }

    async fn add_session(&self, s: &super::NewSession<'_>) -> Result<(), StoreError> {
        self.sql().add_session(s).await
    }

    async fn signin_failures(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.sql().signin_failures(keys).await
    }

    async fn add_signin_failure(
        &self,
        keys: &[(String, i64)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.sql().add_signin_failure(keys, now_ms).await
    }

    async fn clear_signin_failures(&self, key: &str) -> Result<(), StoreError> {
        self.sql().clear_signin_failures(key).await
    }

    async fn session(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> Result<Option<super::WebSession>, StoreError> {
        self.sql().session(id_hash, now_ms).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.sql().delete_session(id_hash).await
    }

    async fn add_api_token(
        &self,
        name: &str,
        role: Role,
        branch: Option<&Branch>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<ApiToken, StoreError> {
        self.sql()
            .add_api_token(name, role, branch, token_hash, now_ms)
            .await
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.sql().api_token_by_hash(token_hash).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.sql().list_api_tokens().await
    }

    async fn revoke_api_token(&self, name: &str) -> Result<bool, StoreError> {
        self.sql().revoke_api_token(name).await
    }

    async fn records_between(
        &self,
        device_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.sql().records_between(device_id, from_ms, to_ms).await
    }

    async fn transitions_before(
        &self,
        device_id: i64,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.sql()
            .transitions_before(device_id, before_ms, limit)
            .await
    }

    async fn devices_marked(&self) -> Result<Vec<(Device, Option<i64>)>, StoreError> {
        self.sql().devices_marked(None).await
    }

    async fn saids(&self) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        self.sql().saids().await
    }

    async fn put_saids(&self, saids: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        saids::put(&self.pool, saids).await
    }

    async fn devices_marked_since(
        &self,
        from_ms: i64,
    ) -> Result<Vec<(Device, Option<i64>)>, StoreError> {
        self.sql().devices_marked(Some(from_ms)).await
    }

    async fn last_transitions(
        &self,
        ids: &[i64],
        limit: i64,
    ) -> Result<Vec<(i64, Vec<StoredRecord>)>, StoreError> {
        self.sql().last_transitions(ids, limit).await
    }

    async fn dirty_due(&self, before_ms: i64, limit: i64) -> Result<Vec<Dirty>, StoreError> {
        self.sql().dirty_due(before_ms, limit).await
    }

    async fn dirty_marks(&self) -> Result<Vec<Dirty>, StoreError> {
        self.sql().dirty_marks().await
    }

    async fn dirty_mark(&self, device_id: i64) -> Result<Option<Dirty>, StoreError> {
        self.sql().dirty_mark(device_id).await
    }

    async fn mark_all_dirty(&self, from_ms: i64) -> Result<u64, StoreError> {
        self.sql().mark_all_dirty(from_ms).await
    }

    async fn has_rollups(&self, schedule: &str) -> Result<bool, StoreError> {
        self.sql().has_rollups(schedule).await
    }

    async fn put_rollups(
        &self,
        device_id: i64,
        rows: &[DayRow],
        timelines: &[(i64, String)],
        version: i64,
        new_from_ms: i64,
    ) -> Result<bool, StoreError> {
        self.sql()
            .put_rollups(device_id, rows, timelines, version, new_from_ms)
            .await
    }

    async fn rollup_sums(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DeviceSums>, StoreError> {
        self.sql().rollup_sums(schedule, from_day, to_day).await
    }

    async fn rollup_ends(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayEnds>, StoreError> {
        self.sql().rollup_ends(schedule, from_day, to_day).await
    }

    async fn rollup_timelines(
        &self,
        device_id: i64,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.sql()
            .rollup_timelines(device_id, from_day, to_day)
            .await
    }

    async fn delete_minutes_before(&self, before_ms: i64, limit: i64) -> Result<u64, StoreError> {
        self.sql().delete_minutes_before(before_ms, limit).await
    }

    async fn seal_packs(&self, now_ms: i64, limit: i64) -> Result<u64, StoreError> {
        self.sql().seal_packs(now_ms, limit).await
    }

    async fn delete_rollups_before(
        &self,
        device_id: i64,
        schedule: &str,
        before_ms: i64,
    ) -> Result<u64, StoreError> {
        self.sql()
            .delete_rollups_before(device_id, schedule, before_ms)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://lw:secret@db:5432/lw?sslmode=require"),
            "postgres://lw:***@db:5432/lw?sslmode=require"
        );
        assert_eq!(redact("postgres://lw@db/lw"), "postgres://lw@db/lw");
        assert_eq!(redact("postgres://db/lw"), "postgres://db/lw");
        assert_eq!(redact("postgres://a:b@c@db/x"), "postgres://a:***@db/x");
    }
}
