use super::*;
use crate::collector::alerts::contacts_import::{
    load_contacts, parse_contacts_csv, parse_contacts_toml,
};
use std::path::Path;

fn p(name: &str) -> std::path::PathBuf {
    Path::new("/etc/linkwatch").join(name)
}

fn office(code: &str, upazila: &str, district: &str, division: &str) -> Office {
    Office {
        code: code.into(),
        name: code.into(),
        division: division.into(),
        district: district.into(),
        upazila: upazila.into(),
        hours: None,
    }
}

#[test]
fn csv_contacts_with_quotes_bom_and_defaults() {
    let text = "\u{feff}name,branch,language,email,phone,channels\r\n\
                Savar UNO,office:dhk-savar-uno,bn,uno@savar.gov.bd,+8801711000000,mail;sms\r\n\
                \r\n\
                \"DC, Dhaka\",district:Dhaka / Dhaka,en,dc@dhaka.gov.bd,,mail ops-slack\r\n\
                Ministry desk,ministry,,,,ops-slack\r\n";
    let c = parse_contacts_csv(text, &p("contacts.csv")).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].name, "Savar UNO");
    assert_eq!(c[0].branch.to_string(), "office:dhk-savar-uno");
    assert_eq!(c[0].language, Language::Bn);
    assert_eq!(c[0].phone.as_deref(), Some("+8801711000000"));
    assert_eq!(c[0].channels, ["mail", "sms"]);
    assert_eq!(c[0].origin, "/etc/linkwatch/contacts.csv:2");
    assert_eq!(c[1].name, "DC, Dhaka");
    assert_eq!(c[1].branch.level, RouteLevel::District);
    assert_eq!(c[1].phone, None);
    assert_eq!(c[1].channels, ["mail", "ops-slack"]);
    assert_eq!(c[2].branch.level, RouteLevel::Ministry);
    assert_eq!(c[2].language, Language::Bn, "Bangla unless said otherwise");
    // Columns in any order; optional ones left out.
    let c = parse_contacts_csv(
        "channels,branch,name\nhook,division:Rangpur,Rangpur desk\n",
        &p("c.csv"),
    )
    .unwrap();
    assert_eq!(c[0].branch.name, "Rangpur");
}

