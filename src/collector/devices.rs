//! Device registry: bearer tokens (made here, stored only as SHA-256 hashes)
//! and device names; API tokens for the read API are made here too
//! ([`add_api_token`]), the same way. The import of the administrative
//! hierarchy (offices) from CSV or TOML files is in `offices`.

use super::access::{self, BranchError, Level, Role};
use super::store::{ApiToken, Device, Store, StoreError};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Every token this collector makes starts with this (version 1 of the format).
pub const TOKEN_PREFIX: &str = "lw1_";

/// A new device token: 32 random bytes from the operating system,
/// base64url without padding, prefixed [`TOKEN_PREFIX`] (47 characters).
pub fn new_token() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a token: SHA-256 of its text, lowercase hex.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// A device name the agent can send: 1 to 128 characters of letters, digits,
/// `.`, `_` and `-` (a host name fits).
pub fn check_device_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > crate::wire::v1::MAX_NAME {
        return Err(format!(
            "device name must be 1 to {} characters",
            crate::wire::v1::MAX_NAME
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "device name `{name}` contains {c:?}: use letters, digits, `.`, `_` and `-` (the agent's host name fits)"
        ));
    }
    Ok(())
}

/// Register a device with a fresh token. Returns the device and the token,
/// which exists nowhere else afterwards: show it once.
pub async fn add_device(
    store: &dyn Store,
    name: &str,
    office: Option<&str>,
    now_ms: i64,
) -> Result<(Device, String), AddDeviceError> {
    check_device_name(name).map_err(AddDeviceError::Name)?;
    let token = new_token();
    let device = store
        .add_device(name, office, &token_hash(&token), now_ms)
        .await?;
    Ok((device, token))
}

/// Issue a new token to the existing device `name`; the old one is refused
/// from now on. `None` when there is no such device.
pub async fn rotate_device(store: &dyn Store, name: &str) -> Result<Option<String>, StoreError> {
    let token = new_token();
    Ok(store
        .rotate_device_token(name, &token_hash(&token))
        .await?
        .then_some(token))
}

/// Why a device could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddDeviceError {
    #[error("{0}")]
    Name(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an API token could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddApiTokenError {
    #[error("{0}")]
    Name(String),
    /// The branch named for `--division`, `--district`, `--upazila` or `--office`.
    #[error("--{}: {}", .0.level, .0.message)]
    Branch(BranchError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Register an API token with `role`, limited to the branch `branch` names
/// (checked against the imported offices) when given. Returns the token as
/// stored and the token itself, which exists nowhere else afterwards: show
/// it once.
pub async fn add_api_token(
    store: &dyn Store,
    name: &str,
    role: Role,
    branch: Option<(Level, &str)>,
    now_ms: i64,
) -> Result<(ApiToken, String), AddApiTokenError> {
    access::check_token_name(name).map_err(AddApiTokenError::Name)?;
    let branch = match branch {
        None => None,
        Some((level, text)) => {
            let offices = store.list_offices().await?;
            Some(access::resolve_branch(level, text, &offices).map_err(AddApiTokenError::Branch)?)
        }
    };
    let token = new_token();
    let t = store
        .add_api_token(name, role, branch.as_ref(), &token_hash(&token), now_ms)
        .await?;
    Ok((t, token))
}

mod offices;
pub use offices::{
    CSV_HEADER, CSV_HOURS, ImportError, MAX_FIELD, import_offices, load_offices, parse_offices_csv,
    parse_offices_toml,
};
pub(crate) use offices::{header_columns, load_by_extension};

#[cfg(test)]
mod tests;
