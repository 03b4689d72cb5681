-- What the dashboard last judged from each device's state-setting records
-- (its state right after them, and whether the last is a clean stop), with
-- the mark (`version`) those records had then. A collector starting reads
-- these instead of every device's last records, and reads again only the
-- devices whose mark has moved since. Written by the dashboard, never by
-- the triggers of 0013; the pair (said_version, said) is always written
-- together, so it stays consistent whatever order writers land in.
-- SQLite dialect (same semantics as ../postgres/0016_said.sql).

ALTER TABLE transition_marks ADD COLUMN said_version INTEGER;
ALTER TABLE transition_marks ADD COLUMN said INTEGER;
