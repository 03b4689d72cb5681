//! Configuration files: TOML, unknown keys rejected, validated up front with
//! messages that name the file, the key and the fix. One file per side.

pub mod agent;
#[cfg(feature = "collector")]
pub mod alerts;
#[cfg(feature = "collector")]
pub mod collector;
pub mod presets;
pub mod probes;

use std::path::{Path, PathBuf};

/// A configuration that could not be used. Always names the file; the message
/// names the key and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

pub(crate) fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}
