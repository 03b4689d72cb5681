//! The dashboard's two languages: English and Bangla (per user), the words
//! of its pages, Bangla digits where the language is Bangla, and times in
//! Asia/Dhaka. Pure.

/// A dashboard language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Bn,
}

impl Lang {
    /// `en` or `bn`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "bn" => Some(Lang::Bn),
            _ => None,
        }
    }
    /// The stored and `lang` attribute spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Bn => "bn",
        }
    }
    /// The other language (what the switch offers).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Bn,
            Lang::Bn => Lang::En,
        }
    }
}

/// Every word of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Title,
    SignIn,
    UserName,
    Password,
    SignOut,
    BadSignIn,
    TooMany,
    Expired,
    Fleet,
    Online,
    Offline,
    NotRunning,
    Silent,
    NoData,
    Total,
    Division,
    District,
    Upazila,
    Office,
    Device,
    NoOffice,
    LastSeen,
    AgentVersion,
    Os,
    Host,
    Links,
    Link,
    State,
    Since,
    Timeline,
    PrevDay,
    NextDay,
    Page,
    Prev,
    Next,
    NotFound,
    BadRequest,
    Unknown,
    Never,
    TimesIn,
    LangName,
    Up,
    Degraded,
    Down,
    Absent,
    Whole,
    WorstOffices,
    Making,
    OfficeHours,
    NoFigures,
    Devices,
    Uptime,
    OpenAlerts,
    Alert,
    Subject,
    Acknowledged,
    Yes,
    No,
    Unreachable,
    OfficeOffline,
    Failover,
    LinkDown,
    MeteredTraffic,
    Search,
    Matches,
    NoMatches,
    Outages,
    NoOutages,
    Start,
    End,
    Duration,
    Cause,
    AllLinksDown,
    DeviceOff,
    Failovers,
    NoFailovers,
    FromLink,
    ToLink,
    Reason,
    Rtt,
    Loss,
    Probes,
    OnADay,
    Users,
    AddUser,
    Remove,
    Role,
    RoleAdmin,
    RoleRead,
    Branch,
    BranchName,
    Language,
    Created,
    SetPassword,
    Day,
    Week,
    Month,
    Reports,
    MeetsTarget,
    Longest,
    Today,
    Last7,
    Last24h,
    Backlog,
    BacklogNone,
    BacklogRecords,
    Oldest,
    Last30,
    UpToNow,
    ThisMonth,
    LastMonth,
    Always,
    FromDay,
    UntilDay,
    GroupBy,
    Schedule,
    Target,
    Show,
    Rows,
    DownloadCsv,
    SameAsApi,
    LinkChanges,
    NoLink,
    CountedFailovers,
    MadeAt,
}

