//! The dashboard end to end in a real browser: Debian's `chromium` driven by
//! Playwright for Python (`tests/fixtures/dashboard_browser.py`), against the
//! collector's router over loopback on SQLite with the fixture of
//! `tests/common/web.rs`. Skips with a message when chromium, the Python of
//! `LINKWATCH_TEST_PYTHON` or its `playwright` module is missing
//! (`tests/run.sh` installs them). Screenshots go to
//! `target/dashboard-screenshots/`.

mod common;

use common::db::TestDb;
use common::web::{PW, api_csv, assert_same_report, default_options, load, serve};
use linkwatch::collector::access::Role;
use linkwatch::collector::devices;
use linkwatch::collector::web::reports::today;
use std::path::Path;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The Python with Playwright, or why there is none.
fn python() -> Result<String, String> {
    let py = std::env::var("LINKWATCH_TEST_PYTHON")
        .map_err(|_| "LINKWATCH_TEST_PYTHON not set (tests/run.sh sets it)".to_string())?;
    let ok = std::process::Command::new(&py)
        .args(["-c", "import playwright.sync_api"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!(
            "{py} has no playwright module (pip install playwright)"
        ));
    }
    if !Path::new(CHROMIUM).exists() {
        return Err(format!("{CHROMIUM} missing (apt-get install chromium)"));
    }
    Ok(py)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_in_chromium() {
    let py = match python() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let db = TestDb::sqlite();
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = std::fs::remove_file(shots.join("report.csv"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dashboard_browser.py");
    // The report's days: yesterday and today in Asia/Dhaka hold every record.
    let day = today(linkwatch::shared::time::now_ms());
    let (from, until) = (day.yesterday().unwrap().to_string(), day.to_string());
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(180),
        tokio::process::Command::new(&py)
            .arg(&script)
            .args([
                &web.base,
                shots.to_str().unwrap(),
                CHROMIUM,
                PW,
                &from,
                &until,
            ])
            // The collector's clock may be moved (tests/run_binaries.py runs
            // this at Dhaka's midnight through libfaketime); Chromium's is not.
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser test took over 3 minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all browser checks passed"));
    for f in [
        "fleet.png",
        "office.png",
        "device.png",
        "search.png",
        "reports.png",
        "users.png",
        "office-bn.png",
    ] {
        assert!(shots.join(f).metadata().unwrap().len() > 1000, "{f}");
    }
    // The downloaded CSV has the API's figures for the same report.
    let (_, token) = devices::add_api_token(store.as_ref(), "reader", Role::Read, None, 0)
        .await
        .unwrap();
    let query = format!(
        "from={from}&to={}&by=device&schedule=always",
        day.tomorrow().unwrap()
    );
    let api = api_csv(&web, &token, &query).await;
    let downloaded = std::fs::read_to_string(shots.join("report.csv")).unwrap();
    assert_same_report(&downloaded, &api);
    db.drop_db().await;
}
