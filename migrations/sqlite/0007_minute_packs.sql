-- Compact storage of the per-minute records (issue 18, see
-- src/collector/store/packs.rs): plain `link_minutes` (not folded) and plain
-- heartbeats (count 1, not folded) that `acked` covers are not rows of
-- `records` but entries of packs: one row per device, stream (the kind and,
-- for link summaries, the link and its kind), boot and UTC hour, whose
-- `body` holds the entries delta-encoded and is extended in place as
-- uploads arrive. Same semantics as ../postgres/0007_minute_packs.sql.

CREATE TABLE minute_packs (
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    -- the first and last entries' sequence numbers and placed times
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    first_at_ms INTEGER NOT NULL,
    last_at_ms  INTEGER NOT NULL,
    -- 'link_minutes' or 'heartbeat'
    kind        TEXT NOT NULL,
    -- the link's name and kind ('' for heartbeats)
    link        TEXT NOT NULL,
    link_kind   TEXT NOT NULL,
    boot_id     TEXT NOT NULL,
    -- how many entries `body` holds
    n           INTEGER NOT NULL CHECK (n >= 1),
    body        BLOB NOT NULL,
    PRIMARY KEY (device_id, first_seq)
) WITHOUT ROWID;

-- Reads by time (roll-ups, timelines), the open packs ingest extends, and
-- retention of a device's old packs.
CREATE INDEX minute_packs_device_at ON minute_packs (device_id, last_at_ms);
-- Retention across devices: the link summaries' packs by time.
CREATE INDEX minute_packs_minutes_at ON minute_packs (first_at_ms) WHERE kind = 'link_minutes';
