-- Index audit (issue 18 item 2): `records_kind_at` indexed every row of
-- `records` by kind and time, but the only statements that use it ask for
-- link summaries (retention of raw minutes and the oldest raw minute; since
-- migration 0007 most summaries are packed, the rest are folded ones or
-- ones stored beyond a gap). A partial index of just those serves both.
-- Same semantics as ../postgres/0012_records_minutes_at.sql.

DROP INDEX records_kind_at;
CREATE INDEX records_minutes_at ON records (at_ms) WHERE kind = 'link_minutes';
