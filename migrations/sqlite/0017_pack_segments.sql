-- Packs extended without being rewritten (issue 18). Ingest appends the
-- entries of an upload to a stored pack as one more segment of the column
-- format (src/collector/store/packs/columns.rs) instead of decoding and
-- encoding the whole body; sealing rewrites a pack of many segments as one
-- (src/collector/store/packs/tails.rs). SQLite dialect (same semantics as
-- ../postgres/0017_pack_segments.sql).

-- The segments a body holds; 0 for packs written before this migration
-- (either format, unknown without reading the body: the next upload that
-- extends one rewrites it whole as one segment).
ALTER TABLE minute_packs ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;

-- Packs that came to hold more than one segment, by the start of their
-- span: sealing finds those of spans that are over here (one row a pack
-- and span, written when its second segment is), never by scanning packs.
CREATE TABLE pack_unsealed (
    span_ms   INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    PRIMARY KEY (span_ms, device_id, first_seq)
) WITHOUT ROWID;
