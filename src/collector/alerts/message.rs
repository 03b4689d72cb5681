//! Messages: short texts in Bangla or English (Bangla digits in Bangla),
//! from templates with placeholders (built in, each replaceable in the
//! configuration), saying who, where, since when in local time (the
//! office's zone, Asia/Dhaka by default), which links failed, and after a
//! recovery what really happened.
//!
//! Placeholders: `{what}` (the kind of alert), `{who}` (device, or office
//! name), `{where}` (office, upazila, district), `{since}` and `{at}`
//! (local times of the start and of this notice), `{duration}`, `{links}`,
//! `{members}` (office alerts), `{came_back}` and `{still_silent}` (office
//! recoveries), `{happened}` (what the late data says), `{level}` (the level
//! an escalation went to), `{ack_url}` (the signed acknowledgement link).

use crate::collector::alerts::annotate::{Annotation, Happened};
use crate::collector::alerts::contacts::Language;
use crate::collector::alerts::model::{AlertKind, AlertView, Event, RouteLevel, Subject};
use crate::collector::alerts::template::{Template, raw};
use crate::collector::model::Office;
use crate::shared::schedule::{Schedule, parse_schedule};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::borrow::Cow;

/// Every placeholder a message template may use.
pub const PLACEHOLDERS: [&str; 13] = [
    "what",
    "who",
    "where",
    "since",
    "at",
    "duration",
    "links",
    "members",
    "came_back",
    "still_silent",
    "happened",
    "level",
    "ack_url",
];

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    /// E-mail subject, webhook title.
    pub subject: String,
    /// The message (the whole SMS).
    pub text: String,
}

/// The templates of one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSet {
    pub subject: Template,
    pub opened: Template,
    pub escalated: Template,
    pub recovered: Template,
}

/// Template texts of one language as written in the configuration; `None`
/// keeps the built-in one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateTexts {
    pub subject: Option<String>,
    pub opened: Option<String>,
    pub escalated: Option<String>,
    pub recovered: Option<String>,
}

const EN: [&str; 4] = [
    "[linkwatch] {what}: {who}",
    "{what}: {who}, {where}\nSince {since}.\nLinks down: {links}\nDevices: {members}\nAcknowledge: {ack_url}",
    "Not acknowledged, sent up to the {level}: {what}: {who}, {where}\nSince {since}.\nLinks down: {links}\nDevices: {members}\nAcknowledge: {ack_url}",
    "Resolved: {what}: {who}, {where}\nFrom {since} to {at} ({duration}).\nWhat happened: {happened}\nBack: {came_back}\nStill silent: {still_silent}",
];

const BN: [&str; 4] = [
    "[linkwatch] {what}: {who}",
    "{what}: {who}, {where}\n{since} থেকে।\nবন্ধ লিংক: {links}\nডিভাইস: {members}\nস্বীকার করুন: {ack_url}",
    "স্বীকার করা হয়নি, {level} পর্যায়ে পাঠানো হলো — {what}: {who}, {where}\n{since} থেকে।\nবন্ধ লিংক: {links}\nডিভাইস: {members}\nস্বীকার করুন: {ack_url}",
    "সমাধান হয়েছে — {what}: {who}, {where}\n{since} থেকে {at} পর্যন্ত ({duration})।\nযা ঘটেছিল: {happened}\nফিরে এসেছে: {came_back}\nএখনও নীরব: {still_silent}",
];

impl TemplateSet {
    /// The built-in templates of `lang` with the configured ones in their
    /// place; the error is the field (`opened`) and what is wrong.
    pub fn build(
        lang: Language,
        texts: &TemplateTexts,
    ) -> Result<TemplateSet, (&'static str, String)> {
        let builtin = match lang {
            Language::En => EN,
            Language::Bn => BN,
        };
        let one = |field: &'static str, own: &Option<String>, k: usize| {
            let text = own.as_deref().unwrap_or(builtin[k]);
            if text.trim().is_empty() {
                return Err((
                    field,
                    "is empty: write the message, or leave the key out for the built-in one"
                        .to_string(),
                ));
            }
            Template::parse(text, &PLACEHOLDERS).map_err(|m| (field, m))
        };
        Ok(TemplateSet {
            subject: one("subject", &texts.subject, 0)?,
            opened: one("opened", &texts.opened, 1)?,
            escalated: one("escalated", &texts.escalated, 2)?,
            recovered: one("recovered", &texts.recovered, 3)?,
        })
    }
}

/// Both languages' templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    pub bn: TemplateSet,
    pub en: TemplateSet,
}

