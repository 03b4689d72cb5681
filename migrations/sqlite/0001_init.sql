-- linkwatch collector schema, SQLite dialect (same semantics as ../postgres/0001_init.sql).
-- Timestamps are Unix milliseconds (INTEGER). Append-only: change the schema in a new file.

CREATE TABLE offices (
    code     TEXT NOT NULL PRIMARY KEY,
    name     TEXT NOT NULL,
    division TEXT NOT NULL,
    district TEXT NOT NULL,
    upazila  TEXT NOT NULL
);

CREATE TABLE devices (
    -- AUTOINCREMENT: an id is never reused, even after a row is deleted.
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    office     TEXT NULL REFERENCES offices (code),
    token_hash TEXT NOT NULL UNIQUE,
    revoked    INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    -- highest sequence number up to which every record of the device is stored
    acked      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE INDEX devices_office ON devices (office);

CREATE TABLE records (
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    -- last sequence number a folded record stands for (= seq when not folded)
    seq_end     INTEGER NOT NULL CHECK (seq_end >= seq),
    at_ms       INTEGER NOT NULL,
    mono_ms     INTEGER NOT NULL,
    boot_id     TEXT NOT NULL,
    -- the body's `type` word (link_state, link_minutes, heartbeat, ...)
    kind        TEXT NOT NULL,
    -- the record's body, JSON
    body        TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;

CREATE INDEX records_device_at ON records (device_id, at_ms);
CREATE INDEX records_kind_at ON records (kind, at_ms);
