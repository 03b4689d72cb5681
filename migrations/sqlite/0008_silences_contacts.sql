-- Silences and maintenance windows, and contacts added from the CLI
-- (issue 14). Unix milliseconds.
--
-- A silence covers a device, an office or a branch of the hierarchy
-- (`target`: `device:NAME`, `office:CODE`, `upazila:A / B / C`, ...)
-- from `start_ms` (now, or later for a planned window) to `end_ms`.
-- Removing one deletes its row.
CREATE TABLE alert_silences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE INDEX alert_silences_end ON alert_silences (end_ms);

-- Contacts imported with `linkwatch contacts import`, beside those of the
-- configuration; `body` is the contact as JSON, unique by lower-case name.
CREATE TABLE alert_contacts (
    name_key    TEXT NOT NULL PRIMARY KEY,
    body        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
