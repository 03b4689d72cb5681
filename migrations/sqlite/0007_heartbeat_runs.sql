-- Heartbeats as runs (issue 18, see src/collector/store/runs.rs): the plain
-- heartbeats `acked` covers move out of `records` into one row per run of
-- one boot and `online` whose seq, at_ms and mono_ms advance by constant
-- steps: member k (0..n) is first_seq + k*seq_step, first_at_ms +
-- k*at_step_ms, first_mono_ms + k*mono_step_ms. Same semantics as
-- ../postgres/0007_heartbeat_runs.sql.

CREATE TABLE heartbeat_runs (
    device_id     INTEGER NOT NULL REFERENCES devices (id),
    first_seq     INTEGER NOT NULL,
    n             INTEGER NOT NULL CHECK (n >= 1),
    seq_step      INTEGER NOT NULL CHECK (seq_step >= 0),
    first_at_ms   INTEGER NOT NULL,
    at_step_ms    INTEGER NOT NULL CHECK (at_step_ms >= 0),
    first_mono_ms INTEGER NOT NULL,
    mono_step_ms  INTEGER NOT NULL CHECK (mono_step_ms >= 0),
    boot_id       TEXT NOT NULL,
    online        INTEGER NOT NULL CHECK (online IN (0, 1)),
    -- when the upload that last extended the run arrived
    received_ms   INTEGER NOT NULL,
    -- the last member's seq and at_ms (derived, kept for range reads)
    last_seq      INTEGER NOT NULL,
    last_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (device_id, first_seq)
) WITHOUT ROWID;

-- records_between: the runs of a device reaching into a time window.
CREATE INDEX heartbeat_runs_device_last_at ON heartbeat_runs (device_id, last_at_ms);
