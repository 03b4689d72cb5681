use super::*;
use crate::collector::alerts::channels::{SmsEncoding, SmtpTls, WebhookFormat};

fn path() -> &'static Path {
    Path::new("/etc/linkwatch/collector.toml")
}

fn parse(text: &str) -> Result<AlertsConfig, ConfigError> {
    AlertsConfig::parse_toml(text, path(), &BTreeSet::new())
}

/// The key and message of an Invalid error.
fn invalid(text: &str) -> (String, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            key,
            message,
            path: p,
        }) => {
            assert_eq!(p, path());
            (key, message)
        }
        Err(e) => panic!("{text}\nnot an Invalid error: {e}"),
        Ok(_) => panic!("{text}\naccepted"),
    }
}

/// The example of docs/alerts.md.
fn docs_example() -> String {
    let doc = include_str!("../../../../docs/alerts.md");
    let start = doc.find("<!-- example:start -->\n```toml\n").unwrap();
    let rest = &doc[start..];
    let body = &rest[rest.find("```toml\n").unwrap() + 8..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_documented_example_is_valid() {
    let c = parse(&docs_example()).unwrap();
    assert!(c.enabled);
    assert_eq!(c.rules.rules.len(), 6);
    assert_eq!(c.rules.grace_ms, 120_000);
    assert_eq!(c.rules.grouping.wait_ms, 180_000);
    let gw = &c.rules.rules[1];
    assert_eq!(gw.devices, DeviceFilter::Gateways);
    assert_eq!(gw.schedule.to_string(), "always");
    assert_eq!(gw.escalate_after_ms, Some(15 * 60_000));
    assert_eq!(c.rules.rules[2].escalate_after_ms, None);
    assert_eq!(c.rules.rules[2].after_ms, 4 * 3_600_000);
    assert_eq!(c.rules.rules[3].devices, DeviceFilter::Gateways);
    assert_eq!(c.contacts.len(), 2);
    assert_eq!(c.contacts[1].language, Language::En);
    assert_eq!(c.contacts[0].origin, "alerts.contact[0]");
    match &c.channels["mail"] {
        ChannelSpec::Email(e) => {
            assert_eq!((e.port, e.tls), (587, SmtpTls::StartTls));
            assert_eq!(e.from.email.to_string(), "alerts@example.gov.bd");
        }
        other => panic!("{other:?}"),
    }
    match &c.channels["sms"] {
        ChannelSpec::Sms(s) => {
            assert_eq!(s.encoding, SmsEncoding::Form);
            let (url, body) = s.request("+8801711000000", "অফিস অফলাইন & more");
            assert_eq!(url, "https://sms.example.com.bd/api/send");
            assert_eq!(
                body.unwrap(),
                "api_key=secret&to=%2B8801711000000&message=%E0%A6%85%E0%A6%AB%E0%A6%BF%E0%A6%B8%20%E0%A6%85%E0%A6%AB%E0%A6%B2%E0%A6%BE%E0%A6%87%E0%A6%A8%20%26%20more"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&c.channels["ops"], ChannelSpec::Webhook(w) if w.format == WebhookFormat::Slack)
    );
    assert_eq!(c.channel_needs["sms"], Needs::Phone);
    let ack = c.ack.as_ref().unwrap();
    assert_eq!(ack.ttl_ms, 7 * 86_400_000);
    // Secrets stay out of Debug output.
    let shown = format!("{c:?}");
    for secret in ["secret", "change-me-to-48", "XXXX"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}

#[test]
fn an_empty_section_gets_the_defaults() {
    let c = parse("[alerts]\n").unwrap();
    let kinds: Vec<RuleKind> = c.rules.rules.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RuleKind::Unreachable,
            RuleKind::Failover,
            RuleKind::LinkDown,
            RuleKind::MeteredTraffic
        ]
    );
    assert_eq!(c.rules.rules[0].schedule.to_string(), "office");
    assert_eq!(c.rules.rules[0].devices, DeviceFilter::All);
    assert_eq!(c.rules.rules[2].after_ms, 15 * 60_000);
    assert_eq!(c.rules.rules[0].escalate_after_ms, Some(30 * 60_000));
    assert_eq!(c.rules.upload_interval_ms, 300_000);
    assert_eq!(c.rules.grouping, OfficeGrouping::default());
    assert_eq!(c.outbox.rate_limit, 30);
    assert!(c.ack.is_none() && c.contacts.is_empty() && c.channels.is_empty());
    assert_eq!(c.zone.iana_name(), Some("Asia/Dhaka"));
    // No section at all: the same.
    assert_eq!(parse("").unwrap().rules, c.rules);
}

#[test]
fn holidays_reach_the_rules() {
    let holidays = crate::shared::schedule::parse_holidays("2026-12-16").unwrap();
    let c = AlertsConfig::parse_toml("[alerts]\n", path(), &holidays).unwrap();
    assert_eq!(c.rules.rules[0].schedule.holidays(), holidays);
}

#[test]
fn unknown_keys_are_named() {
    for (text, word) in [
        ("[alerts]\ngrace_period = \"1m\"\n", "grace_period"),
        (
            "[[alerts.rule]]\nname = \"a\"\nkind = \"unreachable\"\nseverity = 1\n",
            "severity",
        ),
        ("[alerts.templates.fr]\nopened = \"x\"\n", "fr"),
        (
            "[alerts.channel.x]\ntype = \"webhook\"\nurl = \"http://127.0.0.1/\"\nheaders = 1\n",
            "headers",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains("collector.toml") && e.contains(word),
            "{text}: {e}"
        );
    }
}

#[test]
fn invalid_values_name_the_key_and_the_fix() {
    let mail = "[alerts.channel.mail]\ntype = \"email\"\nserver = \"smtp.example.gov.bd\"\nfrom = \"a@example.gov.bd\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        ("[alerts]\ninterval = \"0s\"".into(), "alerts.interval", "between 1s and 1h"),
        ("[alerts]\ntime_zone = \"Asia/Dhakka\"".into(), "alerts.time_zone", "Asia/Dhaka"),
        ("[alerts]\nescalate_after = \"soon\"".into(), "alerts.escalate_after", "never"),
        ("[alerts]\nescalate_after = \"10s\"".into(), "alerts.escalate_after", "at least 1m"),
        ("[alerts.office_offline]\nfraction = 1.5".into(), "alerts.office_offline.fraction", "at most 1"),
        ("[alerts.office_offline]\nmin_devices = 1".into(), "alerts.office_offline.min_devices", "at least 2"),
        ("[alerts.office_offline]\nwindow = \"5m\"\nwait = \"6m\"".into(), "alerts.office_offline.wait", "window"),
        ("[alerts.delivery]\njitter = 2.0".into(), "alerts.delivery.jitter", "between 0 and 1"),
        ("[alerts.delivery]\nfirst_retry = \"1m\"\nmax_retry = \"30s\"".into(), "alerts.delivery.max_retry", "first_retry"),
        ("[[alerts.rule]]\nname = \"a b\"\nkind = \"unreachable\"".into(), "alerts.rule[0].name", "letters, digits"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"unreachable\"\n[[alerts.rule]]\nname = \"a\"\nkind = \"failover\"".into(), "alerts.rule[1].name", "already named by rule[0]"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"offline\"".into(), "alerts.rule[0].kind", "unreachable, not_running, failover"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"unreachable\"\nschedule = \"office:Asia/Dhaka:sun-thr\"".into(), "alerts.rule[0].schedule", "`thr` is not a day"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"unreachable\"\ndevices = \"laptops\"".into(), "alerts.rule[0].devices", "all, gateways or officers"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"unreachable\"\nbranch = \"district:Dhaka\"".into(), "alerts.rule[0].branch", "Division / District"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"unreachable\"\nafter = \"5m\"".into(), "alerts.rule[0].after", "alerts.grace"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"not_running\"\nafter = \"5s\"".into(), "alerts.rule[0].after", "at least 1m"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"link_down\"\nafter = \"8days\"".into(), "alerts.rule[0].after", "longer than 7 days"),
        ("[[alerts.rule]]\nname = \"a\"\nkind = \"metered_traffic\"\nafter = \"30days\"".into(), "alerts.rule[0].after", "default \"30m\""),
        ("[alerts]\ngateways = [\"gw 1\"]".into(), "alerts.gateways[0]", "letters, digits"),
        ("[alerts]\ngateways = [\"gw-1\", \"\"]".into(), "alerts.gateways[1]", "1 to"),
        ("[alerts]\ngateways = [\"gw-1\", \"gw-2\", \"gw-1\"]".into(), "alerts.gateways[2]", "listed twice"),
        ("[alerts.channel.x]\ntype = \"pager\"".into(), "alerts.channel.x.type", "webhook, email or sms"),
        ("[alerts.channel.x]\ntype = \"webhook\"".into(), "alerts.channel.x.url", "missing"),
        ("[alerts.channel.x]\ntype = \"webhook\"\nurl = \"ftp://h/\"".into(), "alerts.channel.x.url", "http://"),
        ("[alerts.channel.x]\ntype = \"webhook\"\nurl = \"http://127.0.0.1/\"\nformat = \"discord\"".into(), "alerts.channel.x.format", "json, slack or teams"),
        ("[alerts.channel.x]\ntype = \"webhook\"\nurl = \"http://127.0.0.1/\"\nserver = \"h\"".into(), "alerts.channel.x.server", "not a key of a webhook channel"),
        ("[alerts.channel.x]\ntype = \"webhook\"\nurl = \"http://127.0.0.1/\"\ntimeout = \"1h\"".into(), "alerts.channel.x.timeout", "between 100ms and 5m"),
        ("[alerts.channel.mail]\ntype = \"email\"\nfrom = \"a@example.gov.bd\"".into(), "alerts.channel.mail.server", "missing"),
        ("[alerts.channel.mail]\ntype = \"email\"\nserver = \"smtp.example.gov.bd\"".into(), "alerts.channel.mail.from", "missing"),
        (format!("{mail}from = \"not an address\"").replace("from = \"a@example.gov.bd\"\n", ""), "alerts.channel.mail.from", "not an address"),
        (format!("{mail}tls = \"none\""), "alerts.channel.mail.tls", "unencrypted"),
        (format!("{mail}tls = \"ssl\""), "alerts.channel.mail.tls", "starttls"),
        (format!("{mail}username = \"u\""), "alerts.channel.mail.password", "both"),
        (format!("{mail}ca_file = \"/nonexistent/ca.pem\""), "alerts.channel.mail.ca_file", "cannot read /nonexistent/ca.pem"),
        ("[alerts.channel.sms]\ntype = \"sms\"\nurl = \"http://127.0.0.1/send?to={to}\"".into(), "alerts.channel.sms.url", "{message} appears nowhere"),
        ("[alerts.channel.sms]\ntype = \"sms\"\nurl = \"http://127.0.0.1/send?to={to}&text={text}\"".into(), "alerts.channel.sms.url", "unknown placeholder `{text}`"),
        ("[alerts.channel.sms]\ntype = \"sms\"\nurl = \"http://127.0.0.1/send\"\nmethod = \"get\"\nbody = \"to={to}&m={message}\"".into(), "alerts.channel.sms.body", "GET has no body"),
        ("[alerts.channel.sms]\ntype = \"sms\"\nurl = \"http://127.0.0.1/send\"\nbody = \"{\\\"to\\\": \\\"{to}\\\"}\"\nencoding = \"json\"".into(), "alerts.channel.sms.body", "placeholder"),
        ("[alerts.channel.sms]\ntype = \"sms\"\nurl = \"http://127.0.0.1/s?k={api_key}&to={to}&m={message}\"".into(), "alerts.channel.sms.api_key", "not set"),
        ("[alerts.channel.sms]\ntype = \"sms\"\nurl = \"http://127.0.0.1/s?to={to}&m={message}\"\nencoding = \"xml\"".into(), "alerts.channel.sms.encoding", "form or json"),
        ("[alerts.templates.bn]\nopened = \"{who} {kothay}\"".into(), "alerts.templates.bn.opened", "unknown placeholder `{kothay}`"),
        ("[alerts.templates.en]\nrecovered = \"back {who\"".into(), "alerts.templates.en.recovered", "unclosed"),
        ("[[alerts.contact]]\nname = \"a\"\nbranch = \"office:x\"\nchannels = [\"mail\"]".into(), "alerts.contact[0].channels", "channel `mail`, which is not defined"),
        (format!("{mail}[[alerts.contact]]\nname = \"a\"\nbranch = \"office:x\"\nchannels = [\"mail\"]"), "alerts.contact[0].channels", "has no email"),
        ("[[alerts.contact]]\nname = \"a\"\nbranch = \"office:x\"\nlanguage = \"hi\"\nchannels = [\"x\"]".into(), "alerts.contact[0].language", "bn or en"),
        ("[[alerts.contact]]\nname = \"a\"\nbranch = \"x\"\nchannels = [\"x\"]".into(), "alerts.contact[0].branch", "names no level"),
        ("[alerts]\nack_key = \"short\"\nack_url = \"https://x.example/ack\"".into(), "alerts.ack_key", "at least 32"),
        ("[alerts]\nack_key = \"0123456789abcdef0123456789abcdef\"".into(), "alerts.ack_url", "ack_url is not"),
        ("[alerts]\nack_url = \"https://x.example/ack\"".into(), "alerts.ack_key", "no key signs"),
        ("[alerts]\nack_key = \"0123456789abcdef0123456789abcdef\"\nack_url = \"x.example/ack\"".into(), "alerts.ack_url", "http(s) URL"),
        ("[alerts]\nack_key = \"0123456789abcdef0123456789abcdef\"\nack_key_file = \"/k\"".into(), "alerts.ack_key_file", "keep one"),
        ("[alerts]\ncontacts_file = \"/nonexistent/contacts.csv\"".into(), "alerts.contacts_file", "cannot read /nonexistent/contacts.csv"),
    ];
    for (text, key, fix) in cases {
        let (k, m) = invalid(&text);
        assert_eq!(k, key, "{text}\n{m}");
        assert!(m.contains(fix), "{text}\n{key}: {m}\nwant: {fix}");
    }
}

