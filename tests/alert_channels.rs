//! The alert channels against real receivers on loopback: an HTTP server
//! (axum) standing for webhooks and SMS gateways, and a real SMTP server
//! (Python's aiosmtpd, `tests/fixtures/smtp_server.py`; `tests/run.sh`
//! installs it, and the mail tests skip with a message without it), with
//! STARTTLS, AUTH, and receivers that refuse, answer 5xx/4xx or never
//! answer: every failure comes back as an error saying what happened and
//! whether a retry can help; nothing panics.

mod common;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::alerts::{Smtp, python};
use linkwatch::collector::alerts::Secret;
use linkwatch::collector::alerts::channels::*;
use linkwatch::collector::alerts::contacts::Language;
use linkwatch::collector::alerts::message::{Rendered, Templates};
use linkwatch::collector::alerts::model::*;
use linkwatch::collector::alerts::template::Template;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TEXT: &str = "যোগাযোগ বিচ্ছিন্ন: uno-laptop, Savar UNO office\n১০:০২ থেকে। a&b=c \"q\" 100%";

fn view() -> AlertView {
    AlertView {
        key: AlertKey {
            rule: "unreachable".into(),
            subject: Subject::device("uno-laptop"),
        },
        kind: AlertKind::Unreachable,
        office: Some("dhk-savar-uno".into()),
        since_ms: 1_796_000_000_000,
        at_ms: 1_796_000_420_000,
        links: vec!["eth0".into()],
        members: vec![],
        came_back: vec![],
        still_silent: vec![],
        annotation: None,
        level: RouteLevel::Office,
        escalated_from: None,
    }
}

fn message(key: &str) -> Message {
    Message {
        dedupe_key: key.into(),
        event: Event::Opened,
        language: Language::Bn,
        rendered: Rendered {
            subject: "[linkwatch] যোগাযোগ বিচ্ছিন্ন: uno-laptop".into(),
            text: TEXT.into(),
        },
        ack_url: Some("https://lw.example.gov.bd/ack?t=7.1796604800.sig".into()),
        alert: view(),
    }
}

// ---------------------------------------------------------------------------
// HTTP receiver

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: String,
    auth: Option<String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Recv(Arc<Mutex<Vec<Seen>>>);

async fn receive(State(r): State<Recv>, req: Request) -> impl IntoResponse {
    let (parts, body) = req.into_parts();
    let h = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let seen = Seen {
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        auth: h("authorization"),
        content_type: h("content-type"),
        body: String::new(),
    };
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let seen = Seen {
        body: String::from_utf8_lossy(&body).into_owned(),
        ..seen
    };
    let path = seen.path.clone();
    r.0.lock().unwrap().push(seen);
    match path.as_str() {
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "/bad" => (StatusCode::BAD_REQUEST, "no such hook").into_response(),
        "/busy" => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        "/sms-failed" => (
            StatusCode::OK,
            "{\"status\":\"failed\",\"reason\":\"balance\"}",
        )
            .into_response(),
        _ => (StatusCode::OK, "{\"status\":\"ok\"}").into_response(),
    }
}

