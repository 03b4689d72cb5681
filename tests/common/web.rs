//! The dashboard over loopback HTTP for the dashboard tests: the collector's
//! whole router (API and dashboard) on an ephemeral port with the peer's
//! address known, a small browser that keeps cookies and never follows
//! redirects, and readers of what the pages show.

use super::records::Recs;
use linkwatch::collector::access::{Level, Role};
use linkwatch::collector::devices;
use linkwatch::collector::http::{self as api, ApiOptions, ApiState};
use linkwatch::collector::store::{Office, Store, UploadMeta};
use linkwatch::collector::web::{self, WebOptions};
use linkwatch::config::collector::CollectorConfig;
use linkwatch::wire::v1::{Backlog, Body};
use linkwatch::wire::{LinkKind, LinkState};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Every fixture user's password.
pub const PW: &str = "correct horse battery";
const MIN: i64 = 60_000;
/// The Savar office's name: a script.
pub const EVIL_OFFICE: &str = "UNO <script>alert('office')</script>";
/// A device named with HTML (stored by other means than the agent).
pub const EVIL_DEVICE: &str = "<img src=x onerror=alert(1)>";

fn now() -> i64 {
    linkwatch::shared::time::now_ms()
}

pub struct Web {
    pub base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The dashboard's settings as the embedded default config gives them.
pub fn default_options() -> WebOptions {
    WebOptions::for_config(&CollectorConfig::embedded())
}

/// Serve the collector's API and dashboard on `store`.
pub async fn serve(store: Arc<dyn Store>, opts: WebOptions) -> Web {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = CollectorConfig::embedded();
    let state = ApiState::new(
        store,
        ApiOptions {
            max_body_bytes: cfg.collector.max_body_bytes,
            max_inflight: cfg.collector.max_inflight,
            holidays: Default::default(),
        },
    );
    let app = api::router(state.clone()).merge(web::router(state, opts));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Web {
        base: format!("http://{addr}"),
        _stop: tx,
    }
}

/// One answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    /// The value of the first `name="csrf"` field.
    pub fn csrf(&self) -> String {
        between(&self.text, "name=\"csrf\" value=\"", "\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.text))
    }
    /// The text of the page's error line, if any.
    pub fn error(&self) -> Option<String> {
        between(&self.text, "role=\"alert\">", "</p>")
    }
    /// A fleet page's count of `state` (`online`, ..., `total`).
    pub fn count(&self, state: &str) -> String {
        between(&self.text, &format!("data-count=\"{state}\"><b>"), "</b>")
            .unwrap_or_else(|| panic!("no count {state} in {}", self.text))
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// The text between the first `start` and the next `end`.
pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(text[i..j].to_string())
}

/// A client that keeps cookies by name and follows no redirect.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(web: &Web) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: web.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let resp = req.send().await.unwrap();
        let headers = resp.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: resp.status().as_u16(),
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookies,
            headers,
            text: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// POST a form (`application/x-www-form-urlencoded`).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.post_raw(path, body).await
    }

