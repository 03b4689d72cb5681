//! Who is told: contacts per branch of the hierarchy (office, upazila,
//! district, division, ministry), each with a language and channels, read
//! from the configuration or from a CSV/TOML file like the hierarchy (errors
//! name the file and the line or key); and the pure routing that says which
//! contacts get an alert at which escalation level.

use crate::collector::alerts::model::RouteLevel;
use crate::collector::alerts::rules::BranchSpec;
use crate::collector::model::Office;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// The language of a contact's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Bangla (Bangla digits too).
    #[default]
    Bn,
    En,
}

impl Language {
    pub fn parse(s: &str) -> Option<Language> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bn" | "bangla" | "bengali" => Some(Language::Bn),
            "en" | "english" => Some(Language::En),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Bn => "bn",
            Language::En => "en",
        }
    }
}

/// One person or group to tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Unique name (who acknowledged, who was told).
    pub name: String,
    /// The branch it answers for (its level is its escalation level).
    pub branch: BranchSpec,
    pub language: Language,
    /// For e-mail channels.
    pub email: Option<String>,
    /// For SMS channels (digits, optionally a leading `+`).
    pub phone: Option<String>,
    /// Names of `[alerts.channel.NAME]` tables to reach it by.
    pub channels: Vec<String>,
    /// Where it was written (`contacts.csv:4`, `alerts.contact[2]`), for messages.
    #[serde(skip)]
    pub origin: String,
}

/// A contact as written in TOML (`[[contact]]` in a file, `[[alerts.contact]]`
/// in the collector configuration).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactEntry {
    pub name: String,
    pub branch: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub channels: Vec<String>,
}

/// The CSV header (any order; `language`, `email`, `phone` may be left out).
pub const CSV_COLUMNS: [&str; 6] = ["name", "branch", "language", "email", "phone", "channels"];

impl ContactEntry {
    /// Check and convert; the error is the field and what is wrong.
    pub fn check(&self, origin: String) -> Result<Contact, (&'static str, String)> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(("name", "must be 1 to 128 printable characters".into()));
        }
        let branch = BranchSpec::parse(&self.branch).map_err(|m| ("branch", m))?;
        let language = match self.language.as_deref().map(str::trim) {
            None | Some("") => Language::default(),
            Some(l) => Language::parse(l)
                .ok_or_else(|| ("language", format!("unknown language `{l}`: use bn or en")))?,
        };
        let email = non_empty(&self.email);
        if let Some(e) = &email
            && e.parse::<lettre::Address>().is_err()
        {
            return Err((
                "email",
                format!("`{e}` is not an e-mail address (name@example.gov.bd)"),
            ));
        }
        let phone = non_empty(&self.phone);
        if let Some(p) = &phone {
            let digits = p.strip_prefix('+').unwrap_or(p);
            if !(6..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err((
                    "phone",
                    format!(
                        "`{p}` is not a phone number: 6 to 15 digits, optionally a leading + (+8801711000000)"
                    ),
                ));
            }
        }
        let channels: Vec<String> = self
            .channels
            .iter()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        if channels.is_empty() {
            return Err((
                "channels",
                "no channel: name at least one [alerts.channel.NAME] to reach this contact by"
                    .into(),
            ));
        }
        Ok(Contact {
            name: name.to_string(),
            branch,
            language,
            email,
            phone,
            channels,
            origin,
        })
    }
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Check entries written as TOML tables, named `{key}[i]`
/// (`alerts.contact[2]`; each contact's origin is `{origin}{key}[i]`). The
/// error is the key (`alerts.contact[2].email`) and the message.
pub fn check_entries(
    entries: &[ContactEntry],
    key: &str,
    origin: &str,
) -> Result<Vec<Contact>, (String, String)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let c = e
            .check(format!("{origin}{key}[{i}]"))
            .map_err(|(f, m)| (format!("{key}[{i}].{f}"), m))?;
        if let Some(first) = seen.insert(c.name.to_lowercase(), i) {
            return Err((
                format!("{key}[{i}].name"),
                format!("contact `{}` already named by {key}[{first}]", c.name),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// The contacts, and who hears of what.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    pub contacts: Vec<Contact>,
}

impl Routing {
    pub fn new(contacts: Vec<Contact>) -> Routing {
        Routing { contacts }
    }

    /// The levels that have a contact for a subject in `office` (`None`:
    /// attached to no office: the ministry only), lowest first.
    pub fn levels(&self, office: Option<&Office>) -> Vec<RouteLevel> {
        let set: BTreeSet<RouteLevel> = self
            .contacts
            .iter()
            .filter(|c| c.branch.contains(office))
            .map(|c| c.branch.level)
            .collect();
        set.into_iter().collect()
    }

    /// The level a new alert is told at: the lowest with a contact
    /// (`Office` when there is none: nobody is told, and the caller logs it).
    pub fn first_level(&self, office: Option<&Office>) -> RouteLevel {
        self.levels(office)
            .first()
            .copied()
            .unwrap_or(RouteLevel::Office)
    }

    /// The level an escalation from `level` goes to: the next one up with a
    /// contact, if any.
    pub fn next_level(&self, office: Option<&Office>, level: RouteLevel) -> Option<RouteLevel> {
        self.levels(office).into_iter().find(|l| *l > level)
    }

    /// Every level told up to and including `level` (a recovery goes to all).
    pub fn told_up_to(&self, office: Option<&Office>, level: RouteLevel) -> Vec<RouteLevel> {
        self.levels(office)
            .into_iter()
            .filter(|l| *l <= level)
            .collect()
    }

    /// The contacts of `levels` for a subject in `office`, in file order.
    pub fn recipients(&self, office: Option<&Office>, levels: &[RouteLevel]) -> Vec<&Contact> {
        self.contacts
            .iter()
            .filter(|c| levels.contains(&c.branch.level) && c.branch.contains(office))
            .collect()
    }

    /// Contacts whose branch holds none of `offices` (a typo, most likely):
    /// log them at start.
    pub fn unmatched<'a>(&'a self, offices: &[Office]) -> Vec<&'a Contact> {
        self.contacts
            .iter()
            .filter(|c| {
                c.branch.level != RouteLevel::Ministry
                    && !offices.iter().any(|o| c.branch.contains(Some(o)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
