//! PostgreSQL adapter of the [`super::Store`] trait.

use super::{Ack, Device, Office, Record, Store, StoreError, StoredRecord};

pub struct PgStore {}

impl PgStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Err(StoreError::BadUrl(url.to_string()))
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn add_device(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: i64,
    ) -> Result<Device, StoreError> {
        todo!()
    }
    async fn device_by_token(&self, _: &str) -> Result<Option<Device>, StoreError> {
        todo!()
    }
    async fn device_by_name(&self, _: &str) -> Result<Option<Device>, StoreError> {
        todo!()
    }
    async fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        todo!()
    }
    async fn revoke_device(&self, _: &str) -> Result<bool, StoreError> {
        todo!()
    }
    async fn upsert_offices(&self, _: &[Office]) -> Result<usize, StoreError> {
        todo!()
    }
    async fn list_offices(&self) -> Result<Vec<Office>, StoreError> {
        todo!()
    }
    async fn ingest(&self, _: i64, _: &[Record], _: i64) -> Result<Ack, StoreError> {
        todo!()
    }
    async fn records(&self, _: i64, _: i64, _: i64) -> Result<Vec<StoredRecord>, StoreError> {
        todo!()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        todo!()
    }
}
