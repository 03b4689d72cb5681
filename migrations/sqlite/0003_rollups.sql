-- Roll-ups of the uptime engine's figures, SQLite dialect (same semantics as
-- ../postgres/0003_rollups.sql). Times are Unix milliseconds.
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
-- Here `sent`, `lost` and the histogram are in thousandths, as integers:
-- SQLite sums integers much faster than reals (compensated summation).
CREATE TABLE rollup_days (
    schedule       TEXT NOT NULL,
    device_id      INTEGER NOT NULL REFERENCES devices (id),
    day_ms         INTEGER NOT NULL,
    online_ms      INTEGER NOT NULL,
    offline_ms     INTEGER NOT NULL,
    not_running_ms INTEGER NOT NULL,
    no_data_ms     INTEGER NOT NULL,
    broadband_ms   INTEGER NOT NULL,
    wifi_ms        INTEGER NOT NULL,
    mobile_ms      INTEGER NOT NULL,
    outages        INTEGER NOT NULL,
    outage_ms      INTEGER NOT NULL,
    longest_ms     INTEGER NOT NULL,
    head_ms        INTEGER NOT NULL,
    tail_ms        INTEGER NOT NULL,
    whole          INTEGER NOT NULL CHECK (whole IN (0, 1)),
    cont           INTEGER NOT NULL CHECK (cont IN (0, 1)),
    failovers      INTEGER NOT NULL,
    sent           INTEGER NOT NULL,
    lost           INTEGER NOT NULL,
    rtt_h00         INTEGER NOT NULL DEFAULT 0,
    rtt_h01         INTEGER NOT NULL DEFAULT 0,
    rtt_h02         INTEGER NOT NULL DEFAULT 0,
    rtt_h03         INTEGER NOT NULL DEFAULT 0,
    rtt_h04         INTEGER NOT NULL DEFAULT 0,
    rtt_h05         INTEGER NOT NULL DEFAULT 0,
    rtt_h06         INTEGER NOT NULL DEFAULT 0,
    rtt_h07         INTEGER NOT NULL DEFAULT 0,
    rtt_h08         INTEGER NOT NULL DEFAULT 0,
    rtt_h09         INTEGER NOT NULL DEFAULT 0,
    rtt_h10         INTEGER NOT NULL DEFAULT 0,
    rtt_h11         INTEGER NOT NULL DEFAULT 0,
    rtt_h12         INTEGER NOT NULL DEFAULT 0,
    rtt_h13         INTEGER NOT NULL DEFAULT 0,
    rtt_h14         INTEGER NOT NULL DEFAULT 0,
    rtt_h15         INTEGER NOT NULL DEFAULT 0,
    rtt_h16         INTEGER NOT NULL DEFAULT 0,
    rtt_h17         INTEGER NOT NULL DEFAULT 0,
    rtt_h18         INTEGER NOT NULL DEFAULT 0,
    rtt_h19         INTEGER NOT NULL DEFAULT 0,
    rtt_h20         INTEGER NOT NULL DEFAULT 0,
    rtt_h21         INTEGER NOT NULL DEFAULT 0,
    rtt_h22         INTEGER NOT NULL DEFAULT 0,
    rtt_h23         INTEGER NOT NULL DEFAULT 0,
    computed_ms    INTEGER NOT NULL,
    PRIMARY KEY (schedule, device_id, day_ms)
) WITHOUT ROWID;

-- The day rows whose outages reach midnight (what reports chain), covering.
CREATE INDEX rollup_days_ends ON rollup_days
    (schedule, device_id, day_ms, head_ms, tail_ms, whole, cont)
    WHERE head_ms > 0 OR tail_ms > 0;

-- The device's timeline (device and link intervals, JSON) of each local day,
-- for the timeline endpoint.
CREATE TABLE rollup_timelines (
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    day_ms      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (device_id, day_ms)
) WITHOUT ROWID;

-- Which devices' roll-ups need computing: every day from from_ms's day on.
-- Ingest lowers from_ms to the earliest time a batch can change and bumps
-- version; the maintainer moves from_ms past the days it computed only if
-- version did not change meanwhile.
CREATE TABLE rollup_dirty (
    device_id INTEGER NOT NULL PRIMARY KEY REFERENCES devices (id),
    from_ms   INTEGER NOT NULL,
    version   INTEGER NOT NULL
);

-- The state-setting records of a device (sparse), for finding the state at
-- the start of a window without reading everything before it.
CREATE INDEX records_device_transitions ON records (device_id, at_ms)
    WHERE kind IN ('link_state', 'lifecycle', 'failover', 'facts');
