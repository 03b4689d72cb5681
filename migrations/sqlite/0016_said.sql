-- What the dashboard last judged from each device's state-setting records
-- (its state right after them, and whether the last is a clean stop), with
-- the mark of 0013 (`transition_marks.version`) those records had then. A
-- collector starting reads these instead of every device's last records,
-- and reads again only the devices whose mark has moved since. Written by
-- the dashboard only, in a table of its own so that its writes never wait
-- on the rows ingest's triggers update; the pair (version, said) is always
-- written together, so it stays consistent whatever order writers land in.
-- SQLite dialect (same semantics as ../postgres/0016_said.sql).

CREATE TABLE device_saids (
    device_id INTEGER NOT NULL PRIMARY KEY REFERENCES devices (id),
    version   INTEGER NOT NULL,
    said      INTEGER NOT NULL
);
