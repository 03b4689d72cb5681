//! The dashboard's user and session statements both adapters share (see
//! [`super`]; the rows' types are in [`crate::collector::store::users`]).

use super::{Affected, Sql, is_unique_violation, query_err};
use crate::collector::model::{Branch, Role};
use crate::collector::store::StoreError;
use crate::collector::store::users::{
    NewSession, USER_COLS, USER_COLS_U, UserRow, WebSession, WebUser, web_user,
};
use sqlx::Database;

/// A user row and its session's `csrf, expires_at`.
type SessionRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    String,
    i64,
);

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
    Option<String>: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
{
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        branch: Option<&Branch>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<WebUser, StoreError> {
        let _w = self.lock().await;
        let sql = format!(
            "INSERT INTO web_users (name, role, scope_level, scope_value, password_hash, \
             created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING {USER_COLS}"
        );
        let inserted = sqlx::query_as::<DB, UserRow>(self.dialect.sql(sql))
            .bind(name)
            .bind(role.as_str())
            .bind(branch.map(|b| b.level.as_str().to_string()))
            .bind(branch.map(|b| b.name.clone()))
            .bind(password_hash)
            .bind(now_ms)
            .fetch_one(self.pool)
            .await;
        match inserted {
            Ok(row) => web_user(row).map_err(query_err("add user")),
            Err(e) if is_unique_violation(&e) => Err(StoreError::UserExists(name.to_string())),
            Err(e) => Err(query_err("add user")(e)),
        }
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<WebUser>, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM web_users WHERE name = ?");
        sqlx::query_as::<DB, UserRow>(self.dialect.sql(sql))
            .bind(name)
            .fetch_optional(self.pool)
            .await
            .and_then(|r| r.map(web_user).transpose())
            .map_err(query_err("user by name"))
    }

    pub async fn list_users(&self) -> Result<Vec<WebUser>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS} FROM web_users ORDER BY name{}",
            self.dialect.bytewise
        );
        sqlx::query_as::<DB, UserRow>(self.dialect.sql(sql))
            .fetch_all(self.pool)
            .await
            .and_then(|rows| rows.into_iter().map(web_user).collect())
            .map_err(query_err("list users"))
    }

    /// End every session of the user `name`, in `tx`.
    async fn end_sessions(
        &self,
        tx: &mut sqlx::Transaction<'static, DB>,
        name: &str,
        op: &'static str,
    ) -> Result<(), StoreError> {
        sqlx::query::<DB>(self.dialect.sql(
            "DELETE FROM web_sessions WHERE user_id IN (SELECT id FROM web_users WHERE name = ?)",
        ))
        .bind(name)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(query_err(op))
    }

    pub async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("remove user").await?;
        self.end_sessions(&mut tx, name, "remove user: sessions")
            .await?;
        let done = sqlx::query::<DB>(self.dialect.sql("DELETE FROM web_users WHERE name = ?"))
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(e("remove user"))?;
        tx.commit().await.map_err(e("remove user: commit"))?;
        Ok(done.affected() > 0)
    }

    pub async fn set_user_password(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("set user password").await?;
        self.end_sessions(&mut tx, name, "set user password: sessions")
            .await?;
        let done = sqlx::query::<DB>(
            self.dialect
                .sql("UPDATE web_users SET password_hash = ? WHERE name = ?"),
        )
        .bind(hash)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(e("set user password"))?;
        tx.commit().await.map_err(e("set user password: commit"))?;
        Ok(done.affected() > 0)
    }

    pub async fn set_user_lang(&self, user_id: i64, lang: &str) -> Result<(), StoreError> {
        let _w = self.lock().await;
        sqlx::query::<DB>(
            self.dialect
                .sql("UPDATE web_users SET lang = ? WHERE id = ?"),
        )
        .bind(lang)
        .bind(user_id)
        .execute(self.pool)
        .await
        .map(|_| ())
        .map_err(query_err("set user language"))
    }

    pub async fn add_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("add session").await?;
        sqlx::query::<DB>(
            self.dialect
                .sql("DELETE FROM web_sessions WHERE expires_at <= ?"),
        )
        .bind(s.now_ms)
        .execute(&mut *tx)
        .await
        .map_err(e("add session: expired"))?;
        sqlx::query::<DB>(self.dialect.sql(
            "INSERT INTO web_sessions (id_hash, user_id, csrf, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(s.id_hash)
        .bind(s.user_id)
        .bind(s.csrf)
        .bind(s.now_ms)
        .bind(s.expires_ms)
        .execute(&mut *tx)
        .await
        .map_err(e("add session"))?;
        tx.commit().await.map_err(e("add session: commit"))
    }

    pub async fn signin_failures(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        // A key or two per sign-in: one lookup each by the primary key.
        for key in keys {
            let row: Option<(String, i64, i64)> = sqlx::query_as::<DB, _>(self.dialect.sql(
                "SELECT key_hash, failures, since_ms FROM web_signin_failures WHERE key_hash = ?",
            ))
            .bind(key.as_str())
            .fetch_optional(self.pool)
            .await
            .map_err(query_err("sign-in failures"))?;
            out.extend(row);
        }
        Ok(out)
    }

    pub async fn add_signin_failure(
        &self,
        keys: &[(String, i64)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let e = query_err;
        let (_w, mut tx) = self.write_tx("sign-in failure").await?;
        let longest = keys.iter().map(|(_, w)| *w).max().unwrap_or(0);
        sqlx::query::<DB>(
            self.dialect
                .sql("DELETE FROM web_signin_failures WHERE since_ms <= ?"),
        )
        .bind(now_ms.saturating_sub(longest))
        .execute(&mut *tx)
        .await
        .map_err(e("sign-in failure: ended windows"))?;
        for (key, window_ms) in keys {
            let ended = now_ms.saturating_sub(*window_ms);
            sqlx::query::<DB>(self.dialect.sql(
                "INSERT INTO web_signin_failures (key_hash, failures, since_ms) VALUES (?, 1, ?) \
                 ON CONFLICT (key_hash) DO UPDATE SET \
                 failures = CASE WHEN web_signin_failures.since_ms <= ? THEN 1 \
                 ELSE web_signin_failures.failures + 1 END, \
                 since_ms = CASE WHEN web_signin_failures.since_ms <= ? THEN excluded.since_ms \
                 ELSE web_signin_failures.since_ms END",
            ))
            .bind(key.as_str())
            .bind(now_ms)
            .bind(ended)
            .bind(ended)
            .execute(&mut *tx)
            .await
            .map_err(e("sign-in failure"))?;
        }
        tx.commit().await.map_err(e("sign-in failure: commit"))
    }

    pub async fn clear_signin_failures(&self, key: &str) -> Result<(), StoreError> {
        let (_w, mut tx) = self.write_tx("sign-in success").await?;
        sqlx::query::<DB>(
            self.dialect
                .sql("DELETE FROM web_signin_failures WHERE key_hash = ?"),
        )
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(query_err("sign-in success"))?;
        tx.commit()
            .await
            .map_err(query_err("sign-in success: commit"))
    }

    pub async fn session(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS_U}, s.csrf, s.expires_at FROM web_sessions s \
             JOIN web_users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?"
        );
        let row = sqlx::query_as::<DB, SessionRow>(self.dialect.sql(sql))
            .bind(id_hash)
            .bind(now_ms)
            .fetch_optional(self.pool)
            .await
            .map_err(query_err("session"))?;
        let Some(r) = row else { return Ok(None) };
        let user =
            web_user((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7)).map_err(query_err("session"))?;
        Ok(Some(WebSession {
            user,
            csrf: r.8,
            expires_ms: r.9,
        }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let _w = self.lock().await;
        sqlx::query::<DB>(
            self.dialect
                .sql("DELETE FROM web_sessions WHERE id_hash = ?"),
        )
        .bind(id_hash)
        .execute(self.pool)
        .await
        .map(|_| ())
        .map_err(query_err("delete session"))
    }
}
