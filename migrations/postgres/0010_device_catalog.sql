-- A counter that changes whenever the device catalog changes: a device
-- added, removed, renamed, moved to another office, revoked or given a new
-- token, or an office added, changed or removed. The alert round reads every
-- device again only when it has changed (issue 14); uploads write only the
-- last-seen and acknowledgement columns, which leave it alone.
CREATE TABLE device_catalog (
    id      SMALLINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO device_catalog (id, version) VALUES (1, 0);

CREATE FUNCTION device_catalog_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_catalog SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER device_catalog_devices
AFTER INSERT OR DELETE OR UPDATE OF name, office, revoked, token_hash ON devices
FOR EACH STATEMENT EXECUTE FUNCTION device_catalog_bump();

CREATE TRIGGER device_catalog_offices
AFTER INSERT OR DELETE OR UPDATE ON offices
FOR EACH STATEMENT EXECUTE FUNCTION device_catalog_bump();
