-- API tokens for the read API (reports, timelines, outages) and its admin
-- endpoints. PostgreSQL dialect (same semantics as ../sqlite/0002_api_tokens.sql).
-- Only the SHA-256 of a token (lowercase hex) is kept, as for device tokens.
-- A token may be limited to one branch of the hierarchy: `scope_level` is
-- division, district, upazila or office and `scope_value` the branch's name
-- (district: `Division / District`, upazila: `Division / District / Upazila`,
-- office: its code); both NULL for the whole ministry.

CREATE TABLE api_tokens (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('read', 'admin')),
    scope_level TEXT NULL CHECK (scope_level IN ('division', 'district', 'upazila', 'office')),
    scope_value TEXT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    revoked     BOOLEAN NOT NULL DEFAULT false,
    created_at  BIGINT NOT NULL,
    CHECK ((scope_level IS NULL) = (scope_value IS NULL))
);