async fn http_receiver() -> (SocketAddr, Recv) {
    let recv = Recv::default();
    let app = Router::new().fallback(receive).with_state(recv.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, recv)
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn webhook(url: String, format: WebhookFormat) -> WebhookSender {
    WebhookSender::new(
        "hook",
        WebhookSpec {
            url: Secret::new(url),
            format,
            bearer_token: Some(Secret::new("t0ken")),
            timeout: Duration::from_millis(500),
            proxy: None,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn webhooks_post_json_slack_and_teams_payloads() {
    let (addr, recv) = http_receiver().await;
    for (f, path) in [
        (WebhookFormat::Json, "/json"),
        (WebhookFormat::Slack, "/slack"),
        (WebhookFormat::Teams, "/teams"),
    ] {
        webhook(format!("http://{addr}{path}"), f)
            .send("", &message("7/opened/office/uno/hook"))
            .await
            .unwrap();
    }
    let seen = recv.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.auth.as_deref(), Some("Bearer t0ken"));
        assert_eq!(s.content_type.as_deref(), Some("application/json"));
    }
    let json: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(json["dedupe_key"], "7/opened/office/uno/hook");
    assert_eq!(json["event"], "opened");
    assert_eq!(json["kind"], "unreachable");
    assert_eq!(json["severity"], "alert");
    assert_eq!(json["text"], TEXT);
    assert_eq!(json["alert"]["key"]["subject"]["device"], "uno-laptop");
    assert_eq!(json["alert"]["links"][0], "eth0");
    let slack: Value = serde_json::from_str(&seen[1].body).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with("*[linkwatch] যোগাযোগ বিচ্ছিন্ন: uno-laptop*\n"),
        "{text}"
    );
    assert!(
        text.contains("a&amp;b=c"),
        "Slack's control characters escaped: {text}"
    );
    assert!(text.ends_with("|Acknowledge>"), "{text}");
    let teams: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["body"][1]["text"], TEXT);
    assert_eq!(card["content"]["actions"][0]["type"], "Action.OpenUrl");
}

