//! Storage behind one trait, with an SQLite and a PostgreSQL adapter that
//! behave identically (the same tests run against both). Migrations are
//! embedded, one folder per dialect, append-only.

pub mod postgres;
pub mod sqlite;

use crate::collector::access::{Branch, Level, Role};
use crate::wire::v1::{Ack, Record};
use std::sync::Arc;

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
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: i64,
    pub name: String,
    /// Office code (see [`Office`]), if attached.
    pub office: Option<String>,
    pub revoked: bool,
    /// Highest contiguous sequence number stored.
    pub acked: i64,
    pub created_at_ms: i64,
}

/// One office in the hierarchy ministry → division → district → upazila → office.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    /// Unique short code, e.g. `dhk-savar-uno`.
    pub code: String,
    pub name: String,
    pub division: String,
    pub district: String,
    pub upazila: String,
}

/// An API token of the read API, as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The branch it is limited to; `None`: the whole hierarchy.
    pub branch: Option<Branch>,
    pub revoked: bool,
    pub created_at_ms: i64,
}

/// Columns `id, name, role, scope_level, scope_value, revoked, created_at` of
/// an API token row (both adapters).
pub(crate) type ApiTokenRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    bool,
    i64,
);

/// An API token row as the type, or a decode error naming the bad column.
pub(crate) fn api_token(r: ApiTokenRow) -> Result<ApiToken, sqlx::Error> {
    let bad = |what: String| sqlx::Error::Decode(what.into());
    let role = Role::parse(&r.2).ok_or_else(|| bad(format!("api_tokens.role `{}`", r.2)))?;
    let branch = match (r.3, r.4) {
        (None, None) => None,
        (Some(level), Some(name)) => Some(Branch {
            level: Level::parse(&level)
                .ok_or_else(|| bad(format!("api_tokens.scope_level `{level}`")))?,
            name,
        }),
        _ => {
            return Err(bad(
                "api_tokens scope_level/scope_value: one without the other".into(),
            ));
        }
    };
    Ok(ApiToken {
        id: r.0,
        name: r.1,
        role,
        branch,
        revoked: r.5,
        created_at_ms: r.6,
    })
}

/// A stored record, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub seq: i64,
    pub seq_end: i64,
    pub at_ms: i64,
    pub mono_ms: i64,
    pub boot_id: String,
    pub kind: String,
    /// The record's body, JSON.
    pub body: String,
    pub received_ms: i64,
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
    /// Revoke a device's token; false when no such device.
    async fn revoke_device(&self, name: &str) -> Result<bool, StoreError>;
    /// Insert or update offices by code; returns how many rows were written.
    async fn upsert_offices(&self, offices: &[Office]) -> Result<usize, StoreError>;
    async fn list_offices(&self) -> Result<Vec<Office>, StoreError>;
    /// Store a validated batch of one device idempotently on (device, seq):
    /// replays are counted, not stored twice. Returns the highest contiguous
    /// sequence now stored for the device.
    async fn ingest(
        &self,
        device_id: i64,
        records: &[Record],
        now_ms: i64,
    ) -> Result<Ack, StoreError>;
    /// Records of a device in sequence order, from `from_seq`, at most `limit`.
    async fn records(
        &self,
        device_id: i64,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Cheap liveness check for `/health`.
    async fn ping(&self) -> Result<(), StoreError>;
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
}

/// Open the store a URL names (`sqlite://PATH`, `sqlite::memory:`,
/// `postgres://...`), run the migrations, and return it.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?) as Arc<dyn Store>)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}

/// The highest `h` such that every sequence number in `acked+1..=h` is
/// covered by one of `ranges` (each `(seq, seq_end)`), sorted or not.
pub fn advance_contiguous(acked: i64, ranges: &mut [(i64, i64)]) -> i64 {
    ranges.sort_unstable();
    let mut h = acked;
    for &(s, e) in ranges.iter() {
        if s > h + 1 {
            break;
        }
        h = h.max(e);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::advance_contiguous;

    #[test]
    fn contiguity_follows_ranges_and_stops_at_gaps() {
        assert_eq!(advance_contiguous(0, &mut []), 0);
        assert_eq!(advance_contiguous(0, &mut [(1, 1), (2, 5), (6, 6)]), 6);
        assert_eq!(advance_contiguous(0, &mut [(2, 2)]), 0);
        assert_eq!(advance_contiguous(3, &mut [(7, 9), (4, 6)]), 9);
        assert_eq!(advance_contiguous(3, &mut [(4, 4), (6, 6)]), 4);
        assert_eq!(advance_contiguous(10, &mut [(1, 12)]), 12);
    }
}
