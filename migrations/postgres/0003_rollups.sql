-- Roll-ups of the uptime engine's figures, PostgreSQL dialect (same semantics as
-- ../sqlite/0003_rollups.sql). Times are Unix milliseconds.
--
-- rollup_days: one row per device, schedule and local day (Asia/Dhaka
-- midnight to midnight, day_ms its start), holding the figures of that day
-- inside the schedule. Outages touching the day's start or end are described
-- by head_ms/tail_ms (their parts inside the day) so that reports can join an
-- outage that runs over midnight; `cont` says the head continues an outage
-- of the day before; `outages` counts the day's outages that do not;
-- `longest_ms` is the longest outage touching neither end of the day. RTT
-- medians of the day's link summaries, weighted by answered probes, are kept
-- as a histogram of 24 half-octave buckets from 1 ms (rtt_h00..rtt_h23).
CREATE TABLE rollup_days (
    schedule       TEXT NOT NULL,
    device_id      BIGINT NOT NULL REFERENCES devices (id),
    day_ms         BIGINT NOT NULL,
    online_ms      BIGINT NOT NULL,
    offline_ms     BIGINT NOT NULL,
    not_running_ms BIGINT NOT NULL,
    no_data_ms     BIGINT NOT NULL,
    broadband_ms   BIGINT NOT NULL,
    wifi_ms        BIGINT NOT NULL,
    mobile_ms      BIGINT NOT NULL,
    outages        BIGINT NOT NULL,
    outage_ms      BIGINT NOT NULL,
    longest_ms     BIGINT NOT NULL,
    head_ms        BIGINT NOT NULL,
    tail_ms        BIGINT NOT NULL,
    whole          BOOLEAN NOT NULL,
    cont           BOOLEAN NOT NULL,
    failovers      BIGINT NOT NULL,
    sent           DOUBLE PRECISION NOT NULL,
    lost           DOUBLE PRECISION NOT NULL,
    rtt_h00         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h01         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h02         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h03         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h04         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h05         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h06         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h07         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h08         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h09         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h10         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h11         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h12         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h13         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h14         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h15         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h16         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h17         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h18         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h19         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h20         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h21         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h22         DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_h23         DOUBLE PRECISION NOT NULL DEFAULT 0,
    computed_ms    BIGINT NOT NULL,
    PRIMARY KEY (schedule, device_id, day_ms)
);

-- A window's days among years of them (the planner scans the table when
-- the window is most of it).
CREATE INDEX rollup_days_window ON rollup_days (schedule, day_ms);

-- The day rows whose outages reach midnight (what reports chain), covering.
CREATE INDEX rollup_days_ends ON rollup_days
    (schedule, device_id, day_ms, head_ms, tail_ms, whole, cont)
    WHERE head_ms > 0 OR tail_ms > 0;

-- The device's timeline (device and link intervals, JSON) of each local day,
-- for the timeline endpoint.
CREATE TABLE rollup_timelines (
    device_id   BIGINT NOT NULL REFERENCES devices (id),
    day_ms      BIGINT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (device_id, day_ms)
);

-- Which devices' roll-ups need computing: every day from from_ms's day on.
-- Ingest lowers from_ms to the earliest time a batch can change and bumps
-- version; the maintainer moves from_ms past the days it computed only if
-- version did not change meanwhile.
CREATE TABLE rollup_dirty (
    device_id BIGINT NOT NULL PRIMARY KEY REFERENCES devices (id),
    from_ms   BIGINT NOT NULL,
    version   BIGINT NOT NULL
);

-- The state-setting records of a device (sparse), for finding the state at
-- the start of a window without reading everything before it.
CREATE INDEX records_device_transitions ON records (device_id, at_ms)
    WHERE kind IN ('link_state', 'lifecycle', 'failover', 'facts');
