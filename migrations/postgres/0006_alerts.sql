-- Alerts and their outbox (issue 14). Unix milliseconds.
-- An alert row holds the engine's open alert as JSON (`state`, its id the
-- row's) and, once closed, `resolved_ms` and the resolution (JSON). At most
-- one alert per key (rule and subject) is open at a time.
CREATE TABLE alerts (
    id          BIGSERIAL PRIMARY KEY,
    alert_key   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    office      TEXT NULL,
    device      TEXT NULL,
    since_ms    BIGINT NOT NULL,
    opened_ms   BIGINT NOT NULL,
    resolved_ms BIGINT NULL,
    acked_by    TEXT NULL,
    acked_ms    BIGINT NULL,
    state       TEXT NOT NULL,
    resolution  TEXT NULL
);

CREATE UNIQUE INDEX alerts_open_key ON alerts (alert_key) WHERE resolved_ms IS NULL;
CREATE INDEX alerts_opened ON alerts (opened_ms);

-- One message to one contact over one channel, unique on its dedupe key
-- (`alert/event/level/contact/channel`); `body` is the whole row as JSON,
-- the other columns what the delivery loop selects on.
CREATE TABLE alert_outbox (
    dedupe_key      TEXT NOT NULL PRIMARY KEY,
    alert_id        BIGINT NOT NULL REFERENCES alerts (id),
    state           TEXT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    done_ms         BIGINT NULL,
    body            TEXT NOT NULL
);

CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt_ms);
CREATE INDEX alert_outbox_alert ON alert_outbox (alert_id);
