//! The device's upload token: read from its file (trimmed, private) and
//! checked before the agent starts.

use super::UploadError;
use crate::config::agent::UploadSection;
use std::path::Path;

/// Read the device's token from `path` (trimmed): it must exist, be
/// readable, not be empty and be private (see [`crate::shared::files`]).
pub fn read_token(path: &Path) -> Result<String, UploadError> {
    let text = std::fs::read_to_string(path).map_err(|source| UploadError::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(UploadError::EmptyToken {
            path: path.to_path_buf(),
        });
    }
    // Refused when others can read it: the token is all it takes to upload
    // as this device.
    crate::shared::files::check_private(path)?;
    Ok(token.to_string())
}

/// With a collector configured: is the token file there, readable, not
/// empty and private? (Checked before the agent starts and by `validate`.)
pub fn check_token(cfg: &UploadSection) -> Result<(), UploadError> {
    if cfg.collector_url.is_none() {
        return Ok(());
    }
    let path = cfg.token_file.as_ref().ok_or(UploadError::NoToken)?;
    read_token(path).map(|_| ())
}