impl Default for Templates {
    fn default() -> Self {
        let none = TemplateTexts::default();
        Templates {
            bn: TemplateSet::build(Language::Bn, &none).expect("built-in Bangla templates parse"),
            en: TemplateSet::build(Language::En, &none).expect("built-in English templates parse"),
        }
    }
}

impl Templates {
    pub fn get(&self, lang: Language) -> &TemplateSet {
        match lang {
            Language::Bn => &self.bn,
            Language::En => &self.en,
        }
    }

    /// The message of one notice for one contact's language. `office` is
    /// the subject's office (names and time zone), `zone` the default zone.
    pub fn render(
        &self,
        lang: Language,
        event: Event,
        view: &AlertView,
        office: Option<&Office>,
        zone: &TimeZone,
        ack_url: Option<&str>,
    ) -> Rendered {
        let set = self.get(lang);
        let tz = office_zone(office).unwrap_or_else(|| zone.clone());
        let value = |name: &str| -> Cow<'static, str> {
            Cow::Owned(placeholder(name, lang, view, office, &tz, ack_url))
        };
        let body = match event {
            Event::Opened => &set.opened,
            Event::Escalated => &set.escalated,
            Event::Recovered => &set.recovered,
        };
        Rendered {
            subject: set.subject.render(value, raw).replace('\n', " "),
            text: body.render(value, raw),
        }
    }
}

/// The time zone of an office's own hours, if it has them.
pub fn office_zone(office: Option<&Office>) -> Option<TimeZone> {
    let hours = office?.hours.as_deref()?;
    match parse_schedule(hours).ok()? {
        Schedule::OfficeHours { tz, .. } => Some(tz),
        _ => None,
    }
}

