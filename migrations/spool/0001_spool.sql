-- The agent's local spool: records waiting to be uploaded, in sequence order.
-- `meta` holds counters that must survive deletions and crashes (last_seq is
-- advanced in the same transaction as the insert, so a seq is never reused).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) STRICT;

INSERT INTO meta (key, value) VALUES
    ('last_seq', 0),     -- highest seq ever assigned
    ('bytes', 0),        -- sum of records.size
    ('folded', 0),       -- records eliminated by folding, cumulative
    ('over_budget', 0),  -- appends written while over budget with nothing left to fold
    ('exposed', 0);      -- highest seq_end handed out by batch(): never folded again

CREATE TABLE records (
    seq     INTEGER PRIMARY KEY NOT NULL,
    seq_end INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    mono_ms INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    -- Body::kind(), and the link for link_minutes / `online` for heartbeats:
    -- what folding groups by, without parsing every body.
    kind    TEXT NOT NULL,
    link    TEXT,
    -- the wire::v1::Body, JSON
    body    TEXT NOT NULL,
    -- payload bytes counted against the budget: body + boot_id + 24
    size    INTEGER NOT NULL
) STRICT;
