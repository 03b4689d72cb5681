-- Last seen per device (alerts, issue 14). Unix milliseconds, NULL until
-- the device's first upload:
-- - last_upload_ms: when the collector last received an upload from it
--   (the collector's clock);
-- - last_record_ms, last_record_seq: placed time and sequence number of
--   the newest record received (highest sequence number, replays ignored);
-- - next_upload_due_ms: the deadline the agent announced in its last
--   upload for the next one (`next_upload_by`); NULL for agents that
--   announce none (the configured interval applies).
ALTER TABLE devices ADD COLUMN last_upload_ms INTEGER NULL;
ALTER TABLE devices ADD COLUMN last_record_ms INTEGER NULL;
ALTER TABLE devices ADD COLUMN last_record_seq INTEGER NULL;
ALTER TABLE devices ADD COLUMN next_upload_due_ms INTEGER NULL;