#[test]
fn contacts_file_errors_name_the_file_and_line_and_duplicates_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("contacts.csv");
    std::fs::write(
        &f,
        "name,branch,email,channels\nA,office:x,a@example.gov.bd,mail\nB,office:y,b@,mail\n",
    )
    .unwrap();
    let mail = "[alerts.channel.mail]\ntype = \"email\"\nserver = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@example.gov.bd\"\n";
    let text = format!(
        "[alerts]\ncontacts_file = {:?}\n{mail}",
        f.display().to_string()
    );
    let (k, m) = invalid(&text);
    assert_eq!(k, "alerts.contacts_file");
    assert!(
        m.contains(&format!("{}:3: column 3 (email)", f.display())),
        "{m}"
    );
    std::fs::write(
        &f,
        "name,branch,email,channels\nA,office:x,a@example.gov.bd,mail\n",
    )
    .unwrap();
    let c = parse(&text).unwrap();
    assert_eq!(c.contacts[0].origin, format!("{}:2", f.display()));
    // The same name inline and in the file.
    let dup = format!(
        "{text}[[alerts.contact]]\nname = \"a\"\nbranch = \"ministry\"\nemail = \"x@example.gov.bd\"\nchannels = [\"mail\"]\n"
    );
    let (k, m) = invalid(&dup);
    assert_eq!(k, "alerts.contacts_file");
    assert!(m.contains("already defined at alerts.contact[0]"), "{m}");
    // A file contact whose channel is unknown.
    std::fs::write(&f, "name,branch,channels\nA,office:x,pager\n").unwrap();
    let (k, m) = invalid(&text);
    assert_eq!(k, "alerts.contacts_file");
    assert!(m.contains(":2: contact `A` uses channel `pager`"), "{m}");
    // An ack key from a file (trailing newline ignored), never shown.
    let kf = dir.path().join("ack.key");
    std::fs::write(&kf, "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\n").unwrap();
    let c = parse(&format!(
        "[alerts]\nack_key_file = {:?}\nack_url = \"https://lw.example.gov.bd/ack\"\n",
        kf.display().to_string()
    ))
    .unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t"));
    let link = c.ack.as_ref().unwrap().link(5, 1_796_000_000_000);
    let manual = AckKey::new(*b"s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t").unwrap();
    let token = link.split("t=").nth(1).unwrap();
    assert_eq!(manual.verify(token, 1_796_000_000_000), Ok(5));
}
