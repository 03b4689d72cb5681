//! Databases for the storage, API and report tests: a fresh SQLite file in a
//! temporary directory, or a fresh schema in the PostgreSQL database that
//! `LINKWATCH_TEST_PG_URL` names (skipped with a message when unset), and the
//! `on_both!` macro that runs each scenario on both.

use linkwatch::collector::store::{self, Store};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::future::Future;
use std::sync::Arc;

/// One test's database: a SQLite file or a PostgreSQL schema.
pub enum TestDb {
    Sqlite {
        dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        dir: tempfile::TempDir,
        base: String,
        schema: String,
        url: String,
    },
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("collector.db").display());
        TestDb::Sqlite { dir, url }
    }

    /// None (after saying so) when no PostgreSQL is configured.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var("LINKWATCH_TEST_PG_URL") else {
            eprintln!("skipped: LINKWATCH_TEST_PG_URL not set");
            return None;
        };
        let schema = format!("lwtest_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(&base).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        Some(TestDb::Postgres {
            dir: tempfile::tempdir().unwrap(),
            base,
            schema,
            url,
        })
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// A scratch directory for config files, certificates, ...
    pub fn dir(&self) -> &std::path::Path {
        match self {
            TestDb::Sqlite { dir, .. } | TestDb::Postgres { dir, .. } => dir.path(),
        }
    }

    pub async fn open(&self) -> Arc<dyn Store> {
        store::open(self.url()).await.unwrap()
    }

    pub async fn drop_db(self) {
        if let TestDb::Postgres { base, schema, .. } = self {
            let mut conn = PgConnection::connect(&base).await.unwrap();
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }

    /// Run `scenario` on this database, then drop it (also when the scenario
    /// panics; the panic is passed on).
    pub async fn run<F, Fut>(self, scenario: F)
    where
        F: FnOnce(Arc<TestDb>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let db = Arc::new(self);
        let outcome = tokio::spawn(scenario(db.clone())).await;
        let db = Arc::into_inner(db).expect("scenario kept the database");
        db.drop_db().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// For each scenario `name(db: Arc<TestDb>)`, a test `sqlite::name` and a
/// test `postgres::name`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::common::db::TestDb::sqlite().run(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(db) = crate::common::db::TestDb::postgres().await {
                        db.run(super::$name).await;
                    }
                }
            )*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use on_both;
