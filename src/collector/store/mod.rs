//! Storage behind one trait, with an SQLite and a PostgreSQL adapter that
//! behave identically (the same tests run against both). Migrations are
//! embedded, one folder per dialect, append-only.
//!
//! Layout: the [`Store`] trait and its errors (here); the sequence
//! arithmetic of `acked` ([`seq`]); the statements both
//! adapters share, written once ([`sql`]) and spelled per database by the
//! dialect table ([`dialect`]); group-commit ingest shared by both
//! ([`group`]); alerts ([`alerts`]); and the adapters ([`sqlite`],
//! [`postgres`]) with only what differs. The domain types are in
//! [`crate::collector::model`] (re-exported here).
//!
//! Ingest semantics, the same in both adapters:
//! - a record is a duplicate when a record of the device with the same `seq`
//!   is already stored, or when its whole range `seq..=seq_end` is at or
//!   below `acked` (already stored, or stored and since deleted by
//!   retention); a record whose `seq` merely falls inside an earlier folded
//!   record's range but reaches beyond `acked` is stored;
//! - `acked` advances over the stored ranges `seq..=seq_end` while they are
//!   contiguous (see [`advance_contiguous`]); it never goes back;
//! - ingest for an unknown device id fails with
//!   `StoreError::Query { op: "ingest", source: sqlx::Error::RowNotFound }`.

pub mod alerts;
mod dialect;
mod group;
mod packs;
pub mod postgres;
mod seq;
mod sizes;
mod sql;
pub mod sqlite;
pub mod users;

pub use sizes::{StorageFacts, StorageSummary, TableSize};

use crate::collector::alerts::contacts::Contact;
use crate::collector::alerts::model::{Decisions, OpenAlert, Silence};
use crate::collector::alerts::outbox::OutboxRow;
use crate::collector::lead::{Leadership, Solo};
pub use crate::collector::model::{ApiToken, Device, Dirty, LastSeen, Office, StoredRecord};
use crate::collector::model::{Branch, Role};
use crate::collector::rollup::{DayEnds, DayRow, DeviceSums};
use crate::wire::v1::{Ack, Backlog, Record};
pub use alerts::{AlertQuery, AlertRecord, SilenceRecord};
pub use packs::io::set_packing;
pub use seq::{advance_contiguous, follows};
use std::sync::Arc;
pub use users::{NewSession, WebSession, WebUser};

/// Storage failures, naming the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error during {op}: {source}")]
    Query {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("device `{0}` already exists")]
    DeviceExists(String),
    #[error("unknown office `{0}`: import the hierarchy first (linkwatch device import)")]
    UnknownOffice(String),
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("API token `{0}` already exists")]
    ApiTokenExists(String),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("this store does not keep {0}")]
    Unsupported(&'static str),
    /// The upload's token was revoked or replaced after it was checked and
    /// before its batch was written: nothing of it is stored.
    #[error("the device's token was revoked or replaced while the upload was read")]
    TokenWithdrawn,
}

/// What an upload said about itself besides its records, kept with the
/// device when the batch is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadMeta {
    /// The deadline it announced for the next upload (collector's clock).
    pub next_upload_due_ms: Option<i64>,
    /// What its agent still had to send after it.
    pub backlog: Option<Backlog>,
}

