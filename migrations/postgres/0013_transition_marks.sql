-- A mark per device that changes whenever one of its state-setting records
-- (link_state, lifecycle, failover, facts: the rows of the partial index
-- records_device_transitions) is stored, changed or deleted. PostgreSQL
-- dialect (same semantics as ../sqlite/0013_transition_marks.sql).
-- The dashboard keeps what a device's last state-setting records imply (its
-- state now) and reads them again only when the mark moved: one read of
-- every device's mark instead of one query per device on each page view.
-- Kept by triggers, so every writer (ingest, retention, packing) moves it.

CREATE TABLE transition_marks (
    device_id BIGINT NOT NULL PRIMARY KEY REFERENCES devices (id),
    version   BIGINT NOT NULL
);

INSERT INTO transition_marks (device_id, version)
SELECT device_id, COUNT(*) FROM records
WHERE kind IN ('link_state', 'lifecycle', 'failover', 'facts')
GROUP BY device_id;

CREATE FUNCTION transition_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO transition_marks (device_id, version) VALUES (OLD.device_id, 1)
        ON CONFLICT (device_id) DO UPDATE SET version = transition_marks.version + 1;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO transition_marks (device_id, version) VALUES (NEW.device_id, 1)
        ON CONFLICT (device_id) DO UPDATE SET version = transition_marks.version + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER records_transition_insert AFTER INSERT ON records FOR EACH ROW
WHEN (NEW.kind IN ('link_state', 'lifecycle', 'failover', 'facts'))
EXECUTE FUNCTION transition_mark();

CREATE TRIGGER records_transition_delete AFTER DELETE ON records FOR EACH ROW
WHEN (OLD.kind IN ('link_state', 'lifecycle', 'failover', 'facts'))
EXECUTE FUNCTION transition_mark();

CREATE TRIGGER records_transition_update AFTER UPDATE ON records FOR EACH ROW
WHEN (OLD.kind IN ('link_state', 'lifecycle', 'failover', 'facts')
   OR NEW.kind IN ('link_state', 'lifecycle', 'failover', 'facts'))
EXECUTE FUNCTION transition_mark();
