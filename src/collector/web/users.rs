//! Dashboard users: names, passwords hashed with Argon2id (PHC strings, a
//! random salt each), and adding one with a role and maybe a branch of the
//! hierarchy, as API tokens are made (`linkwatch user add`).

use crate::collector::access::{self, BranchError, Level, Role};
use crate::collector::store::{Store, StoreError, WebUser};
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use std::sync::OnceLock;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted (bytes): hashing stays bounded.
pub const MAX_PASSWORD: usize = 256;
/// Longest user name.
pub const MAX_NAME: usize = 64;

/// A user name: 1 to 64 letters, digits, `.`, `_`, `-` and `@`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("user name must be 1 to {MAX_NAME} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        return Err(format!(
            "user name `{name}` contains {c:?}: use letters, digits, `.`, `_`, `-` and `@`"
        ));
    }
    Ok(())
}

/// A password: 12 to 256 bytes.
pub fn check_password(pw: &str) -> Result<(), String> {
    if pw.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "password too short: use at least {MIN_PASSWORD} characters"
        ));
    }
    if pw.len() > MAX_PASSWORD {
        return Err(format!("password too long: at most {MAX_PASSWORD} bytes"));
    }
    Ok(())
}

/// The Argon2id PHC string of `pw` (default parameters, a random 16-byte salt).
pub fn hash_password(pw: &str) -> Result<String, String> {
    use rand::TryRngCore;
    let mut salt = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| format!("random salt: {e}"))?;
    argon2::Argon2::default()
        .hash_password_with_salt(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Does `pw` match the PHC string `phc`? (False for a malformed string.)
pub fn verify_password(pw: &str, phc: &str) -> bool {
    if pw.len() > MAX_PASSWORD {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to check against when the user does not exist, so that an unknown
/// name costs as long as a wrong password (no hint which part was wrong).
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

/// Why a user could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error("{0}")]
    Name(String),
    #[error("{0}")]
    Password(String),
    /// The branch named for `--division`, `--district`, `--upazila` or `--office`.
    #[error("--{}: {}", .0.level, .0.message)]
    Branch(BranchError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Add a user with `role`, limited to the branch `branch` names (checked
/// against the imported offices) when given.
pub async fn add_user(
    store: &dyn Store,
    name: &str,
    role: Role,
    branch: Option<(Level, &str)>,
    password: &str,
    now_ms: i64,
) -> Result<WebUser, AddUserError> {
    check_user_name(name).map_err(AddUserError::Name)?;
    check_password(password).map_err(AddUserError::Password)?;
    let branch = match branch {
        None => None,
        Some((level, text)) => {
            let offices = store.list_offices().await?;
            Some(access::resolve_branch(level, text, &offices).map_err(AddUserError::Branch)?)
        }
    };
    let hash = hash_password(password).map_err(AddUserError::Password)?;
    Ok(store
        .add_user(name, role, branch.as_ref(), &hash, now_ms)
        .await?)
}

/// Give the user `name` a new password (checked, then hashed) and end its
/// sessions; `Ok(false)` when there is no such user.
pub async fn set_password(
    store: &dyn Store,
    name: &str,
    password: &str,
) -> Result<bool, AddUserError> {
    check_password(password).map_err(AddUserError::Password)?;
    let hash = hash_password(password).map_err(AddUserError::Password)?;
    Ok(store.set_user_password(name, &hash).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse battery!", &a));
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_password("anything", decoy_hash()));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        check_user_name("it.dhaka@gov").unwrap();
        assert!(check_user_name("").is_err());
        assert!(check_user_name("a b").is_err());
        assert!(check_user_name("<script>").is_err());
        assert!(check_password("short").is_err());
        check_password("twelve chars").unwrap();
        assert!(check_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
    }
}
