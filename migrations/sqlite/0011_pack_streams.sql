-- Packs that cost fewer bytes (issue 18): a pack's stream (kind, link,
-- link kind, boot) is named once in `pack_streams` and packs refer to it by
-- id; `minutes` (1: link summaries, 0: heartbeats) is what retention and
-- its index need of the kind. Packs are found by their first placed time
-- (a pack lies within one UTC hour, so its hour bounds its last), which
-- updates in place do not change. Bodies keep their format byte: rows
-- copied here keep the first format, new ones use the column format
-- (src/collector/store/packs/columns.rs). Same semantics as
-- ../postgres/0011_pack_streams.sql.

CREATE TABLE pack_streams (
    id        INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices (id),
    -- 'link_minutes' or 'heartbeat'
    kind      TEXT NOT NULL,
    -- the link's name and kind ('' for heartbeats)
    link      TEXT NOT NULL,
    link_kind TEXT NOT NULL,
    boot_id   TEXT NOT NULL,
    UNIQUE (device_id, kind, link, link_kind, boot_id)
);

CREATE TABLE packs_0011 (
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    -- the first and last entries' sequence numbers and placed times
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    first_at_ms INTEGER NOT NULL,
    last_at_ms  INTEGER NOT NULL,
    stream_id   INTEGER NOT NULL REFERENCES pack_streams (id),
    minutes     INTEGER NOT NULL CHECK (minutes IN (0, 1)),
    -- how many entries `body` holds
    n           INTEGER NOT NULL CHECK (n >= 1),
    body        BLOB NOT NULL,
    PRIMARY KEY (device_id, first_seq)
) WITHOUT ROWID;

INSERT INTO pack_streams (device_id, kind, link, link_kind, boot_id)
SELECT DISTINCT device_id, kind, link, link_kind, boot_id FROM minute_packs;

INSERT INTO packs_0011
SELECT p.device_id, p.first_seq, p.last_seq, p.first_at_ms, p.last_at_ms, s.id,
       CASE WHEN p.kind = 'link_minutes' THEN 1 ELSE 0 END, p.n, p.body
FROM minute_packs p
JOIN pack_streams s ON s.device_id = p.device_id AND s.kind = p.kind AND s.link = p.link
     AND s.link_kind = p.link_kind AND s.boot_id = p.boot_id;

DROP TABLE minute_packs;
ALTER TABLE packs_0011 RENAME TO minute_packs;

-- A device's packs by time: reads (roll-ups, timelines), the open packs
-- ingest extends.
CREATE INDEX minute_packs_device_at ON minute_packs (device_id, first_at_ms);
-- Retention across devices and the oldest raw minute: link summaries by time.
CREATE INDEX minute_packs_minutes_at ON minute_packs (first_at_ms) WHERE minutes = 1;