/// Everything the collector stores. Both adapters implement it with the same
/// semantics; every method is one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Register a device; `token_hash` is the SHA-256 of its token (hex).
    async fn add_device(
        &self,
        name: &str,
        office: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Device, StoreError>;
    /// The (not revoked or revoked) device a token hash belongs to.
    async fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>, StoreError>;
    async fn device_by_name(&self, name: &str) -> Result<Option<Device>, StoreError>;
    async fn list_devices(&self) -> Result<Vec<Device>, StoreError>;
    /// The devices whose last upload is at or after `from_ms` (the
    /// collector's clock), revoked ones included, in name order.
    async fn devices_heard_since(&self, from_ms: i64) -> Result<Vec<Device>, StoreError> {
        Ok(self
            .list_devices()
            .await?
            .into_iter()
            .filter(|d| d.seen.last_upload_ms.is_some_and(|t| t >= from_ms))
            .collect())
    }
    /// A number that changes whenever a device is added, removed, renamed,
    /// moved, revoked or given a new token, or an office changes (not on
    /// uploads); `None` when the store cannot tell (then readers re-read).
    async fn catalog_version(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
    /// Revoke a device's token; false when no such device.
    async fn revoke_device(&self, name: &str) -> Result<bool, StoreError>;
    /// Give a device a new token (its hash) and lift a revocation: the old
    /// token is refused from now on, the device keeps its id and history.
    /// False when no such device.
    async fn rotate_device_token(&self, name: &str, token_hash: &str) -> Result<bool, StoreError>;
    /// Insert or update offices by code; returns how many rows were written.
    /// The roll-ups of devices of offices whose `hours` change are due
    /// again (the maintainer recomputes the days whose records are kept).
    async fn upsert_offices(&self, offices: &[Office]) -> Result<usize, StoreError>;
    async fn list_offices(&self) -> Result<Vec<Office>, StoreError>;
    /// Store a validated batch of one device idempotently on (device, seq):
    /// replays are counted, not stored twice. Returns the highest contiguous
    /// sequence now stored for the device. Also the device's [`LastSeen`]:
    /// an upload at `now_ms` that announced no deadline.
    async fn ingest(
        &self,
        device_id: i64,
        records: &[Record],
        now_ms: i64,
    ) -> Result<Ack, StoreError>;
    /// [`Store::ingest`] of an upload that announced `next_upload_due_ms`
    /// (the batch's `next_upload_by`) and nothing else.
    async fn ingest_upload(
        &self,
        device_id: i64,
        records: &[Record],
        next_upload_due_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        let meta = UploadMeta {
            next_upload_due_ms,
            backlog: None,
        };
        self.ingest_reported(device_id, records, meta, now_ms).await
    }
    /// [`Store::ingest`] of an upload that said `meta` about itself, kept
    /// with the device in the same transaction. By default `meta` is dropped
    /// (stores that keep no last-seen).
    async fn ingest_reported(
        &self,
        device_id: i64,
        records: &[Record],
        meta: UploadMeta,
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        let _ = meta;
        self.ingest(device_id, records, now_ms).await
    }
    /// The agent's spool backlog its last upload reported, when it did
    /// (agents before protocol v1's `backlog` report none). By default none.
    async fn spool_backlog(&self, device_id: i64) -> Result<Option<Backlog>, StoreError> {
        let _ = device_id;
        Ok(None)
    }
    /// [`Store::ingest_upload`] of an upload authenticated with the token
    /// whose hash is `token_hash`: stored only if the device still has that
    /// token and is not revoked when its transaction writes it, else
    /// [`StoreError::TokenWithdrawn`] and nothing stored. (The collector
    /// checks the token from a cache before the body is read; this is the
    /// check that makes a revocation or a new token hold at once.) By
    /// default the token is checked before the write, not in it.
    async fn ingest_authenticated(
        &self,
        device_id: i64,
        token_hash: &str,
        records: &[Record],
        meta: UploadMeta,
        now_ms: i64,
    ) -> Result<Ack, StoreError> {
        match self.device_by_token(token_hash).await? {
            Some(d) if d.id == device_id && !d.revoked => {}
            _ => return Err(StoreError::TokenWithdrawn),
        }
        self.ingest_reported(device_id, records, meta, now_ms).await
    }
    /// Records of a device in sequence order, from `from_seq`, at most `limit`.
    async fn records(
        &self,
        device_id: i64,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Cheap liveness check for `/health`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Who runs which periodic job among the collectors on this database
    /// (see [`crate::collector::lead`]), for the replica named `replica`.
    /// Each call gives an independent holder. By default every job is
    /// always held: one process alone on its database.
    fn leadership(&self, replica: &str) -> Arc<dyn Leadership> {
        let _ = replica;
        Arc::new(Solo)
    }
    // Alerts and their outbox (see `collector::alerts::run`). By default a
    // store keeps none.

    /// The open alerts, by id.
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StoreError> {
        Err(StoreError::Unsupported("alerts"))
    }
    /// Apply one evaluation's decisions, with the outbox rows `plan` makes
    /// of each notification (by its index in `d.notify` and its alert's
    /// id; rows whose dedupe key exists are kept as they are), in one
    /// transaction. The ids of the alerts opened, in `d.open`'s order.
    async fn apply_alerts(
        &self,
        d: &Decisions,
        plan: &(dyn Fn(usize, i64) -> Vec<OutboxRow> + Send + Sync),
    ) -> Result<Vec<i64>, StoreError> {
        let _ = (d, plan);
        Err(StoreError::Unsupported("alerts"))
    }
    /// Alerts, newest first.
    async fn list_alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let _ = q;
        Err(StoreError::Unsupported("alerts"))
    }
    async fn alert_by_id(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("alerts"))
    }
    /// Acknowledge an open alert not acknowledged yet; false otherwise.
    async fn ack_alert(&self, id: i64, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        let _ = (id, by, now_ms);
        Err(StoreError::Unsupported("alerts"))
    }
    /// The pending outbox rows and those delivered since
    /// `delivered_since_ms`.
    async fn outbox_rows(&self, delivered_since_ms: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let _ = delivered_since_ms;
        Err(StoreError::Unsupported("alerts"))
    }
    /// Claim a row: store `claimed` only if the row is still pending and
    /// due at `was_next_ms`; true when this caller claimed it.
    async fn claim_outbox(
        &self,
        claimed: &OutboxRow,
        was_next_ms: i64,
    ) -> Result<bool, StoreError> {
        let _ = (claimed, was_next_ms);
        Err(StoreError::Unsupported("alerts"))
    }
    /// Store a row's new state (after an attempt, a deferral, an expiry).
    async fn settle_outbox(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let _ = row;
        Err(StoreError::Unsupported("alerts"))
    }
    /// Every outbox row of an alert, by dedupe key.
    async fn outbox_of(&self, alert_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let _ = alert_id;
        Err(StoreError::Unsupported("alerts"))
    }

    // Dashboard users and sessions (see `collector::web`). By default a
    // store keeps none.

    /// Add a dashboard user ([`StoreError::UserExists`] when the name is taken).
    async fn add_user(
        &self,
        name: &str,
        role: Role,
        branch: Option<&Branch>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<WebUser, StoreError> {
        let _ = (name, role, branch, password_hash, now_ms);
        Err(StoreError::Unsupported("users"))
    }
    async fn user_by_name(&self, name: &str) -> Result<Option<WebUser>, StoreError> {
        let _ = name;
        Err(StoreError::Unsupported("users"))
    }
    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<WebUser>, StoreError> {
        Err(StoreError::Unsupported("users"))
    }
    /// Remove a user and its sessions; false when no such user.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let _ = name;
        Err(StoreError::Unsupported("users"))
    }
    /// Give a user a new password (its Argon2 PHC hash) and end its
    /// sessions; false when no such user.
    async fn set_user_password(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        let _ = (name, hash);
        Err(StoreError::Unsupported("users"))
    }
    /// Set a user's dashboard language (`en` or `bn`).
    async fn set_user_lang(&self, user_id: i64, lang: &str) -> Result<(), StoreError> {
        let _ = (user_id, lang);
        Err(StoreError::Unsupported("users"))
    }
    /// Store a new session (and drop the expired ones).
    async fn add_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let _ = s;
        Err(StoreError::Unsupported("users"))
    }
    /// The session whose cookie hashes to `id_hash`, unless expired at `now_ms`.
    async fn session(&self, id_hash: &str, now_ms: i64) -> Result<Option<WebSession>, StoreError> {
        let _ = (id_hash, now_ms);
        Err(StoreError::Unsupported("users"))
    }
    /// Forget a session (sign-out).
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let _ = id_hash;
        Err(StoreError::Unsupported("users"))
    }
    /// Failed sign-ins counted for each of `keys` (hashed keys, see
    /// migration 0015) in its window: `(key, failures, since_ms)` of those
    /// with a row. By default none (a store that keeps none: each
    /// collector's own count applies).
    async fn signin_failures(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let _ = keys;
        Ok(Vec::new())
    }
    /// Count one failed sign-in against each `(key, window_ms)`: a key's
    /// window starts at its first failure and ends `window_ms` later, when
    /// it is counted from 0 again. Rows whose window ended before `now_ms
    /// - longest window` are deleted.
    async fn add_signin_failure(
        &self,
        keys: &[(String, i64)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _ = (keys, now_ms);
        Ok(())
    }
    /// Forget a key's failures (its account signed in).
    async fn clear_signin_failures(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        Ok(())
    }

    // Silences and maintenance windows, and contacts added from the CLI
    // (migration 0008). By default a store keeps none.

    /// Store a silence (its `id` is ignored) set by `created_by`; its id.
    async fn add_silence(
        &self,
        s: &Silence,
        created_by: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let _ = (s, created_by, now_ms);
        Err(StoreError::Unsupported("silences"))
    }
    /// The silences ending after `ending_after_ms` (active and planned), by id.
    async fn silences(&self, ending_after_ms: i64) -> Result<Vec<SilenceRecord>, StoreError> {
        let _ = ending_after_ms;
        Err(StoreError::Unsupported("silences"))
    }
    async fn silence_by_id(&self, id: i64) -> Result<Option<SilenceRecord>, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("silences"))
    }
    /// Remove a silence; false when there is none of that id.
    async fn remove_silence(&self, id: i64) -> Result<bool, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("silences"))
    }
    /// Store contacts (checked), replacing those of the same name (any
    /// case), in one transaction: how many were added and replaced.
    async fn put_contacts(
        &self,
        contacts: &[Contact],
        now_ms: i64,
    ) -> Result<(usize, usize), StoreError> {
        let _ = (contacts, now_ms);
        Err(StoreError::Unsupported("contacts"))
    }
    /// The stored contacts, by name.
    async fn stored_contacts(&self) -> Result<Vec<Contact>, StoreError> {
        Err(StoreError::Unsupported("contacts"))
    }
    /// Remove a stored contact by name (any case); false when none.
    async fn remove_contact(&self, name: &str) -> Result<bool, StoreError> {
        let _ = name;
        Err(StoreError::Unsupported("contacts"))
    }

    /// Register an API token; `token_hash` is the SHA-256 of the token (hex).
    /// [`StoreError::ApiTokenExists`] when the name is taken.
    async fn add_api_token(
        &self,
        name: &str,
        role: Role,
        branch: Option<&Branch>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<ApiToken, StoreError>;
    /// The (revoked or not) API token a hash belongs to.
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError>;
    /// Every API token, by name.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Revoke an API token; false when no such token.
    async fn revoke_api_token(&self, name: &str) -> Result<bool, StoreError>;

    // Roll-ups (see `collector::rollup` and `collector::maintainer`).

    /// Records of a device placed (by `at_ms`) in `[from_ms, to_ms)`, in
    /// sequence order.
    async fn records_between(
        &self,
        device_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// The last `limit` state-setting records (`link_state`, `lifecycle`,
    /// `failover`, `facts`) of a device before `before_ms`, in sequence order.
    async fn transitions_before(
        &self,
        device_id: i64,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Every device (in no particular order) with a mark of its
    /// state-setting records that changes whenever one is stored, changed or
    /// deleted (`None`: this store keeps no marks; read them again each
    /// time). For caches of what those records imply.
    async fn devices_marked(&self) -> Result<Vec<(Device, Option<i64>)>, StoreError> {
        Ok(self
            .list_devices()
            .await?
            .into_iter()
            .map(|d| (d, None))
            .collect())
    }
    /// What the dashboard last judged from each device's state-setting
    /// records, with the mark they had then (migration 0016): `(device_id,
    /// mark, code)`. By default none.
    async fn saids(&self) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        Ok(Vec::new())
    }
    /// Keep such judgements (`(device_id, mark, code)`). By default dropped.
    async fn put_saids(&self, saids: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        let _ = saids;
        Ok(())
    }
    /// [`Store::devices_marked`] of the devices whose last upload is at or
    /// after `from_ms` (as [`Store::devices_heard_since`]).
    async fn devices_marked_since(
        &self,
        from_ms: i64,
    ) -> Result<Vec<(Device, Option<i64>)>, StoreError> {
        Ok(self
            .devices_heard_since(from_ms)
            .await?
            .into_iter()
            .map(|d| (d, None))
            .collect())
    }
    /// [`Store::transitions_before`]`(id, i64::MAX, limit)` of each device of
    /// `ids`, by device id; devices without any are left out.
    async fn last_transitions(
        &self,
        ids: &[i64],
        limit: i64,
    ) -> Result<Vec<(i64, Vec<StoredRecord>)>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            let v = self.transitions_before(*id, i64::MAX, limit).await?;
            if !v.is_empty() {
                out.push((*id, v));
            }
        }
        Ok(out)
    }
    /// Devices whose roll-ups are due: dirty from before `before_ms`, oldest
    /// first, at most `limit`.
    async fn dirty_due(&self, before_ms: i64, limit: i64) -> Result<Vec<Dirty>, StoreError>;
    /// Every device's dirty mark.
    async fn dirty_marks(&self) -> Result<Vec<Dirty>, StoreError>;
    /// One device's dirty mark (none before its first records).
    async fn dirty_mark(&self, device_id: i64) -> Result<Option<Dirty>, StoreError>;
    /// Mark every device with records dirty from `from_ms` (at the latest);
    /// how many marks there are.
    async fn mark_all_dirty(&self, from_ms: i64) -> Result<u64, StoreError>;
    /// Are there any rows of `schedule` (day rows; hour rows are stored under
    /// `rollup::Period::Hour.key`)?
    async fn has_rollups(&self, schedule: &str) -> Result<bool, StoreError>;
    /// Store day or hour rows and day timelines of one device (replacing those of
    /// the same keys) and, if the device's mark still has `version`, move it
    /// to `new_from_ms`. One transaction; true when the mark was moved.
    async fn put_rollups(
        &self,
        device_id: i64,
        rows: &[DayRow],
        timelines: &[(i64, String)],
        version: i64,
        new_from_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Rows of `schedule` starting in `[from_day, to_day)` summed per device
    /// (`days`: how many rows).
    async fn rollup_sums(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DeviceSums>, StoreError>;
    /// Ends of the day rows of `schedule` in `[from_day, to_day)` that have
    /// an outage at the day's start or end, by device and day.
    async fn rollup_ends(
        &self,
        schedule: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayEnds>, StoreError>;
    /// Stored day timelines (JSON) of a device in `[from_day, to_day)`, by day.
    async fn rollup_timelines(
        &self,
        device_id: i64,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, String)>, StoreError>;
    /// Delete raw minute summaries (`link_minutes`) placed before `before_ms`;
    /// how many were deleted (at most `limit`).
    async fn delete_minutes_before(&self, before_ms: i64, limit: i64) -> Result<u64, StoreError>;
    /// Rewrite as one segment each up to `limit` minute packs that ingest
    /// extended segment by segment and whose span is over at `now_ms`; how
    /// many were taken off the list of such packs (a store without packs
    /// has none).
    async fn seal_packs(&self, _now_ms: i64, _limit: i64) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// Delete one device's rows of `schedule` starting before `before_ms`
    /// (the maintainer keeps hour rows only as long as raw data); how many.
    async fn delete_rollups_before(
        &self,
        device_id: i64,
        schedule: &str,
        before_ms: i64,
    ) -> Result<u64, StoreError>;
    // The storage view (`collector::storage`). By default a store measures
    // nothing.

    /// Rows and bytes of every table of the schema, the database's size and
    /// the oldest raw minute kept. Reads the whole database on SQLite
    /// (`dbstat`) and counts every table's rows on PostgreSQL: for an
    /// operator's question, not for a timer.
    async fn storage(&self) -> Result<StorageFacts, StoreError> {
        Err(StoreError::Unsupported("storage figures"))
    }
    /// The database's size and the oldest raw minute kept: a few page
    /// counts and index lookups, cheap enough for the metrics.
    async fn storage_summary(&self) -> Result<StorageSummary, StoreError> {
        Err(StoreError::Unsupported("storage figures"))
    }
}

/// Open the store a URL names (`sqlite://PATH`, `sqlite::memory:`,
/// `postgres://...`), run the migrations, and return it.
/// The file of a `sqlite:` URL (`None` for other databases and in-memory ones).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?) as Arc<dyn Store>)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}
