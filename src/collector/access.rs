//! Who may read what: the pure rules that resolve a branch of the hierarchy
//! a token or a report can be limited to, and what a token may see (the
//! roles, levels and branches themselves are in [`crate::collector::model`],
//! re-exported here). The store keeps tokens (see
//! [`crate::collector::model::ApiToken`]); the read API
//! ([`crate::collector::http`]) asks this module what a token may see.
//!
//! A branch is named as reports name their groups: a division by its name, a
//! district as `Division / District`, an upazila as
//! `Division / District / Upazila` (their names repeat across the country),
//! an office by its code. [`resolve_branch`] also takes a bare district or
//! upazila name when it is unique, and matches names without regard to case.

pub use crate::collector::model::{Branch, Level, Role};
use crate::collector::model::{Device, Office};
use std::collections::{BTreeMap, BTreeSet};

/// A branch name that names no branch (or more than one). `level` tells
/// which flag or parameter was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BranchError {
    pub level: Level,
    pub message: String,
}

/// Normalise for comparison: trimmed, lowercase, spaces around `/` ignored.
fn norm(s: &str) -> String {
    s.split('/')
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("/")
        .to_lowercase()
}

/// The branch `text` names at `level` among `offices`: its canonical name, a
/// bare district or upazila name when only one has it, any case.
pub fn resolve_branch(level: Level, text: &str, offices: &[Office]) -> Result<Branch, BranchError> {
    let err = |message: String| BranchError { level, message };
    let wanted = norm(text);
    if wanted.is_empty() {
        return Err(err(format!("`{level}` is empty")));
    }
    let exact: BTreeSet<String> = offices
        .iter()
        .map(|o| level.name_of(o))
        .filter(|n| norm(n) == wanted)
        .collect();
    let found: BTreeSet<String> = if exact.is_empty() && !text.contains('/') {
        offices
            .iter()
            .filter(|o| norm(level.short_of(o)) == wanted)
            .map(|o| level.name_of(o))
            .collect()
    } else {
        exact
    };
    let mut it = found.into_iter();
    match (it.next(), it.next()) {
        (Some(name), None) => Ok(Branch { level, name }),
        (None, _) => Err(err(format!(
            "unknown {level} `{}`{}",
            text.trim(),
            match level {
                Level::Office => " (office codes: see the imported hierarchy)",
                Level::Division => "",
                Level::District => " (write `Division / District`)",
                Level::Upazila => " (write `Division / District / Upazila`)",
            }
        ))),
        (Some(a), Some(b)) => {
            let more: Vec<String> = [a, b].into_iter().chain(it).collect();
            Err(err(format!(
                "{level} `{}` is ambiguous: say which of {}",
                text.trim(),
                more.iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

/// What the bearer of an API token may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The token's name (for logs).
    pub token: String,
    pub role: Role,
    /// `None`: the whole hierarchy, and devices attached to no office.
    pub branch: Option<Branch>,
}

impl Access {
    /// May this token see the device?
    pub fn sees(&self, d: &Device, offices: &BTreeMap<String, Office>) -> bool {
        self.branch
            .as_ref()
            .is_none_or(|b| b.contains_device(d, offices))
    }

    /// The offices this token may see.
    pub fn visible_offices(&self, offices: &[Office]) -> Vec<Office> {
        offices
            .iter()
            .filter(|o| self.branch.as_ref().is_none_or(|b| b.contains(o)))
            .cloned()
            .collect()
    }
}

/// An API token name: 1 to 128 letters, digits, `.`, `_` and `-`.
pub fn check_token_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err("token name must be 1 to 128 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "token name `{name}` contains {c:?}: use letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(code: &str, div: &str, dist: &str, upa: &str) -> Office {
        Office {
            code: code.into(),
            name: code.to_uppercase(),
            division: div.into(),
            district: dist.into(),
            upazila: upa.into(),
            hours: None,
        }
    }

    fn offices() -> Vec<Office> {
        vec![
            office("dhk-savar", "Dhaka", "Dhaka", "Savar"),
            office("dhk-gazipur", "Dhaka", "Gazipur", "Sadar"),
            office("ctg-sadar", "Chattogram", "Chattogram", "Sadar"),
        ]
    }

    #[test]
    fn branches_resolve_by_canonical_or_unique_short_name() {
        let o = offices();
        let b = resolve_branch(Level::Division, " dhaka ", &o).unwrap();
        assert_eq!(b.name, "Dhaka");
        let b = resolve_branch(Level::District, "Gazipur", &o).unwrap();
        assert_eq!(b.name, "Dhaka / Gazipur");
        let b = resolve_branch(Level::District, "dhaka/dhaka", &o).unwrap();
        assert_eq!(b.name, "Dhaka / Dhaka");
        let e = resolve_branch(Level::Upazila, "Sadar", &o).unwrap_err();
        assert_eq!(e.level, Level::Upazila);
        assert!(e.message.contains("ambiguous"), "{e}");
        assert!(e.message.contains("`Dhaka / Gazipur / Sadar`"), "{e}");
        let b = resolve_branch(Level::Upazila, "Chattogram / Chattogram / Sadar", &o).unwrap();
        assert!(b.contains(&o[2]) && !b.contains(&o[1]));
        let e = resolve_branch(Level::Office, "nowhere", &o).unwrap_err();
        assert_eq!(
            e.message,
            "unknown office `nowhere` (office codes: see the imported hierarchy)"
        );
        assert!(resolve_branch(Level::Division, "  ", &o).is_err());
        assert!(resolve_branch(Level::Division, "Dhaka / Dhaka", &o).is_err());
    }

    #[test]
    fn access_sees_only_its_branch_and_unlimited_sees_all() {
        let o = offices();
        let map: BTreeMap<String, Office> = o.iter().map(|x| (x.code.clone(), x.clone())).collect();
        let dev = |office: Option<&str>| Device {
            id: 1,
            name: "d".into(),
            office: office.map(String::from),
            revoked: false,
            acked: 0,
            created_at_ms: 0,
            seen: Default::default(),
        };
        let limited = Access {
            token: "t".into(),
            role: Role::Read,
            branch: Some(resolve_branch(Level::Division, "Dhaka", &o).unwrap()),
        };
        assert!(limited.sees(&dev(Some("dhk-gazipur")), &map));
        assert!(!limited.sees(&dev(Some("ctg-sadar")), &map));
        assert!(!limited.sees(&dev(None), &map));
        assert!(!limited.sees(&dev(Some("gone")), &map));
        assert_eq!(limited.visible_offices(&o).len(), 2);
        let all = Access {
            branch: None,
            ..limited
        };
        assert!(all.sees(&dev(None), &map));
        assert_eq!(all.visible_offices(&o).len(), 3);
    }

    #[test]
    fn roles_and_names() {
        assert_eq!(Role::parse("Admin"), Some(Role::Admin));
        assert_eq!(Role::parse("write"), None);
        check_token_name("district-it.dhaka_1").unwrap();
        assert!(check_token_name("a b").is_err());
        assert!(check_token_name("").is_err());
    }
}