    pub async fn post_raw(&mut self, path: &str, body: String) -> Page {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Open the sign-in page and submit `name` and `password` with its token.
    pub async fn sign_in(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/signin").await;
        assert_eq!(form.status, 200, "{}", form.text);
        let csrf = form.csrf();
        self.post(
            "/signin",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
    }
}

fn office(code: &str, name: &str, div: &str, dist: &str, upa: &str) -> Office {
    Office {
        code: code.into(),
        name: name.into(),
        division: div.into(),
        district: dist.into(),
        upazila: upa.into(),
        hours: None,
    }
}

/// A browser signed in as `name` (a fixture user, password [`PW`]).
pub async fn signed_in(web: &Web, name: &str) -> Browser {
    let mut b = Browser::new(web);
    let p = b.sign_in(name, PW).await;
    assert_eq!(p.status, 303, "{name}: {}", p.text);
    b
}

/// Dhaka / Dhaka / Savar office `dhk-savar` (named with a script) with one
/// device in each state and one named with HTML; Chattogram's `ctg-sadar`
/// with one online device. Users: `admin` (all), `ctg` (viewer of
/// Chattogram), `savar` (viewer of the Savar upazila).
pub async fn load(store: &dyn Store) {
    store
        .upsert_offices(&[
            office("dhk-savar", EVIL_OFFICE, "Dhaka", "Dhaka", "Savar"),
            office(
                "ctg-sadar",
                "UNO Sadar",
                "Chattogram",
                "Chattogram",
                "Sadar",
            ),
        ])
        .await
        .unwrap();
    let t = now();
    let up = |r: &mut Recs, at: i64| {
        r.link(
            at,
            "eth0",
            LinkKind::Broadband,
            LinkState::Absent,
            LinkState::Up,
        )
    };
    let mut online = Recs::new();
    online.start(t - 30 * MIN, "boot-1");
    online.push(
        t - 30 * MIN,
        Body::Facts {
            hostname: "savar-on.local".into(),
            os: "Debian GNU/Linux 13".into(),
            agent_version: "0.1.0-test".into(),
            links: vec![],
        },
    );
    up(&mut online, t - 29 * MIN);
    online.link(
        t - 28 * MIN,
        "wwan0",
        LinkKind::Mobile,
        LinkState::Absent,
        LinkState::Down,
    );
    let mut offline = Recs::new();
    offline.start(t - 30 * MIN, "boot-2");
    // eth0 up from the start, down at t - 10 min: one outage with every
    // link down. Probe summaries every 5 minutes throughout (the agent's
    // evidence of running): 1,800 probes, 615 lost (15, then all of the
    // last two), median RTT 12.5 ms (15 of the 20 minutes with one).
    up(&mut offline, t - 30 * MIN);
    for (ago, lost, rtt) in [
        (25, 15, Some(12.5)),
        (20, 0, Some(12.5)),
        (15, 0, Some(20.0)),
        (10, 0, Some(12.5)),
    ] {
        offline.minutes(
            t - ago * MIN,
            "eth0",
            LinkKind::Broadband,
            5,
            300,
            lost,
            rtt,
        );
    }
    offline.failover(t - 10 * MIN, Some("eth0"), None);
    offline.link(
        t - 10 * MIN,
        "eth0",
        LinkKind::Broadband,
        LinkState::Up,
        LinkState::Down,
    );
    for ago in [5, 0] {
        offline.minutes(
            t - ago * MIN,
            "eth0",
            LinkKind::Broadband,
            5,
            300,
            300,
            None,
        );
    }
    let mut stopped = Recs::new();
    stopped.start(t - 30 * MIN, "boot-3");
    up(&mut stopped, t - 29 * MIN);
    stopped.stop(t - 5 * MIN);
    let mut silent = Recs::new();
    silent.start(t - 200 * MIN, "boot-4");
    up(&mut silent, t - 199 * MIN);
    let mut ctg = Recs::new();
    ctg.start(t - 30 * MIN, "boot-5");
    up(&mut ctg, t - 29 * MIN);
    for (name, code, recs, at) in [
        ("savar-on", "dhk-savar", online.out, t),
        ("savar-off", "dhk-savar", offline.out, t),
        ("savar-stop", "dhk-savar", stopped.out, t - 4 * MIN),
        ("savar-silent", "dhk-savar", silent.out, t - 180 * MIN),
        ("ctg-on", "ctg-sadar", ctg.out, t),
    ] {
        let (d, _) = devices::add_device(store, name, Some(code), t - 300 * MIN)
            .await
            .unwrap();
        // savar-on's agent still had 1,234 records to send, the oldest
        // from 2 hours ago; savar-off's had none; the others said nothing.
        let backlog = match name {
            "savar-on" => Some(Backlog {
                records: 1_234,
                oldest_at: Some(t - 120 * MIN),
            }),
            "savar-off" => Some(Backlog {
                records: 0,
                oldest_at: None,
            }),
            _ => None,
        };
        let meta = UploadMeta {
            next_upload_due_ms: None,
            backlog,
        };
        store.ingest_reported(d.id, &recs, meta, at).await.unwrap();
    }
    devices::add_device(store, "savar-new", Some("dhk-savar"), t)
        .await
        .unwrap();
    // A name the agent could not send, stored by other means: shown as text.
    store
        .add_device(EVIL_DEVICE, Some("dhk-savar"), "evil-hash", t)
        .await
        .unwrap();
    for (name, role, branch) in [
        ("admin", Role::Admin, None),
        ("ctg", Role::Read, Some((Level::Division, "Chattogram"))),
        ("savar", Role::Read, Some((Level::Upazila, "Savar"))),
    ] {
        linkwatch::collector::web::users::add_user(store, name, role, branch, PW, t)
            .await
            .unwrap();
    }
}

/// An uptime report's CSV: its header, and each row's cells by group.
pub fn report_csv(text: &str) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let head = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].to_string(), rec.iter().map(String::from).collect())
        })
        .collect();
    (head, rows)
}

/// Two CSVs of the same report made moments apart (the dashboard's download
/// and the API's) agree: the same columns and groups; the same device,
/// outage and failover counts, loss and RTT; times within a minute and
/// percentages within half a point (the fixture's window reaches now, so
/// its online and offline time grow between the two).
pub fn assert_same_report(page: &str, api: &str) {
    let (head, a) = report_csv(page);
    let (api_head, b) = report_csv(api);
    assert_eq!(head, api_head);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "groups"
    );
    for (group, x) in &a {
        let y = &b[group];
        for (i, col) in head.iter().enumerate() {
            let (p, q) = (&x[i], &y[i]);
            let near = |tol: f64| match (p.parse::<f64>(), q.parse::<f64>()) {
                (Ok(u), Ok(v)) => (u - v).abs() <= tol,
                _ => p == q,
            };
            let ok = match col.as_str() {
                "loss_pct" | "rtt_p50_ms" => p == q,
                c if c.ends_with("_ms") => near(60_000.0),
                c if c.ends_with("_pct") => near(0.5),
                "uptime" => true,
                _ => p == q,
            };
            assert!(ok, "{group}: {col} is {p} on the page and {q} from the API");
        }
    }
}

/// The uptime API's CSV for `query` (without `format`), read with an API
/// token; 200 asserted.
pub async fn api_csv(web: &Web, token: &str, query: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/reports/uptime?{query}&format=csv",
            web.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}
