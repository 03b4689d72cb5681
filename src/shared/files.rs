//! Files that hold secrets: the ones linkwatch makes (databases, the spool,
//! tokens written by the CLI) are created `0600` whatever the umask, and the
//! ones it is given (an agent's token file, the collector's TLS key) are
//! refused when others could read or change them.
//!
//! Group read is allowed (`0640`, `0440`): a unit may need a group to reach
//! its secret (a service user in the file's group, or systemd's credential
//! files, whose ACL mask shows as group read). The group must then hold only
//! that service. Group *write* and any access for others are refused.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the files linkwatch creates with secrets in them.
pub const PRIVATE: u32 = 0o600;
/// Permission bits a secret file must not have: group write, and anything
/// for others.
pub const TOO_OPEN: u32 = 0o027;

/// A secret file that cannot be used or made.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {path}: {source}")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} has mode {mode:04o}: {who} it, and it holds a secret; run `chmod 600 {path}` \
         (or `chmod 640` with a group that only this service's user is in)"
    )]
    TooOpen {
        path: PathBuf,
        mode: u32,
        who: &'static str,
    },
    #[error("{path} already exists: remove it or choose another file")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Who else can reach a file of `mode`, when that is too many.
fn too_open(mode: u32) -> Option<&'static str> {
    if mode & TOO_OPEN == 0 {
        return None;
    }
    Some(if mode & 0o006 != 0 {
        "every user of this machine can read or change"
    } else if mode & 0o001 != 0 {
        "every user of this machine has access to"
    } else {
        "its group can change"
    })
}

/// `Ok` when the secret file at `path` is private enough (see the module
/// documentation); the error names the file, its mode and the fix.
pub fn check_private(path: &Path) -> Result<(), SecretFileError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretFileError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    match too_open(mode) {
        Some(who) => Err(SecretFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
            who,
        }),
        None => Ok(()),
    }
}

/// Create `path`, which must not exist, empty and with mode `0600` whatever
/// the umask; write the secret into the returned file with
/// [`write_secret`]. (Made before the secret exists, so a path that cannot
/// be written fails before a token is made.)
pub fn create_new_private(path: &Path) -> Result<File, SecretFileError> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                SecretFileError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                SecretFileError::Write {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    // The umask can only take bits away from 0600; set it anyway, so the
    // file is exactly 0600.
    f.set_permissions(std::fs::Permissions::from_mode(PRIVATE))
        .map_err(|source| SecretFileError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(f)
}

/// Write `contents` into `file` (made by [`create_new_private`] at `path`)
/// and sync it to disk.
pub fn write_secret(mut file: File, path: &Path, contents: &[u8]) -> Result<(), SecretFileError> {
    let write_err = |source: std::io::Error| SecretFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    file.write_all(contents).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// Create `path` (which must not exist) with mode `0600`, whatever the
/// umask, and write `contents` to it, synced to disk.
pub fn write_new_private(path: &Path, contents: &[u8]) -> Result<(), SecretFileError> {
    write_secret(create_new_private(path)?, path, contents)
}

/// A database file whose mode [`private_database`] tightened (or failed to:
/// a file of another user, a read-only file system; it is then used as it
/// is, and the caller warns).
#[derive(Debug)]
pub struct Tightened {
    pub path: PathBuf,
    pub result: std::io::Result<()>,
}

/// Make sure the database file at `path` and its side files (`-wal`,
/// `-shm`, `-journal`) that exist are not open to others: a missing
/// database is created empty with mode `0600` (SQLite then gives its side
/// files the database's mode, whatever the umask). Existing regular files
/// that others can reach (the `0644` older versions made) are set to
/// `0600`; group write is taken away; a group's read access (`0640`) is left
/// alone. Returns the files whose mode was (or could not be) changed; `Err`
/// only when a missing database cannot be created.
pub fn private_database(path: &Path) -> std::io::Result<Vec<Tightened>> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE)
        .open(path)
    {
        Ok(f) => {
            f.set_permissions(std::fs::Permissions::from_mode(PRIVATE))?;
            return Ok(Vec::new());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mut changed = Vec::new();
    let name = path.as_os_str();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = name.to_os_string();
        p.push(suffix);
        let p = PathBuf::from(p);
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let tight = if mode & 0o007 != 0 {
            mode & 0o700
        } else {
            mode & !0o020
        };
        if tight != mode {
            let result = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(tight));
            changed.push(Tightened { path: p, result });
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "secret").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn secrets_others_can_reach_are_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for ok in [0o600, 0o400, 0o640, 0o440, 0o700] {
            check_private(&with_mode(dir.path(), "ok", ok)).unwrap();
        }
        for bad in [0o644, 0o604, 0o602, 0o601, 0o660, 0o666, 0o777] {
            let p = with_mode(dir.path(), "bad", bad);
            let e = check_private(&p).unwrap_err().to_string();
            assert!(e.contains(&format!("chmod 600 {}", p.display())), "{e}");
            assert!(e.contains(&format!("{bad:04o}")), "{bad:o}: {e}");
        }
        let e = check_private(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn new_secret_files_are_0600_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        write_new_private(&p, b"lw1_x\n").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"lw1_x\n");
        let e = write_new_private(&p, b"other").unwrap_err();
        assert!(matches!(e, SecretFileError::Exists { .. }), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"lw1_x\n");
    }

    #[test]
    fn databases_are_made_private_and_old_ones_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        assert!(private_database(&db).unwrap().is_empty());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);
        // An older database left world-readable, with its WAL.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = with_mode(dir.path(), "c.db-wal", 0o664);
        let paths = |v: Vec<Tightened>| -> Vec<PathBuf> {
            v.into_iter()
                .map(|t| {
                    t.result.unwrap();
                    t.path
                })
                .collect()
        };
        let changed = paths(private_database(&db).unwrap());
        assert_eq!(changed, vec![db.clone(), wal.clone()]);
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        assert!(private_database(&db).unwrap().is_empty());
        // A group given read access on purpose keeps it; group write goes.
        let shm = with_mode(dir.path(), "c.db-shm", 0o660);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(paths(private_database(&db).unwrap()), vec![shm.clone()]);
        // A directory in the way is left alone (opening it fails later).
        let d = dir.path().join("d.db");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_database(&d).unwrap().is_empty());
        assert_eq!(mode(&d), 0o755);
        assert_eq!((mode(&db), mode(&shm)), (0o640, 0o640));
    }
}
