//! The dialect table: everything the shared SQL layer ([`super::sql`])
//! needs to know about SQLite and PostgreSQL to run the same statements on
//! both. Statements are written once with `?` placeholders; the table says
//! how to number them, which function spells a two-argument minimum, which
//! index hints the SQLite planner needs, how fractional roll-up columns are
//! kept, the two roll-up aggregates and the read of many devices' last
//! transitions whose shape differs by planner; and
//! how each driver says how many rows a statement changed ([`Affected`]).

use sqlx::AssertSqlSafe;
use std::borrow::Cow;

/// One database's spelling of the shared statements.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// Placeholders are `$1, $2, ...` (PostgreSQL) instead of `?` (SQLite).
    pub numbered: bool,
    /// The statement that begins a write transaction (`None`: the driver's
    /// default `BEGIN`). SQLite's `BEGIN IMMEDIATE` takes the write lock up
    /// front, so two writers never deadlock on a lock upgrade.
    pub begin_write: Option<&'static str>,
    /// The two-argument minimum (`MIN` in SQLite, `LEAST` in PostgreSQL).
    pub least: &'static str,
    /// Index hint of the read of a device's last transitions.
    pub transitions_hint: &'static str,
    /// Index hint of the read of old minute summaries.
    pub minutes_hint: &'static str,
    /// Collation that sorts names bytewise (SQLite's default already does).
    pub bytewise: &'static str,
    /// Fractional roll-up columns (`sent`, `lost`, the RTT histogram) are
    /// kept as integer thousandths (SQLite) rather than as floats.
    pub milli: bool,
    /// The cast that makes an integer aggregate a 64-bit integer.
    pub int_cast: &'static str,
    /// Roll-up sums per device, `{sums}` standing for the aggregate columns
    /// (see [`super::sql`]): binds schedule, first day, end day.
    pub sums: &'static str,
    /// Day ends with an outage at the day's start or end, by device and day:
    /// binds schedule, first day, end day.
    pub ends: &'static str,
    /// The last state-setting records of some devices (`{cols}`: the
    /// record columns of `r`; `{kinds}`: the state-setting kinds; `{ids}`:
    /// one placeholder per device): binds how many per device, then the
    /// device ids. Among records of one time the later sequence first;
    /// SQLite may give more than asked when several share the cut-off time.
    pub transitions: &'static str,
    /// Many devices (the device list, the dashboard's devices with their
    /// marks) are read as one JSON array built by the database
    /// (SQLite: its driver hands rows over one at a time, which costs more
    /// than building and parsing the text; a 100,000-device list took about
    /// half the time) rather than row by row.
    pub devices_as_json: bool,
    /// A pack's body with a segment appended (`v.column6` of the update's
    /// values): SQLite's `||` makes text of blobs, so it casts back (the
    /// bytes unchanged).
    pub pack_append: &'static str,
}

/// SQLite: the default store of a single collector.
pub(crate) const SQLITE: Dialect = Dialect {
    numbered: false,
    begin_write: Some("BEGIN IMMEDIATE"),
    least: "MIN",
    transitions_hint: " INDEXED BY records_device_transitions",
    minutes_hint: " INDEXED BY records_minutes_at",
    bytewise: "",
    milli: true,
    int_cast: "",
    // Devices first (CROSS JOIN keeps SQLite's join order): one seek into
    // each device's days, groups in key order, however many other days are
    // stored.
    sums: "SELECT {sums} FROM devices d CROSS JOIN rollup_days r \
           ON r.schedule = ? AND r.device_id = d.id AND r.day_ms >= ? AND r.day_ms < ? \
           GROUP BY d.id",
    ends: "SELECT device_id, day_ms, head_ms, tail_ms, whole, cont \
           FROM devices d CROSS JOIN rollup_days r INDEXED BY rollup_days_ends \
           ON r.schedule = ? AND r.device_id = d.id AND r.day_ms >= ? AND r.day_ms < ? \
           AND (r.head_ms > 0 OR r.tail_ms > 0) ORDER BY d.id, r.day_ms",
    // No LATERAL: each device's cut-off time is its limit-th newest entry
    // of the partial index (a correlated bound of the index range), then
    // the records from there on.
    transitions: "SELECT d.id, {cols} FROM devices d \
           CROSS JOIN records r INDEXED BY records_device_transitions \
           ON r.device_id = d.id AND r.kind IN {kinds} \
           AND r.at_ms >= COALESCE((SELECT x.at_ms FROM records x \
           INDEXED BY records_device_transitions \
           WHERE x.device_id = d.id AND x.kind IN {kinds} \
           ORDER BY x.at_ms DESC LIMIT 1 OFFSET (? - 1)), -9223372036854775808) \
           WHERE d.id IN ({ids})",
    devices_as_json: true,
    pack_append: "CAST(minute_packs.body || v.column6 AS BLOB)",
};

/// PostgreSQL: the store of larger deployments, possibly shared by replicas.
pub(crate) const POSTGRES: Dialect = Dialect {
    numbered: true,
    begin_write: None,
    least: "LEAST",
    transitions_hint: "",
    minutes_hint: "",
    bytewise: " COLLATE \"C\"",
    milli: false,
    int_cast: "::BIGINT",
    sums: "SELECT {sums} FROM rollup_days WHERE schedule = ? AND day_ms >= ? AND day_ms < ? \
           GROUP BY device_id",
    ends: "SELECT device_id, day_ms, head_ms, tail_ms, whole, cont FROM rollup_days \
           WHERE schedule = ? AND day_ms >= ? AND day_ms < ? \
           AND (head_ms > 0 OR tail_ms > 0) ORDER BY device_id, day_ms",
    // The planner keeps a correlated bound out of the index condition:
    // LATERAL with LIMIT reads only each device's newest index entries.
    transitions: "SELECT d.id, {cols} FROM devices d CROSS JOIN LATERAL ( \
           SELECT * FROM records x WHERE x.device_id = d.id AND x.kind IN {kinds} \
           ORDER BY x.at_ms DESC, x.seq DESC LIMIT ?) r \
           WHERE d.id IN ({ids})",
    devices_as_json: false,
    pack_append: "minute_packs.body || v.column6",
};

impl Dialect {
    /// A statement written with `?` placeholders, in this dialect.
    pub fn sql(&self, sql: impl Into<Cow<'static, str>>) -> AssertSqlSafe<Cow<'static, str>> {
        let sql = sql.into();
        AssertSqlSafe(if self.numbered {
            Cow::Owned(numbered(&sql))
        } else {
            sql
        })
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, ...`. (No shared statement has
/// a `?` inside a string literal.)
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// How many rows a statement changed (sqlx has no trait for it).
pub(crate) trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let s = "SELECT a FROM t WHERE b = ? AND c < ? LIMIT ?";
        assert_eq!(
            POSTGRES.sql(s).0,
            "SELECT a FROM t WHERE b = $1 AND c < $2 LIMIT $3"
        );
        assert_eq!(SQLITE.sql(s).0, s);
        assert!(matches!(SQLITE.sql(s).0, Cow::Borrowed(_)));
    }
}
