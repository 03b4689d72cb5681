-- Users of the web dashboard and their sessions. SQLite dialect (same
-- semantics as ../postgres/0009_web_users.sql).
-- A user has a role (`read`: a viewer; `admin`) and may be limited to one
-- branch of the hierarchy, exactly as API tokens are (see 0002_api_tokens.sql).
-- Only an Argon2id PHC string of the password is kept. `lang` is the
-- dashboard's language for that user (`en` or `bn`).
-- A session is kept server-side by the SHA-256 of its cookie value (never the
-- value), with the form token (CSRF) of its pages and its expiry; removing a
-- user removes its sessions.

CREATE TABLE web_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('read', 'admin')),
    scope_level   TEXT NULL CHECK (scope_level IN ('division', 'district', 'upazila', 'office')),
    scope_value   TEXT NULL,
    password_hash TEXT NOT NULL,
    lang          TEXT NOT NULL DEFAULT 'en' CHECK (lang IN ('en', 'bn')),
    created_at    INTEGER NOT NULL,
    CHECK ((scope_level IS NULL) = (scope_value IS NULL))
);

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES web_users (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