/// `t` in `lang`.
pub fn tr(lang: Lang, t: T) -> &'static str {
    let (en, bn) = match t {
        T::Title => ("linkwatch", "লিংকওয়াচ"),
        T::SignIn => ("Sign in", "সাইন ইন"),
        T::UserName => ("User name", "ব্যবহারকারীর নাম"),
        T::Password => ("Password", "পাসওয়ার্ড"),
        T::SignOut => ("Sign out", "সাইন আউট"),
        T::BadSignIn => (
            "Sign-in failed: check the user name and password.",
            "সাইন ইন হয়নি: নাম ও পাসওয়ার্ড যাচাই করুন।",
        ),
        T::TooMany => (
            "Too many sign-in attempts: wait a few minutes and try again.",
            "অনেকবার সাইন ইনের চেষ্টা হয়েছে: কয়েক মিনিট পরে আবার চেষ্টা করুন।",
        ),
        T::Expired => (
            "Your session has ended: sign in again.",
            "আপনার সেশন শেষ হয়েছে: আবার সাইন ইন করুন।",
        ),
        T::Fleet => ("Fleet now", "এখনকার অবস্থা"),
        T::Online => ("Online", "অনলাইন"),
        T::Offline => ("Offline", "অফলাইন"),
        T::NotRunning => ("Not running", "চালু নেই"),
        T::Silent => ("Silent", "নীরব"),
        T::NoData => ("No data yet", "এখনো তথ্য নেই"),
        T::Total => ("Total", "মোট"),
        T::Division => ("Division", "বিভাগ"),
        T::District => ("District", "জেলা"),
        T::Upazila => ("Upazila", "উপজেলা"),
        T::Office => ("Office", "অফিস"),
        T::Device => ("Device", "ডিভাইস"),
        T::NoOffice => ("(no office)", "(অফিস নেই)"),
        T::LastSeen => ("Last upload", "সর্বশেষ আপলোড"),
        T::AgentVersion => ("Agent version", "এজেন্ট সংস্করণ"),
        T::Os => ("Operating system", "অপারেটিং সিস্টেম"),
        T::Host => ("Host name", "হোস্টের নাম"),
        T::Links => ("Links", "লিংকসমূহ"),
        T::Link => ("Link", "লিংক"),
        T::State => ("State", "অবস্থা"),
        T::Since => ("Since", "থেকে"),
        T::Timeline => ("Timeline", "সময়রেখা"),
        T::PrevDay => ("Previous day", "আগের দিন"),
        T::NextDay => ("Next day", "পরের দিন"),
        T::Page => ("Page", "পৃষ্ঠা"),
        T::Prev => ("Previous", "আগের"),
        T::Next => ("Next", "পরের"),
        T::NotFound => ("Not found.", "পাওয়া যায়নি।"),
        T::BadRequest => ("Bad request", "ভুল অনুরোধ"),
        T::Unknown => ("unknown", "অজানা"),
        T::Never => ("never", "কখনো না"),
        T::TimesIn => ("Times in Asia/Dhaka", "সময় এশিয়া/ঢাকা অনুযায়ী"),
        T::LangName => ("English", "বাংলা"),
        T::Up => ("up", "সচল"),
        T::Degraded => ("degraded", "দুর্বল"),
        T::Down => ("down", "বন্ধ"),
        T::Absent => ("absent", "অনুপস্থিত"),
        T::Whole => ("All offices", "সব অফিস"),
        T::WorstOffices => ("Lowest uptime, last 7 days", "সর্বনিম্ন আপটাইম, গত ৭ দিন"),
        T::Making => (
            "Being computed: reload in a moment.",
            "হিসাব চলছে: একটু পরে আবার খুলুন।",
        ),
        T::OfficeHours => ("office hours", "অফিস সময়"),
        T::NoFigures => ("No figures for these days.", "এই দিনগুলোর কোনো হিসাব নেই।"),
        T::Devices => ("Devices", "ডিভাইস"),
        T::Uptime => ("Uptime", "আপটাইম"),
        T::OpenAlerts => ("Open alerts", "চলমান সতর্কতা"),
        T::Alert => ("Alert", "সতর্কতা"),
        T::Subject => ("About", "বিষয়"),
        T::Acknowledged => ("Acknowledged", "স্বীকৃত"),
        T::Yes => ("yes", "হ্যাঁ"),
        T::No => ("no", "না"),
        T::Unreachable => ("Unreachable", "যোগাযোগহীন"),
        T::OfficeOffline => ("Office offline", "অফিস অফলাইন"),
        T::Failover => ("On a backup link", "বিকল্প লিংকে"),
        T::LinkDown => ("Link down", "লিংক বন্ধ"),
        T::MeteredTraffic => ("On a metered link", "মিটারযুক্ত লিংকে"),
        T::Search => ("Search", "খুঁজুন"),
        T::Users => ("Users", "ব্যবহারকারী"),
        T::AddUser => ("Add a user", "ব্যবহারকারী যোগ করুন"),
        T::Remove => ("Remove", "বাদ দিন"),
        T::Role => ("Role", "ভূমিকা"),
        T::RoleAdmin => ("admin", "প্রশাসক"),
        T::RoleRead => ("viewer", "দর্শক"),
        T::Branch => ("Branch", "শাখা"),
        T::BranchName => ("Branch name (office: its code)", "শাখার নাম (অফিস হলে তার কোড)"),
        T::Language => ("Language", "ভাষা"),
        T::Created => ("Added", "যোগের সময়"),
        T::SetPassword => ("Set a new password", "নতুন পাসওয়ার্ড দিন"),
        T::Day => ("Day", "দিন"),
        T::Week => ("Week", "সপ্তাহ"),
        T::Month => ("30 days", "৩০ দিন"),
        T::Reports => ("Reports", "প্রতিবেদন"),
        T::MeetsTarget => ("Meets target", "লক্ষ্য পূরণ"),
        T::Longest => ("Longest outage", "দীর্ঘতম বিচ্ছিন্নতা"),
        T::Today => ("Today", "আজ"),
        T::Last7 => ("Last 7 days", "গত ৭ দিন"),
        T::Last24h => ("Last 24 hours", "গত ২৪ ঘণ্টা"),
        T::Backlog => (
            "Waiting to send (at the last upload)",
            "পাঠানোর অপেক্ষায় (শেষ আপলোডে)",
        ),
        T::BacklogNone => ("nothing", "কিছু নেই"),
        T::BacklogRecords => ("records", "রেকর্ড"),
        T::Oldest => ("oldest", "সবচেয়ে পুরনোটি"),
        T::Last30 => ("Last 30 days", "গত ৩০ দিন"),
        T::UpToNow => ("Up to now", "এখন পর্যন্ত"),
        T::ThisMonth => ("This month", "এই মাস"),
        T::LastMonth => ("Last month", "গত মাস"),
        T::Always => ("always (24 hours)", "সবসময় (২৪ ঘণ্টা)"),
        T::FromDay => ("From", "শুরুর দিন"),
        T::UntilDay => ("Until (included)", "শেষ দিন (সহ)"),
        T::GroupBy => ("Group by", "যেভাবে ভাগ"),
        T::Schedule => ("Hours counted", "যে সময় গণনা"),
        T::Target => ("Target uptime %", "লক্ষ্য আপটাইম %"),
        T::Show => ("Show", "দেখুন"),
        T::Rows => ("rows", "সারি"),
        T::DownloadCsv => ("Download CSV", "CSV ডাউনলোড"),
        T::SameAsApi => (
            "The same figures as the API's uptime report and `linkwatch report`.",
            "API-র আপটাইম প্রতিবেদন ও `linkwatch report`-এর একই হিসাব।",
        ),
        T::LinkChanges => ("Changes of the link in use", "ব্যবহৃত লিংকের পরিবর্তন"),
        T::NoLink => ("no link", "কোনো লিংক নেই"),
        T::MadeAt => ("Figures as of", "হিসাবের সময়"),
        T::CountedFailovers => (
            "of these are failovers from one link to another, what reports count (within the hours a report counts).",
            "টি এক লিংক থেকে অন্য লিংকে বদল, প্রতিবেদনে যা গণনা হয় (প্রতিবেদনের গণনার সময়ের মধ্যে)।",
        ),
        T::Matches => ("found", "টি পাওয়া গেছে"),
        T::Outages => ("Outages", "বিচ্ছিন্নতা"),
        T::NoOutages => ("No outages in this window.", "এই সময়ে কোনো বিচ্ছিন্নতা নেই।"),
        T::Start => ("Start", "শুরু"),
        T::End => ("End", "শেষ"),
        T::Duration => ("Minutes", "মিনিট"),
        T::Cause => ("Cause", "কারণ"),
        T::AllLinksDown => ("every link down", "সব লিংক বন্ধ"),
        T::DeviceOff => (
            "device off or agent not running",
            "ডিভাইস বন্ধ বা এজেন্ট চালু নেই",
        ),
        T::Failovers => ("Failovers", "লিংক বদল"),
        T::NoFailovers => (
            "The link in use did not change on this day.",
            "এই দিনে ব্যবহৃত লিংক বদলায়নি।",
        ),
        T::FromLink => ("From", "থেকে"),
        T::ToLink => ("To", "যেখানে"),
        T::Reason => ("Reason", "কারণ"),
        T::Rtt => ("RTT, median (ms)", "আরটিটি, মধ্যমা (মি.সে.)"),
        T::Loss => ("Loss", "ক্ষতি"),
        T::Probes => ("Probes", "প্রোব"),
        T::OnADay => (
            "Probe quality and failovers are shown on a day's page.",
            "প্রোবের মান ও লিংক বদল এক দিনের পাতায় দেখানো হয়।",
        ),
        T::NoMatches => (
            "Nothing matches: try part of a name or code.",
            "কিছু মেলেনি: নাম বা কোডের অংশ দিয়ে খুঁজুন।",
        ),
    };
    match lang {
        Lang::En => en,
        Lang::Bn => bn,
    }
}

