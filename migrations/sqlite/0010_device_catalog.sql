-- A counter that changes whenever the device catalog changes: a device
-- added, removed, renamed, moved to another office, revoked or given a new
-- token, or an office added, changed or removed. The alert round reads every
-- device again only when it has changed (issue 14); uploads write only the
-- last-seen and acknowledgement columns, which leave it alone.
CREATE TABLE device_catalog (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO device_catalog (id, version) VALUES (1, 0);

CREATE TRIGGER device_catalog_device_added AFTER INSERT ON devices
BEGIN
    UPDATE device_catalog SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER device_catalog_device_removed AFTER DELETE ON devices
BEGIN
    UPDATE device_catalog SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER device_catalog_device_changed
AFTER UPDATE OF name, office, revoked, token_hash ON devices
BEGIN
    UPDATE device_catalog SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER device_catalog_office_added AFTER INSERT ON offices
BEGIN
    UPDATE device_catalog SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER device_catalog_office_removed AFTER DELETE ON offices
BEGIN
    UPDATE device_catalog SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER device_catalog_office_changed AFTER UPDATE ON offices
BEGIN
    UPDATE device_catalog SET version = version + 1 WHERE id = 1;
END;
