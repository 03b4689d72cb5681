-- What an agent still had to send after its last upload (protocol v1's
-- batch `backlog`), for the dashboard's device page. NULL: never reported
-- (agents before the field). Set with last_upload_ms, in the same UPDATE.
-- SQLite dialect (same semantics as ../postgres/0014_spool_backlog.sql).
ALTER TABLE devices ADD COLUMN backlog_records INTEGER;
ALTER TABLE devices ADD COLUMN backlog_oldest_ms INTEGER;