fn placeholder(
    name: &str,
    lang: Language,
    v: &AlertView,
    office: Option<&Office>,
    tz: &TimeZone,
    ack_url: Option<&str>,
) -> String {
    let bn = lang == Language::Bn;
    let digits = |s: String| if bn { bangla_digits(&s) } else { s };
    match name {
        "what" => kind_name(v.kind, lang).to_string(),
        "who" => match &v.key.subject {
            Subject::Device { device } => device.clone(),
            Subject::Link { device, link } => format!("{device} ({link})"),
            Subject::Office { office: code } => office.map_or(code.clone(), |o| o.name.clone()),
        },
        "where" => match office {
            Some(o) if matches!(v.key.subject, Subject::Office { .. }) => {
                format!("{}, {}", o.upazila, o.district)
            }
            Some(o) => format!("{}, {}, {}", o.name, o.upazila, o.district),
            None => v.office.clone().unwrap_or_default(),
        },
        "since" => local_time(v.since_ms, v.at_ms, tz, lang),
        "at" => local_time(v.at_ms, v.at_ms, tz, lang),
        "duration" => duration(v.at_ms - v.since_ms, lang),
        "links" => v.links.join(", "),
        "members" if v.members.is_empty() => String::new(),
        "members" => {
            let n = digits(v.members.len().to_string());
            let names = short_list(&v.members, lang);
            if bn {
                format!("{n}টি ({names})")
            } else {
                format!("{n} ({names})")
            }
        }
        "came_back" => short_list(&v.came_back, lang),
        "still_silent" => short_list(&v.still_silent, lang),
        "happened" => v
            .annotation
            .as_ref()
            .map(|a| happened(a, v.at_ms, tz, lang))
            .unwrap_or_default(),
        "level" => level_name(v.level, lang),
        "ack_url" => ack_url.unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

pub fn kind_name(kind: AlertKind, lang: Language) -> &'static str {
    match (lang, kind) {
        (Language::En, AlertKind::Unreachable) => "Unreachable",
        (Language::En, AlertKind::OfficeOffline) => "Office offline",
        (Language::En, AlertKind::NotRunning) => "Not running",
        (Language::En, AlertKind::Failover) => "On a backup link",
        (Language::En, AlertKind::LinkDown) => "Link down",
        (Language::En, AlertKind::MeteredTraffic) => "On mobile data",
        (Language::Bn, AlertKind::Unreachable) => "যোগাযোগ বিচ্ছিন্ন",
        (Language::Bn, AlertKind::OfficeOffline) => "অফিস অফলাইন",
        (Language::Bn, AlertKind::NotRunning) => "চালু নেই",
        (Language::Bn, AlertKind::Failover) => "ব্যাকআপ লিংকে চলছে",
        (Language::Bn, AlertKind::LinkDown) => "লিংক বন্ধ",
        (Language::Bn, AlertKind::MeteredTraffic) => "মোবাইল ডেটায় চলছে",
    }
}

pub fn level_name(level: RouteLevel, lang: Language) -> String {
    match lang {
        Language::En => level.as_str().to_string(),
        Language::Bn => match level {
            RouteLevel::Office => "অফিস",
            RouteLevel::Upazila => "উপজেলা",
            RouteLevel::District => "জেলা",
            RouteLevel::Division => "বিভাগ",
            RouteLevel::Ministry => "মন্ত্রণালয়",
        }
        .to_string(),
    }
}

/// ASCII digits as Bangla digits (০-৯); everything else as it is.
pub fn bangla_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) if c.is_ascii_digit() => char::from_u32('০' as u32 + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `10:02` on the local day of `today_ms`, else `29 Nov 10:02` (English)
/// or `২৯/১১ ১০:০২` (Bangla).
pub fn local_time(ms: i64, today_ms: i64, tz: &TimeZone, lang: Language) -> String {
    let (Ok(t), Ok(today)) = (
        Timestamp::from_millisecond(ms),
        Timestamp::from_millisecond(today_ms),
    ) else {
        return String::new();
    };
    let z = t.to_zoned_datetime(tz.clone());
    let same_day = z.date() == today.to_zoned_datetime(tz.clone()).date();
    let hm = format!("{:02}:{:02}", z.hour(), z.minute());
    match (lang, same_day) {
        (Language::En, true) => hm,
        (Language::En, false) => format!(
            "{} {} {hm}",
            z.day(),
            MONTHS[(z.month() as usize).clamp(1, 12) - 1]
        ),
        (Language::Bn, true) => bangla_digits(&hm),
        (Language::Bn, false) => bangla_digits(&format!("{:02}/{:02} {hm}", z.day(), z.month())),
    }
}

/// `45 min`, `2 h 5 min`, `3 d 4 h` (Bangla: `৪৫ মিনিট`, `২ ঘণ্টা ৫ মিনিট`).
pub fn duration(ms: i64, lang: Language) -> String {
    let min = ms.max(0) / 60_000;
    let (d, h, m) = (min / 1440, min / 60 % 24, min % 60);
    let (ud, uh, um) = match lang {
        Language::En => ("d", "h", "min"),
        Language::Bn => ("দিন", "ঘণ্টা", "মিনিট"),
    };
    let s = if d > 0 {
        format!("{d} {ud} {h} {uh}")
    } else if h > 0 {
        format!("{h} {uh} {m} {um}")
    } else {
        format!("{m} {um}")
    };
    match lang {
        Language::En => s,
        Language::Bn => bangla_digits(&s),
    }
}

/// Up to six names, then how many more.
fn short_list(names: &[String], lang: Language) -> String {
    const SHOWN: usize = 6;
    let mut s = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let more = names.len() - SHOWN;
        s += &match lang {
            Language::En => format!(" and {more} more"),
            Language::Bn => format!(" ও আরও {}টি", bangla_digits(&more.to_string())),
        };
    }
    s
}

/// The annotation as one sentence.
pub fn happened(a: &Annotation, today_ms: i64, tz: &TimeZone, lang: Language) -> String {
    if a.is_empty() {
        return match lang {
            Language::En => "online all along (only the uploads failed)".into(),
            Language::Bn => "পুরো সময় অনলাইন ছিল (শুধু আপলোড ব্যর্থ)".into(),
        };
    }
    let parts: Vec<String> = a
        .spans
        .iter()
        .map(|s| {
            let from = local_time(s.start_ms, today_ms, tz, lang);
            let to = local_time(s.end_ms, today_ms, tz, lang);
            let links = if s.links.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.links.join(", "))
            };
            match lang {
                Language::En => {
                    let what = match s.what {
                        Happened::AllLinksDown => "all links down",
                        Happened::PoweredOff => "powered off",
                        Happened::AgentStopped => "agent stopped",
                        Happened::Asleep => "asleep",
                        Happened::NoData => "no data",
                    };
                    format!("{what} from {from} to {to}{links}")
                }
                Language::Bn => {
                    let what = match s.what {
                        Happened::AllLinksDown => "সব লিংক বন্ধ",
                        Happened::PoweredOff => "ডিভাইস বন্ধ",
                        Happened::AgentStopped => "এজেন্ট থামানো",
                        Happened::Asleep => "ডিভাইস স্লিপে",
                        Happened::NoData => "তথ্য নেই",
                    };
                    format!("{from} থেকে {to} পর্যন্ত {what}{links}")
                }
            }
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests;
