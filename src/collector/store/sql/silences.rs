//! The statements of silences and of contacts added from the CLI (migration
//! `0008_silences_contacts`), shared by both adapters (see [`super`]).

use super::{Affected, Sql, query_err};
use crate::collector::alerts::contacts::Contact;
use crate::collector::alerts::model::Silence;
use crate::collector::alerts::silence::target_text;
use crate::collector::store::StoreError;
use crate::collector::store::alerts::{SilenceRecord, SilenceRowCols, json_err, silence_record};
use sqlx::Database;

const SILENCE_COLS: &str =
    "id, target, start_ms, end_ms, reason, created_by, created_ms FROM alert_silences";

impl<'a, DB> Sql<'a, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    DB::QueryResult: Affected,
    usize: sqlx::ColumnIndex<DB::Row>,
    i64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'s> &'s str: sqlx::Encode<'s, DB> + sqlx::Type<DB>,
{
    pub async fn add_silence(
        &self,
        s: &Silence,
        created_by: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("add silence").await?;
        let id: i64 = sqlx::query_scalar(self.dialect.sql(
            "INSERT INTO alert_silences (target, start_ms, end_ms, reason, created_by, \
             created_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(target_text(&s.target))
        .bind(s.start_ms)
        .bind(s.end_ms)
        .bind(s.reason.as_str())
        .bind(created_by)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(e("add silence"))?;
        tx.commit().await.map_err(e("add silence: commit"))?;
        Ok(id)
    }

    pub async fn silences(&self, ending_after_ms: i64) -> Result<Vec<SilenceRecord>, StoreError> {
        let sql = format!("SELECT {SILENCE_COLS} WHERE end_ms > ? ORDER BY id");
        sqlx::query_as::<DB, SilenceRowCols>(self.dialect.sql(sql))
            .bind(ending_after_ms)
            .fetch_all(self.pool)
            .await
            .and_then(|rows| rows.into_iter().map(silence_record).collect())
            .map_err(query_err("list silences"))
    }

    pub async fn silence_by_id(&self, id: i64) -> Result<Option<SilenceRecord>, StoreError> {
        let sql = format!("SELECT {SILENCE_COLS} WHERE id = ?");
        sqlx::query_as::<DB, SilenceRowCols>(self.dialect.sql(sql))
            .bind(id)
            .fetch_optional(self.pool)
            .await
            .and_then(|row| row.map(silence_record).transpose())
            .map_err(query_err("silence by id"))
    }

    pub async fn remove_silence(&self, id: i64) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("remove silence").await?;
        let done = sqlx::query::<DB>(self.dialect.sql("DELETE FROM alert_silences WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(e("remove silence"))?;
        tx.commit().await.map_err(e("remove silence: commit"))?;
        Ok(done.affected() > 0)
    }

    pub async fn put_contacts(
        &self,
        contacts: &[Contact],
        now_ms: i64,
    ) -> Result<(usize, usize), StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("import contacts").await?;
        let (mut added, mut replaced) = (0, 0);
        for c in contacts {
            let key = c.name.to_lowercase();
            let body = serde_json::to_string(c)
                .map_err(json_err)
                .map_err(e("import contacts"))?;
            let gone = sqlx::query::<DB>(
                self.dialect
                    .sql("DELETE FROM alert_contacts WHERE name_key = ?"),
            )
            .bind(key.as_str())
            .execute(&mut *tx)
            .await
            .map_err(e("import contacts"))?;
            sqlx::query::<DB>(self.dialect.sql(
                "INSERT INTO alert_contacts (name_key, body, origin, created_ms) \
                 VALUES (?, ?, ?, ?)",
            ))
            .bind(key.as_str())
            .bind(body)
            .bind(c.origin.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(e("import contacts"))?;
            if gone.affected() > 0 {
                replaced += 1;
            } else {
                added += 1;
            }
        }
        tx.commit().await.map_err(e("import contacts: commit"))?;
        Ok((added, replaced))
    }

    pub async fn stored_contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            self.dialect
                .sql("SELECT body, origin FROM alert_contacts ORDER BY name_key"),
        )
        .fetch_all(self.pool)
        .await
        .map_err(query_err("stored contacts"))?;
        rows.into_iter()
            .map(|(body, origin)| {
                let mut c: Contact = serde_json::from_str(&body).map_err(json_err)?;
                c.origin = origin;
                Ok(c)
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query_err("stored contacts"))
    }

    pub async fn remove_contact(&self, name: &str) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("remove contact").await?;
        let done = sqlx::query::<DB>(
            self.dialect
                .sql("DELETE FROM alert_contacts WHERE name_key = ?"),
        )
        .bind(name.trim().to_lowercase())
        .execute(&mut *tx)
        .await
        .map_err(e("remove contact"))?;
        tx.commit().await.map_err(e("remove contact: commit"))?;
        Ok(done.affected() > 0)
    }
}