#[tokio::test]
async fn failing_webhooks_are_reported_never_panic() {
    let (addr, _recv) = http_receiver().await;
    let send = |path: String| async move {
        let t = Instant::now();
        let r = webhook(path, WebhookFormat::Json)
            .send("", &message("k"))
            .await;
        (r.unwrap_err(), t.elapsed())
    };
    // 500: try again later; the URL (it may hold a secret) is not shown.
    let (e, _) = send(format!("http://{addr}/fail?key=S3CRET")).await;
    assert!(!e.permanent);
    assert!(
        e.to_string().contains("500") && e.to_string().contains("boom"),
        "{e}"
    );
    assert!(!e.to_string().contains("S3CRET"), "{e}");
    assert_eq!(e.channel, "hook");
    let (e, _) = send(format!("http://{addr}/busy")).await;
    assert!(!e.permanent, "429 may pass: {e}");
    // 400: the receiver refuses this message for good.
    let (e, _) = send(format!("http://{addr}/bad")).await;
    assert!(e.permanent, "{e}");
    assert!(e.to_string().contains("400"), "{e}");
    // No answer within the timeout.
    let (e, took) = send(format!("http://{addr}/slow?key=S3CRET")).await;
    assert!(!e.permanent);
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(!e.to_string().contains("S3CRET"), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Nobody listening.
    let (e, _) = send(format!("http://127.0.0.1:{}/x", closed_port())).await;
    assert!(!e.permanent);
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

fn sms(url: &str, body: Option<&str>, encoding: SmsEncoding, success: Option<&str>) -> SmsSender {
    let t = |s: &str| Template::parse(s, &SMS_PLACEHOLDERS).unwrap();
    SmsSender::new(
        "sms",
        SmsSpec {
            url: t(url),
            body: body.map(t),
            encoding,
            api_key: Some(Secret::new("k&y=1")),
            success_match: success.map(str::to_string),
            timeout: Duration::from_millis(500),
            proxy: None,
        },
    )
    .unwrap()
}

/// Decode `application/x-www-form-urlencoded` / a query string.
fn form(s: &str) -> Vec<(String, String)> {
    let dec = |v: &str| {
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' => {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

#[tokio::test]
async fn sms_gateways_get_every_value_escaped_for_where_it_goes() {
    let (addr, recv) = http_receiver().await;
    let to = "+8801711000000";
    let want = vec![
        ("key".to_string(), "k&y=1".to_string()),
        ("to".to_string(), to.to_string()),
        ("text".to_string(), TEXT.to_string()),
    ];
    // GET with everything in the URL.
    sms(
        &format!("http://{addr}/get?key={{api_key}}&to={{to}}&text={{message}}"),
        None,
        SmsEncoding::Form,
        Some("\"status\":\"ok\""),
    )
    .send(to, &message("k"))
    .await
    .unwrap();
    // POST, form body.
    sms(
        &format!("http://{addr}/form"),
        Some("key={api_key}&to={to}&text={message}"),
        SmsEncoding::Form,
        None,
    )
    .send(to, &message("k"))
    .await
    .unwrap();
    // POST, JSON body.
    sms(
        &format!("http://{addr}/json"),
        Some("{{\"key\": \"{api_key}\", \"to\": \"{to}\", \"text\": \"{message}\"}}"),
        SmsEncoding::Json,
        None,
    )
    .send(to, &message("k"))
    .await
    .unwrap();
    let seen = recv.0.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/get");
    assert_eq!(form(&seen[0].query), want);
    assert_eq!(
        seen[1].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(form(&seen[1].body), want);
    assert_eq!(seen[2].content_type.as_deref(), Some("application/json"));
    let j: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(j["text"], TEXT);
    assert_eq!(j["key"], "k&y=1");
    // A 200 without the sign of success is a failure, and said so.
    let e = sms(
        &format!("http://{addr}/sms-failed?to={{to}}&m={{message}}"),
        None,
        SmsEncoding::Form,
        Some("\"status\":\"ok\""),
    )
    .send(to, &message("k"))
    .await
    .unwrap_err();
    assert!(!e.permanent);
    assert!(e.to_string().contains("balance"), "{e}");
    // A gateway that times out or is not there.
    let e = sms(
        &format!("http://{addr}/slow?to={{to}}&m={{message}}"),
        None,
        SmsEncoding::Form,
        None,
    )
    .send(to, &message("k"))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    let e = sms(
        &format!(
            "http://127.0.0.1:{}/s?to={{to}}&m={{message}}",
            closed_port()
        ),
        None,
        SmsEncoding::Form,
        None,
    )
    .send(to, &message("k"))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

// ---------------------------------------------------------------------------
// SMTP

fn mail(port: u16, tls: SmtpTls, ca: Option<&str>, auth: bool) -> EmailSender {
    EmailSender::new(
        "mail",
        &EmailSpec {
            server: "127.0.0.1".into(),
            port,
            tls,
            username: auth.then(|| "linkwatch".to_string()),
            password: auth.then(|| Secret::new("pa55")),
            from: "linkwatch <alerts@example.gov.bd>".parse().unwrap(),
            timeout: Duration::from_millis(1500),
            ca_pem: ca.map(str::to_string),
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_out_over_starttls_with_auth_in_bangla() {
    let py = match python() {
        Ok(p) => p,
        Err(why) => return eprintln!("skipping: {why}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let server = Smtp::start(
        &py,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--auth",
            "linkwatch:pa55",
        ],
    );
    let sender = mail(server.port, SmtpTls::StartTls, Some(&ck.cert.pem()), true);
    // The built-in Bangla template, as a contact reading Bangla gets it.
    let rendered = Templates::default().render(
        Language::Bn,
        Event::Opened,
        &view(),
        None,
        &jiff::tz::TimeZone::get("Asia/Dhaka").unwrap(),
        Some("https://lw.example.gov.bd/ack?t=7.1.x"),
    );
    let mut msg = message("7/opened/office/uno/mail");
    msg.rendered = rendered.clone();
    msg.ack_url = Some("https://lw.example.gov.bd/ack?t=7.1.x".into());
    sender.send("uno.savar@example.gov.bd", &msg).await.unwrap();
    let got = server
        .next(Duration::from_secs(10))
        .expect("the mail arrives");
    assert_eq!(got["tls"], true, "upgraded with STARTTLS: {got}");
    assert_eq!(got["login"], "linkwatch");
    assert_eq!(got["mail_from"], "alerts@example.gov.bd");
    assert_eq!(got["rcpt_tos"][0], "uno.savar@example.gov.bd");
    assert_eq!(got["subject"], rendered.subject.as_str());
    assert_eq!(
        got["body"]
            .as_str()
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end(),
        rendered.text
    );
    assert!(got["content_type"].as_str().unwrap().contains("text/plain"));
    // 1796000000 s is 06:53 in Dhaka: Bangla digits.
    assert!(rendered.text.contains("০৬:৫৩ থেকে"), "{}", rendered.text);
    let id = got["message_id"].as_str().unwrap().to_string();
    assert!(id.ends_with("@linkwatch>"), "{id}");
    // Sent again (at least once): the same Message-ID.
    sender.send("uno.savar@example.gov.bd", &msg).await.unwrap();
    let again = server.next(Duration::from_secs(10)).unwrap();
    assert_eq!(again["message_id"], id.as_str());
    // A wrong password is refused (for good), a server whose certificate
    // we do not trust is a TLS failure; neither delivers anything.
    let e = EmailSender::new(
        "mail",
        &EmailSpec {
            password: Some(Secret::new("wrong")),
            ..spec_of(server.port, &ck.cert.pem())
        },
    )
    .unwrap()
    .send("uno.savar@example.gov.bd", &msg)
    .await
    .unwrap_err();
    assert!(e.permanent, "{e}");
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let e = mail(
        server.port,
        SmtpTls::StartTls,
        Some(&other.cert.pem()),
        true,
    )
    .send("uno.savar@example.gov.bd", &msg)
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("TLS") || e.to_string().contains("certificate"),
        "{e}"
    );
    assert!(server.next(Duration::from_millis(500)).is_none());
}

fn spec_of(port: u16, ca: &str) -> EmailSpec {
    EmailSpec {
        server: "127.0.0.1".into(),
        port,
        tls: SmtpTls::StartTls,
        username: Some("linkwatch".into()),
        password: Some(Secret::new("pa55")),
        from: "linkwatch <alerts@example.gov.bd>".parse().unwrap(),
        timeout: Duration::from_millis(1500),
        ca_pem: Some(ca.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_failing_and_silent_mail_servers_are_reported() {
    let py = match python() {
        Ok(p) => p,
        Err(why) => return eprintln!("skipping: {why}"),
    };
    let msg = message("7/opened/office/uno/mail");
    let to = "uno.savar@example.gov.bd";
    // A server without STARTTLS, when STARTTLS is required: nothing sent in clear.
    let plain = Smtp::start(&py, &[]);
    let e = mail(plain.port, SmtpTls::StartTls, None, false)
        .send(to, &msg)
        .await
        .unwrap_err();
    assert!(!e.to_string().is_empty());
    assert!(
        plain.next(Duration::from_millis(500)).is_none(),
        "sent in clear"
    );
    // The same server, unencrypted allowed (a relay on this machine): delivered.
    mail(plain.port, SmtpTls::None, None, false)
        .send(to, &msg)
        .await
        .unwrap();
    assert_eq!(plain.next(Duration::from_secs(10)).unwrap()["tls"], false);
    // 550 to the recipient: refused for good.
    let refuse = Smtp::start(&py, &["--rcpt-code", "550"]);
    let e = mail(refuse.port, SmtpTls::None, None, false)
        .send(to, &msg)
        .await
        .unwrap_err();
    assert!(e.permanent, "{e}");
    assert!(e.to_string().contains("550"), "{e}");
    // 451 to the data: try again later.
    let later = Smtp::start(&py, &["--data-code", "451"]);
    let e = mail(later.port, SmtpTls::None, None, false)
        .send(to, &msg)
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
    assert!(e.to_string().contains("451"), "{e}");
    // Connected, but never a greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let c = silent.accept();
        std::thread::sleep(Duration::from_secs(4));
        drop(c);
    });
    let t = Instant::now();
    let e = mail(port, SmtpTls::None, None, false)
        .send(to, &msg)
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    hold.join().unwrap();
    // Nobody listening.
    let e = mail(closed_port(), SmtpTls::None, None, false)
        .send(to, &msg)
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
}
