//! Storage of the dashboard's users and sessions (migration `0009_web_users`):
//! the rows' types and decoding; the statements, the same for both dialects,
//! are in the shared SQL layer (`super::sql`). A user has a role and maybe a
//! branch, as API tokens do; a session is kept by the SHA-256 of its cookie.

use crate::collector::model::{Branch, Level, Role};

/// A dashboard user as stored (with the Argon2id PHC string of its password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUser {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The branch it is limited to; `None`: the whole hierarchy.
    pub branch: Option<Branch>,
    pub password_hash: String,
    /// `en` or `bn`.
    pub lang: String,
    pub created_at_ms: i64,
}

/// A signed-in session, with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub user: WebUser,
    /// The form token of this session's pages.
    pub csrf: String,
    pub expires_ms: i64,
}

/// A new session to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession<'a> {
    /// SHA-256 (hex) of the cookie value.
    pub id_hash: &'a str,
    pub user_id: i64,
    pub csrf: &'a str,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// Columns `id, name, role, scope_level, scope_value, password_hash, lang,
/// created_at` of a user row.
pub(crate) type UserRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
);

pub(crate) const USER_COLS: &str =
    "id, name, role, scope_level, scope_value, password_hash, lang, created_at";
/// [`USER_COLS`] of the table aliased `u`.
pub(crate) const USER_COLS_U: &str =
    "u.id, u.name, u.role, u.scope_level, u.scope_value, u.password_hash, u.lang, u.created_at";

/// A user row as the type, or a decode error naming the bad column.
pub(crate) fn web_user(r: UserRow) -> Result<WebUser, sqlx::Error> {
    let bad = |what: String| sqlx::Error::Decode(what.into());
    let role = Role::parse(&r.2).ok_or_else(|| bad(format!("web_users.role `{}`", r.2)))?;
    let branch = match (r.3, r.4) {
        (None, None) => None,
        (Some(level), Some(name)) => Some(Branch {
            level: Level::parse(&level)
                .ok_or_else(|| bad(format!("web_users.scope_level `{level}`")))?,
            name,
        }),
        _ => {
            return Err(bad(
                "web_users scope_level/scope_value: one without the other".into(),
            ));
        }
    };
    Ok(WebUser {
        id: r.0,
        name: r.1,
        role,
        branch,
        password_hash: r.5,
        lang: r.6,
        created_at_ms: r.7,
    })
}
