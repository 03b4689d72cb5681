//! The SQL migrations of the three databases (the agent's spool, the
//! collector on SQLite, the collector on PostgreSQL), embedded in the binary
//! and handed to sqlx's migrator.
//!
//! Listed here by hand instead of `sqlx::migrate!`: that proc-macro makes
//! cargo compile a second copy of sqlx for the build host (SQLite's C code
//! and the PostgreSQL driver included), minutes of every cold build. Each
//! migration keeps the version, description and checksum (SHA-384 of the
//! file) that `sqlx::migrate!` gave it, so databases migrated by earlier
//! builds still match; the tests check this list against the folders, so a
//! new file left out of it fails them.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration file: its version, its description (the file name's rest,
/// `_` read as a space, as sqlx names it) and its text.
type File = (i64, &'static str, &'static str);

macro_rules! files {
    ($dir:literal: $($version:literal $name:literal),+ $(,)?) => {
        &[$((
            $version,
            $name,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dir, "/", $name, ".sql")),
        )),+]
    };
}

/// `migrations/spool`.
pub const SPOOL: &[File] = files!("spool": 1 "0001_spool");

/// The collector's migrations, one list for both folders: every migration
/// exists for both databases under the same name (a file missing from one
/// folder fails the build).
macro_rules! collector {
    ($($version:literal $name:literal),+ $(,)?) => {
        /// `migrations/sqlite`.
        #[cfg(feature = "collector")]
        pub const SQLITE: &[File] = files!("sqlite": $($version $name),+);
        /// `migrations/postgres`.
        #[cfg(feature = "collector")]
        pub const POSTGRES: &[File] = files!("postgres": $($version $name),+);
    };
}

collector!(
    1 "0001_init",
    2 "0002_api_tokens",
    3 "0003_rollups",
    4 "0004_office_hours",
    5 "0005_last_seen",
    6 "0006_alerts",
    7 "0007_minute_packs",
    8 "0008_silences_contacts",
    9 "0009_web_users",
    10 "0010_device_catalog",
    11 "0011_pack_streams",
    12 "0012_records_minutes_at",
    13 "0013_transition_marks",
    14 "0014_spool_backlog",
    15 "0015_signin_failures",
    16 "0016_said",
    17 "0017_pack_segments",
);

/// The migrator of one database's files.
pub fn migrator(files: &'static [File]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, name, sql)| {
                let description = name
                    .split_once('_')
                    .map_or(name, |(_, rest)| rest)
                    .replace('_', " ");
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The embedded list is the folder, migration for migration, with the
    /// version, description, checksum and transaction mode sqlx reads from
    /// the files (what `sqlx::migrate!` embedded before).
    async fn same_as_folder(dir: &str, files: &'static [File]) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let from_folder = Migrator::new(path.as_path()).await.expect("read folder");
        let embedded = migrator(files);
        let summary = |m: &Migrator| {
            m.iter()
                .map(|m| {
                    (
                        m.version,
                        m.description.to_string(),
                        m.migration_type,
                        m.checksum.to_vec(),
                        m.no_tx,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            summary(&embedded),
            summary(&from_folder),
            "migrations/{dir}: the list in src/shared/migrations.rs differs from the folder"
        );
        assert!(!files.is_empty());
    }

    #[tokio::test]
    async fn spool_list_is_the_folder() {
        same_as_folder("spool", SPOOL).await;
    }

    #[cfg(feature = "collector")]
    #[tokio::test]
    async fn sqlite_list_is_the_folder() {
        same_as_folder("sqlite", SQLITE).await;
    }

    #[cfg(feature = "collector")]
    #[tokio::test]
    async fn postgres_list_is_the_folder() {
        same_as_folder("postgres", POSTGRES).await;
    }
}