/// `s` with ASCII digits as Bangla digits when `lang` is Bangla.
pub fn digits(lang: Lang, s: &str) -> String {
    match lang {
        Lang::En => s.to_string(),
        Lang::Bn => s
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(d) => char::from_u32(0x09E6 + d).unwrap_or(c),
                None => c,
            })
            .collect(),
    }
}

/// A whole number in `lang`.
pub fn num(lang: Lang, n: i64) -> String {
    digits(lang, &n.to_string())
}

/// Asia/Dhaka, the zone people read times in.
pub fn dhaka() -> jiff::tz::TimeZone {
    crate::collector::rollup::day_tz()
}

/// The day `now_ms` falls on in Asia/Dhaka.
pub fn today(now_ms: i64) -> jiff::civil::Date {
    jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.to_zoned_datetime(dhaka()).date())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM` in Asia/Dhaka, digits in `lang`.
pub fn time(lang: Lang, ms: i64) -> String {
    let text = jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned_datetime(dhaka())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| ms.to_string());
    digits(lang, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bangla_digits_and_dhaka_times() {
        assert_eq!(num(Lang::Bn, 2026), "২০২৬");
        assert_eq!(num(Lang::En, -15), "-15");
        assert_eq!(digits(Lang::Bn, "a1-9"), "a১-৯");
        // 2026-11-29T04:00:00Z is 10:00 in Dhaka (UTC+6).
        let ms = 1_795_924_800_000;
        assert_eq!(time(Lang::En, ms), "2026-11-29 10:00");
        assert_eq!(time(Lang::Bn, ms), "২০২৬-১১-২৯ ১০:০০");
        assert_eq!(Lang::parse("bn"), Some(Lang::Bn));
        assert_eq!(Lang::parse("fr"), None);
        assert_ne!(tr(Lang::En, T::Online), tr(Lang::Bn, T::Online));
    }
}
