-- A mark per device that changes whenever one of its state-setting records
-- (link_state, lifecycle, failover, facts: the rows of the partial index
-- records_device_transitions) is stored, changed or deleted. SQLite dialect
-- (same semantics as ../postgres/0013_transition_marks.sql).
-- The dashboard keeps what a device's last state-setting records imply (its
-- state now) and reads them again only when the mark moved: one read of
-- every device's mark instead of one query per device on each page view.
-- Kept by triggers, so every writer (ingest, retention, packing) moves it.

CREATE TABLE transition_marks (
    device_id INTEGER NOT NULL PRIMARY KEY REFERENCES devices (id),
    version   INTEGER NOT NULL
);

INSERT INTO transition_marks (device_id, version)
SELECT device_id, COUNT(*) FROM records
WHERE kind IN ('link_state', 'lifecycle', 'failover', 'facts')
GROUP BY device_id;

CREATE TRIGGER records_transition_insert AFTER INSERT ON records
WHEN NEW.kind IN ('link_state', 'lifecycle', 'failover', 'facts')
BEGIN
    INSERT INTO transition_marks (device_id, version) VALUES (NEW.device_id, 1)
    ON CONFLICT (device_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER records_transition_delete AFTER DELETE ON records
WHEN OLD.kind IN ('link_state', 'lifecycle', 'failover', 'facts')
BEGIN
    INSERT INTO transition_marks (device_id, version) VALUES (OLD.device_id, 1)
    ON CONFLICT (device_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER records_transition_update AFTER UPDATE ON records
WHEN OLD.kind IN ('link_state', 'lifecycle', 'failover', 'facts')
  OR NEW.kind IN ('link_state', 'lifecycle', 'failover', 'facts')
BEGIN
    INSERT INTO transition_marks (device_id, version) VALUES (OLD.device_id, 1)
    ON CONFLICT (device_id) DO UPDATE SET version = version + 1;
    INSERT INTO transition_marks (device_id, version) VALUES (NEW.device_id, 1)
    ON CONFLICT (device_id) DO UPDATE SET version = version + 1;
END;
