//! The collector's domain types, shared by the store, the access rules,
//! reports and the APIs: devices and when they were last seen, offices of
//! the hierarchy, API tokens with their roles and branches, stored records
//! and roll-up marks. Plain data with the rules that need nothing else; this
//! module imports nothing from the rest of the collector.

use std::collections::BTreeMap;
use std::fmt;

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: i64,
    pub name: String,
    /// Office code (see [`Office`]), if attached.
    pub office: Option<String>,
    pub revoked: bool,
    /// Highest contiguous sequence number stored.
    pub acked: i64,
    pub created_at_ms: i64,
    /// Last seen (Unix ms, `None` before the first upload): see [`LastSeen`].
    pub seen: LastSeen,
}

/// When a device was last heard from (Unix ms; `None` before its first
/// upload).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LastSeen {
    /// When the collector last received an upload from it (its own clock).
    pub last_upload_ms: Option<i64>,
    /// Placed time of the newest record received (highest sequence number).
    pub last_record_ms: Option<i64>,
    /// The deadline its agent announced for the next upload (protocol v1
    /// `next_upload_by`); `None` for agents that announce none.
    pub next_upload_due_ms: Option<i64>,
}

impl LastSeen {
    /// When the device's next upload is due at the latest: the announced
    /// deadline, else the last upload plus `interval_ms`; `None` before the
    /// first upload.
    pub fn due_ms(&self, interval_ms: i64) -> Option<i64> {
        self.next_upload_due_ms
            .or_else(|| Some(self.last_upload_ms?.saturating_add(interval_ms)))
    }

    /// Silent at `now_ms`: heard from once, and its upload deadline plus
    /// `grace_ms` has passed.
    pub fn silent(&self, now_ms: i64, interval_ms: i64, grace_ms: i64) -> bool {
        self.due_ms(interval_ms)
            .is_some_and(|due| now_ms > due.saturating_add(grace_ms))
    }
}

/// One office in the hierarchy ministry → division → district → upazila → office.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    /// Unique short code, e.g. `dhk-savar-uno`.
    pub code: String,
    pub name: String,
    pub division: String,
    pub district: String,
    pub upazila: String,
    /// The office's own hours, spelled as a report's `schedule` (e.g.
    /// `office:Asia/Dhaka:sun-thu:08:00-16:00`): what the `office` schedule
    /// means for its devices. `None`: the circular's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
}

/// An API token of the read API, as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The branch it is limited to; `None`: the whole hierarchy.
    pub branch: Option<Branch>,
    pub revoked: bool,
    pub created_at_ms: i64,
}

/// A stored record, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub seq: i64,
    pub seq_end: i64,
    pub at_ms: i64,
    pub mono_ms: i64,
    pub boot_id: String,
    pub kind: String,
    /// The record's body, JSON.
    pub body: String,
    pub received_ms: i64,
}

/// A device's roll-up mark: days from `from_ms`'s on need computing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirty {
    pub device_id: i64,
    pub from_ms: i64,
    pub version: i64,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reports, timelines and outages.
    Read,
    /// As `Read`, plus listing and revoking devices.
    Admin,
}

impl Role {
    pub const VALID: &'static str = "read, admin";

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level of the hierarchy a branch can be cut at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Division,
    District,
    Upazila,
    Office,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Division,
        Level::District,
        Level::Upazila,
        Level::Office,
    ];

    /// The word used in the database, query parameters and flags (`--office`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Division => "division",
            Level::District => "district",
            Level::Upazila => "upazila",
            Level::Office => "office",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The branch of this level an office belongs to (its canonical name).
    pub fn name_of(self, o: &Office) -> String {
        match self {
            Level::Division => o.division.clone(),
            Level::District => format!("{} / {}", o.division, o.district),
            Level::Upazila => format!("{} / {} / {}", o.division, o.district, o.upazila),
            Level::Office => o.code.clone(),
        }
    }

    /// The last part of the name alone (`Savar` for an upazila).
    pub(crate) fn short_of(self, o: &Office) -> &str {
        match self {
            Level::Division => &o.division,
            Level::District => &o.district,
            Level::Upazila => &o.upazila,
            Level::Office => &o.code,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One branch of the hierarchy: everything under a division, district,
/// upazila or office. `name` is canonical (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Branch {
    pub level: Level,
    pub name: String,
}

impl Branch {
    /// Is the office inside this branch?
    pub fn contains(&self, o: &Office) -> bool {
        self.level.name_of(o) == self.name
    }

    /// Is the device inside this branch? A device attached to no office (or
    /// to an office no longer known) is inside no branch.
    pub fn contains_device(&self, d: &Device, offices: &BTreeMap<String, Office>) -> bool {
        d.office
            .as_ref()
            .and_then(|c| offices.get(c))
            .is_some_and(|o| self.contains(o))
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.level, self.name)
    }
}
