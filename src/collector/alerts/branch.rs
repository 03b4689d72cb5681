//! Where alerts are routed: the levels of the hierarchy (office, upazila,
//! district, division, ministry) and a branch of it written `level:name`,
//! with the test of whether an office lies inside a branch. Pure; used by
//! the rules, the contacts, silences and the stored alerts.

use crate::collector::model::Office;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One level of the hierarchy alerts are routed along, lowest first.
/// Escalation goes one level up at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteLevel {
    Office,
    Upazila,
    District,
    Division,
    /// The whole hierarchy (and devices attached to no office).
    Ministry,
}

impl RouteLevel {
    pub const ALL: [RouteLevel; 5] = [
        RouteLevel::Office,
        RouteLevel::Upazila,
        RouteLevel::District,
        RouteLevel::Division,
        RouteLevel::Ministry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteLevel::Office => "office",
            RouteLevel::Upazila => "upazila",
            RouteLevel::District => "district",
            RouteLevel::Division => "division",
            RouteLevel::Ministry => "ministry",
        }
    }

    pub fn parse(s: &str) -> Option<RouteLevel> {
        let s = s.trim().to_ascii_lowercase();
        RouteLevel::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for RouteLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A branch of the hierarchy, written `level:name`: `office:dhk-savar-uno`,
/// `upazila:Dhaka / Dhaka / Savar`, `district:Dhaka / Dhaka`,
/// `division:Dhaka`, or `ministry` (everything, and devices attached to no
/// office). Names are the canonical ones reports use; compared without
/// regard to case or the spaces around `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BranchSpec {
    pub level: RouteLevel,
    /// Empty for the ministry.
    pub name: String,
}

impl BranchSpec {
    pub const HELP: &'static str = "write `office:<code>`, `upazila:<Division / District / Upazila>`, \
         `district:<Division / District>`, `division:<Division>` or `ministry`";

    /// Parse `level:name`; the error says how to write it.
    pub fn parse(text: &str) -> Result<BranchSpec, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("ministry") {
            return Ok(BranchSpec {
                level: RouteLevel::Ministry,
                name: String::new(),
            });
        }
        let Some((level, name)) = text.split_once(':') else {
            return Err(format!("`{text}` names no level: {}", Self::HELP));
        };
        let level = RouteLevel::parse(level)
            .filter(|l| *l != RouteLevel::Ministry)
            .ok_or_else(|| format!("unknown level `{}`: {}", level.trim(), Self::HELP))?;
        let name = norm_spaces(name);
        let parts = name.split('/').count();
        let want = match level {
            RouteLevel::Office | RouteLevel::Division => 1,
            RouteLevel::District => 2,
            RouteLevel::Upazila => 3,
            RouteLevel::Ministry => 0,
        };
        if name.is_empty() || name.split('/').any(|p| p.trim().is_empty()) || parts != want {
            return Err(format!(
                "`{text}`: a {level} is named by {want} part(s) separated by ` / `: {}",
                Self::HELP
            ));
        }
        Ok(BranchSpec { level, name })
    }

    /// Is the office inside this branch? (`None`: a device attached to no
    /// office, inside the ministry only.)
    pub fn contains(&self, office: Option<&Office>) -> bool {
        let Some(o) = office else {
            return self.level == RouteLevel::Ministry;
        };
        let name = match self.level {
            RouteLevel::Ministry => return true,
            RouteLevel::Office => return o.code.eq_ignore_ascii_case(&self.name),
            RouteLevel::Division => o.division.clone(),
            RouteLevel::District => format!("{} / {}", o.division, o.district),
            RouteLevel::Upazila => format!("{} / {} / {}", o.division, o.district, o.upazila),
        };
        norm(&name) == norm(&self.name)
    }
}

impl fmt::Display for BranchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            RouteLevel::Ministry => f.write_str("ministry"),
            l => write!(f, "{l}:{}", self.name),
        }
    }
}

/// Spaces around `/` made one each, inner runs of spaces made one.
fn norm_spaces(s: &str) -> String {
    s.split('/')
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" / ")
        .trim()
        .to_string()
}

fn norm(s: &str) -> String {
    norm_spaces(s).to_lowercase()
}
