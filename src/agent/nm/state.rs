//! The small file that remembers which NetworkManager connections the agent changed and how
//! (see [`super::plan::Changes`]), so that a clean stop, or the next start after a crash,
//! undoes exactly that. It lives in the agent's state directory (beside the spool), is
//! written atomically (a temporary file, fsync, rename, fsync of the directory) on every
//! change, and removed when nothing is changed.

use super::plan::Changes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "networkmanager-changes.json";

/// Where the state file of an agent whose spool is `spool_path` lives.
pub fn path_for(spool_path: &Path) -> PathBuf {
    spool_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(FILE_NAME)
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a state file this agent understands ({message}): check it, then delete it (the changes it names will not be undone)"
    )]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    /// Why this file exists, for whoever finds it.
    #[serde(default)]
    about: String,
    changes: Changes,
}

/// The changes remembered in `path` (none when the file does not exist).
pub fn load(path: &Path) -> Result<Changes, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Changes::new()),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file: File = serde_json::from_str(&text).map_err(|e| StateError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if file.version != 1 {
        return Err(StateError::Parse {
            path: path.to_path_buf(),
            message: format!("version {} (this agent writes version 1)", file.version),
        });
    }
    Ok(file.changes)
}

/// Remember `changes` in `path` atomically; no changes removes the file.
pub fn save(path: &Path, changes: &Changes) -> Result<(), StateError> {
    let werr = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    if changes.is_empty() {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(werr(e)),
        }
    } else {
        let file = File {
            version: 1,
            about: "route metrics linkwatch changed on NetworkManager's applied connections \
                    (never on saved profiles); undone on a clean stop or at the next start"
                .into(),
            changes: changes.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("state serializes");
        let mut tmp = tempfile_in(dir, path).map_err(werr)?;
        tmp.1.write_all(text.as_bytes()).map_err(werr)?;
        tmp.1.sync_all().map_err(werr)?;
        std::fs::rename(&tmp.0, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp.0);
            werr(e)
        })?;
    }
    // The rename (or removal) itself must survive a power cut.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new file next to `path` (same directory, so the rename is atomic).
fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| FILE_NAME.into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    Ok((tmp, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::nm::plan::{Change, FamilyChange};

    #[test]
    fn round_trip_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert!(load(&path).unwrap().is_empty());
        let changes: Changes = [(
            "bb0".to_string(),
            Change {
                uuid: "u".into(),
                v4: Some(FamilyChange {
                    original: -1,
                    base: 100,
                    ours: 601,
                    was: None,
                }),
                v6: None,
            },
        )]
        .into();
        save(&path, &changes).unwrap();
        assert_eq!(load(&path).unwrap(), changes);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        save(&path, &Changes::new()).unwrap();
        assert!(!path.exists());
        save(&path, &Changes::new()).unwrap();
    }

    #[test]
    fn a_damaged_file_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "{not json").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains(FILE_NAME) && e.contains("delete it"), "{e}");
        std::fs::write(&path, r#"{"version":2,"changes":{}}"#).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("version 2"));
    }

    #[test]
    fn the_file_sits_beside_the_spool() {
        assert_eq!(
            path_for(Path::new("/var/lib/linkwatch/spool.db")),
            Path::new("/var/lib/linkwatch").join(FILE_NAME)
        );
        assert_eq!(
            path_for(Path::new("spool.db")),
            Path::new(".").join(FILE_NAME)
        );
    }
}
