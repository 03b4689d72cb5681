//! A database to bench on: a SQLite file in a temporary directory, or a
//! fresh schema in the PostgreSQL database `LINKWATCH_TEST_PG_URL` names
//! (dropped after).

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::future::Future;
use std::path::Path;

pub enum Db {
    Sqlite {
        dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        base: String,
        schema: String,
        url: String,
    },
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("collector.db").display());
        Db::Sqlite { dir, url }
    }

    /// A fresh schema in the database `base` names.
    pub async fn postgres(base: &str) -> Db {
        let schema = format!("lwbench_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(base)
            .await
            .expect("connect to LINKWATCH_TEST_PG_URL");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .expect("create a schema");
        conn.close().await.expect("close");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        Db::Postgres {
            base: base.to_string(),
            schema,
            url,
        }
    }

    /// A fresh schema, or None when `LINKWATCH_TEST_PG_URL` is not set.
    pub async fn postgres_from_env() -> Option<Db> {
        let base = std::env::var("LINKWATCH_TEST_PG_URL").ok()?;
        Some(Db::postgres(&base).await)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "SQLite",
            Db::Postgres { .. } => "PostgreSQL",
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Db::Sqlite { url, .. } | Db::Postgres { url, .. } => url,
        }
    }

    /// The directory of a SQLite file.
    pub fn sqlite_dir(&self) -> Option<&Path> {
        match self {
            Db::Sqlite { dir, .. } => Some(dir.path()),
            Db::Postgres { .. } => None,
        }
    }

    /// Drop the schema (PostgreSQL); a failure is said, not fatal.
    pub async fn drop_db(self) {
        if let Db::Postgres { base, schema, .. } = self {
            match PgConnection::connect(&base).await {
                Ok(mut conn) => {
                    if let Err(e) =
                        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                            .execute(&mut conn)
                            .await
                    {
                        eprintln!("cannot drop schema {schema}: {e}");
                    }
                    let _ = conn.close().await;
                }
                Err(e) => eprintln!("cannot drop schema {schema}: {e}"),
            }
        }
    }

    /// Run `scenario(url, name)` on this database, then drop it (also when
    /// the scenario panics; the panic is passed on).
    pub async fn run<F, Fut>(self, scenario: F)
    where
        F: FnOnce(String, &'static str) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let outcome = tokio::spawn(scenario(self.url().to_string(), self.name())).await;
        self.drop_db().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