#[test]
fn csv_errors_name_the_file_line_and_column() {
    let cases = [
        (
            "name,branch,channels,fax\n",
            "/etc/linkwatch/c.csv:1: header column 4: unknown column `fax`",
        ),
        (
            "name,channels\n",
            "/etc/linkwatch/c.csv:1: header: column `branch` is missing",
        ),
        (
            "name,branch,channels\nA,office:x,hook\nB,district:Dhaka,hook\n",
            "/etc/linkwatch/c.csv:3: column 2 (branch): `district:Dhaka`: a district is named by 2 part(s)",
        ),
        (
            "name,branch,channels\nA,zone:x,hook\n",
            "/etc/linkwatch/c.csv:2: column 2 (branch): unknown level `zone`",
        ),
        (
            "name,branch,email,channels\nA,office:x,not-an-address,mail\n",
            "/etc/linkwatch/c.csv:2: column 3 (email): `not-an-address` is not an e-mail address",
        ),
        (
            "name,branch,phone,channels\nA,office:x,01711-000000,sms\n",
            "/etc/linkwatch/c.csv:2: column 3 (phone): `01711-000000` is not a phone number",
        ),
        (
            "name,branch,language,channels\nA,office:x,fr,hook\n",
            "/etc/linkwatch/c.csv:2: column 3 (language): unknown language `fr`: use bn or en",
        ),
        (
            "name,branch,channels\nA,office:x,\n",
            "/etc/linkwatch/c.csv:2: column 3 (channels): no channel",
        ),
        (
            "name,branch,channels\nA,office:x,hook\na,office:y,hook\n",
            "/etc/linkwatch/c.csv:3: column 1 (name): contact `a` already on line 2",
        ),
        (
            "name,branch,channels\nA,office:x\n",
            "/etc/linkwatch/c.csv:2: column 3: 2 fields where the header has 3",
        ),
        ("", "/etc/linkwatch/c.csv: empty file"),
    ];
    for (text, want) in cases {
        let e = parse_contacts_csv(text, &p("c.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "{text:?}:\n got {e}\nwant {want}");
    }
}

#[test]
fn toml_contacts_and_their_errors() {
    let text = r#"
[[contact]]
name = "Savar UNO"
branch = "office:dhk-savar-uno"
language = "en"
email = "uno@savar.gov.bd"
channels = ["mail"]

[[contact]]
name = "Dhaka division"
branch = "division:Dhaka"
phone = "8801711000000"
channels = ["sms"]
"#;
    let c = parse_contacts_toml(text, &p("contacts.toml")).unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].language, Language::Bn);
    assert_eq!(c[1].origin, "/etc/linkwatch/contacts.toml: contact[1]");
    let e = parse_contacts_toml(
        &text.replace("8801711000000", "call me"),
        &p("contacts.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/linkwatch/contacts.toml: contact[1].phone: `call me`"),
        "{e}"
    );
    let e = parse_contacts_toml(
        "[[contact]]\nname = \"x\"\nbranch = \"ministry\"\nchannels = []\nfax = 1\n",
        &p("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("c.toml:") && e.contains("fax"), "{e}");
    let e = load_contacts(&p("contacts.xlsx")).unwrap_err().to_string();
    assert!(
        e.contains("cannot read") || e.contains("unknown file type"),
        "{e}"
    );
}

#[test]
fn load_reads_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("people.CSV");
    std::fs::write(&f, "name,branch,channels\nA,ministry,hook\n").unwrap();
    assert_eq!(load_contacts(&f).unwrap().len(), 1);
    let f = dir.path().join("people.txt");
    std::fs::write(&f, "").unwrap();
    let e = load_contacts(&f).unwrap_err().to_string();
    assert!(e.contains("unknown file type"), "{e}");
}

#[test]
fn routing_follows_the_hierarchy() {
    let c = |name: &str, branch: &str| {
        ContactEntry {
            name: name.into(),
            branch: branch.into(),
            language: None,
            email: None,
            phone: None,
            channels: vec!["hook".into()],
        }
        .check("t".into())
        .unwrap()
    };
    let r = Routing::new(vec![
        c("uno", "office:savar-uno"),
        c("uno-2", "office:SAVAR-UNO"),
        c("uzila", "upazila: dhaka /dhaka/  savar "),
        c("dc", "district:Dhaka / Dhaka"),
        c("rangpur", "division:Rangpur"),
        c("typo", "district:Dhaka / Dhakka"),
        c("all", "ministry"),
    ]);
    let savar = office("savar-uno", "Savar", "Dhaka", "Dhaka");
    let other = office("savar-ac", "Savar", "Dhaka", "Dhaka");
    let pirganj = office("pirganj", "Pirganj", "Rangpur", "Rangpur");
    use RouteLevel::*;
    assert_eq!(
        r.levels(Some(&savar)),
        vec![Office, Upazila, District, Ministry]
    );
    assert_eq!(r.first_level(Some(&savar)), Office);
    assert_eq!(r.first_level(Some(&other)), Upazila);
    assert_eq!(r.next_level(Some(&savar), District), Some(Ministry));
    assert_eq!(r.next_level(Some(&savar), Ministry), None);
    assert_eq!(r.first_level(Some(&pirganj)), Division);
    assert_eq!(r.levels(None), vec![Ministry]);
    let names = |o: Option<&crate::collector::model::Office>, l: &[RouteLevel]| {
        r.recipients(o, l)
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(Some(&savar), &[Office]), ["uno", "uno-2"]);
    assert_eq!(names(Some(&other), &[Office]), Vec::<&str>::new());
    assert_eq!(
        names(Some(&savar), &r.told_up_to(Some(&savar), District)),
        ["uno", "uno-2", "uzila", "dc"]
    );
    assert_eq!(names(None, &[Ministry]), ["all"]);
    let unmatched: Vec<&str> = r
        .unmatched(&[savar, other, pirganj])
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(unmatched, ["typo"]);
}
