-- Heartbeats as runs (issue 18, see src/collector/store/runs.rs): the plain
-- heartbeats `acked` covers move out of `records` into one row per run of
-- one boot and `online` whose seq, at_ms and mono_ms advance by constant
-- steps: member k (0..n) is first_seq + k*seq_step, first_at_ms +
-- k*at_step_ms, first_mono_ms + k*mono_step_ms. Same semantics as
-- ../sqlite/0007_heartbeat_runs.sql.

CREATE TABLE heartbeat_runs (
    device_id     BIGINT NOT NULL REFERENCES devices (id),
    first_seq     BIGINT NOT NULL,
    n             BIGINT NOT NULL CHECK (n >= 1),
    seq_step      BIGINT NOT NULL CHECK (seq_step >= 0),
    first_at_ms   BIGINT NOT NULL,
    at_step_ms    BIGINT NOT NULL CHECK (at_step_ms >= 0),
    first_mono_ms BIGINT NOT NULL,
    mono_step_ms  BIGINT NOT NULL CHECK (mono_step_ms >= 0),
    boot_id       TEXT NOT NULL,
    online        BIGINT NOT NULL CHECK (online IN (0, 1)),
    -- when the upload that last extended the run arrived
    received_ms   BIGINT NOT NULL,
    -- the last member's seq and at_ms (derived, kept for range reads)
    last_seq      BIGINT NOT NULL,
    last_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (device_id, first_seq)
);

-- records_between: the runs of a device reaching into a time window.
CREATE INDEX heartbeat_runs_device_last_at ON heartbeat_runs (device_id, last_at_ms);
