-- Silences and maintenance windows, and contacts added from the CLI
-- (issue 14). Unix milliseconds.
--
-- A silence covers a device, an office or a branch of the hierarchy
-- (`target`: `device:NAME`, `office:CODE`, `upazila:A / B / C`, ...)
-- from `start_ms` (now, or later for a planned window) to `end_ms`.
-- Removing one deletes its row.
CREATE TABLE alert_silences (
    id          BIGSERIAL PRIMARY KEY,
    target      TEXT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE INDEX alert_silences_end ON alert_silences (end_ms);

-- Contacts imported with `linkwatch contacts import`, beside those of the
-- configuration; `body` is the contact as JSON, unique by lower-case name.
CREATE TABLE alert_contacts (
    name_key    TEXT NOT NULL PRIMARY KEY,
    body        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
