//! Benchmarks of fresh evidence: how soon the device is offline when every
//! upstream dies at once (seen by `GET /status` polled every 10 ms, and in the
//! spool's records read back through the collector's uptime engine); what a
//! metered standby link costs a day, healthy and with outages of the active
//! link; and a metered link that is the only one: bytes a day on the wire
//! idle and carrying traffic, and how soon a dead upstream is `down`.
//!
//! Bytes are counted by nftables in the ISP's namespace on the device's link
//! (IP bytes, both directions), then extrapolated to a day: reachability
//! probes linearly from the measured window; application checks as the size
//! of one batch (measured) times the batches a day at their interval, because
//! a window of minutes holds at most one or two batches.

use super::common::{self, Testbed, Uplink, wait_until};
use super::{Agent, config_mode, kernel_route, summary};
use linkwatch::collector::uptime::{self, DeviceState, Rec};
use linkwatch::wire::v1::Record;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Polls `/status` every 10 ms; prints `ready` after the first answer, then
/// the Unix time at which `online` was first false.
const POLLER: &str = r#"
import json, sys, time, urllib.request
ready = False
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        s = json.load(urllib.request.urlopen("http://127.0.0.1:9477/status", timeout=1))
    except Exception:
        time.sleep(0.01)
        continue
    if not ready:
        print("ready", flush=True)
        ready = True
    if not s["online"]:
        print(repr(time.time()), flush=True)
        sys.exit(0)
    time.sleep(0.01)
print("timeout", flush=True)
"#;

fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Every record of the agent's spool, through a read-only connection.
fn spool_records(agent: &Agent) -> Vec<Rec> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};
    let opts = SqliteConnectOptions::new()
        .filename(agent.dir.path().join("spool.db"))
        .read_only(true)
        .busy_timeout(Duration::from_secs(5));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut c = opts.connect().await.unwrap();
            let rows = sqlx::query(
                "SELECT seq, seq_end, at_ms, mono_ms, boot_id, body FROM records ORDER BY seq",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            rows.iter()
                .map(|r| {
                    let seq = r.get::<i64, _>(0) as u64;
                    let seq_end = r.get::<i64, _>(1) as u64;
                    Rec::from(Record {
                        seq,
                        seq_end: (seq_end != seq).then_some(seq_end),
                        at: r.get(2),
                        mono_ms: r.get::<i64, _>(3) as u64,
                        boot_id: r.get(4),
                        body: serde_json::from_str(&r.get::<String, _>(5)).unwrap(),
                    })
                })
                .collect()
        })
}

/// When the uptime engine, from the spool's records, has the device go
/// offline at or after `after` (Unix ms).
fn records_offline_at(agent: &Agent, after: i64) -> Option<i64> {
    let recs = spool_records(agent);
    let now = wall_ms(SystemTime::now());
    let p = uptime::Params {
        heartbeat_ms: 60_000,
        ..uptime::Params::default()
    };
    let tl = uptime::timeline(&recs, recs.first()?.at_ms, now, now, &p);
    tl.device
        .iter()
        .find(|i| i.state == DeviceState::Offline && i.start >= after)
        .map(|i| i.start)
}

fn all_up_and_online(tb: &Testbed, agent: &Agent, links: &[&str]) {
    for l in links {
        wait_until(Duration::from_secs(60), "link up", || {
            agent.transitions(l).last().is_some_and(|t| t.1 == "up")
        });
    }
    wait_until(Duration::from_secs(10), "device online", || {
        status_online(tb) == Some(true)
    });
}

/// The agent's `GET /status` document.
fn status_doc(tb: &Testbed) -> Option<serde_json::Value> {
    let out = tb
        .exec_dev([
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9477/status').read().decode())",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn status_online(tb: &Testbed) -> Option<bool> {
    status_doc(tb)?["online"].as_bool()
}

/// The Unix time (ms) of the first `online: false` after the poller started,
/// running `cut` once the poller is polling.
fn offline_seen(tb: &Testbed, cut: impl FnOnce()) -> Option<i64> {
    let mut child: Child = tb
        .exec_dev(["python3", "-c", POLLER, "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    cut();
    let line = lines.next().unwrap().unwrap();
    let _ = child.wait();
    line.parse::<f64>().ok().map(|s| (s * 1000.0) as i64)
}

/// Every upstream cut at once -> `online: false`, in both modes.
pub fn bench_offline(trials: usize) {
    for mode in ["observe", "routes"] {
        let tb = Testbed::new();
        // Each trial starts from the base hold-down (no growing flap history).
        let agent = Agent::start(
            &tb,
            &config_mode("", &format!("{mode}\"\nflap_window = \"1s\"")),
        );
        let (mut status, mut records) = (vec![], vec![]);
        for i in 0..trials {
            all_up_and_online(&tb, &agent, &["bb0", "wl0", "mb0"]);
            // The usual state: bb0 chosen (after the last trial it waits out
            // its hold-down).
            wait_until(Duration::from_secs(60), "bb0 chosen again", || {
                status_doc(&tb).is_some_and(|s| s["failover"]["chosen"] == "bb0")
            });
            // Any phase of the standby links' 5 s and 15 s rounds.
            std::thread::sleep(Duration::from_millis(1000 + (i as u64 * 1733) % 6000));
            let t0 = SystemTime::now();
            let seen = offline_seen(&tb, || {
                // One thread each: at the same moment.
                std::thread::scope(|s| {
                    for link in Uplink::ALL {
                        let tb = &tb;
                        s.spawn(move || tb.cut_upstream(link));
                    }
                });
            })
            .expect("offline within 30 s");
            status.push(Duration::from_millis((seen - wall_ms(t0)).max(0) as u64));
            for l in ["bb0", "wl0", "mb0"] {
                agent.wait_transition(l, "down", t0, Duration::from_secs(30));
            }
            let mut rec = None;
            wait_until(Duration::from_secs(5), "offline in the records", || {
                rec = records_offline_at(&agent, wall_ms(t0) - 1000);
                rec.is_some()
            });
            records.push(Duration::from_millis(
                (rec.unwrap() - wall_ms(t0)).max(0) as u64
            ));
            for link in Uplink::ALL {
                tb.heal_upstream(link);
            }
        }
        summary(
            &format!("every upstream cut at once -> status online: false ({mode} mode)"),
            &mut status,
            Duration::from_secs(3),
            &[],
        );
        summary(
            &format!("  the same in the spool's records, through the uptime engine ({mode} mode)"),
            &mut records,
            Duration::from_secs(3),
            &[],
        );
    }
}

/// A table counting IP bytes through the ISP's `dn0` (the device's link):
/// ICMP apart from the rest; traffic to or from `exclude` not counted.
fn install_counters(tb: &Testbed, link: Uplink, exclude: Option<&str>) {
    let ns = tb.isp_netns(link).to_string();
    let (ex_in, ex_out) = match exclude {
        Some(a) => (format!("ip daddr != {a} "), format!("ip saddr != {a} ")),
        None => (String::new(), String::new()),
    };
    let script = format!(
        "table inet lwcount {{\n chain c {{\n  type filter hook prerouting priority -300;\n  iifname \"dn0\" {ex_in}meta l4proto icmp counter\n  iifname \"dn0\" {ex_in}meta l4proto != icmp counter\n }}\n chain o {{\n  type filter hook postrouting priority 300;\n  oifname \"dn0\" {ex_out}meta l4proto icmp counter\n  oifname \"dn0\" {ex_out}meta l4proto != icmp counter\n }}\n}}\n"
    );
    let mut child = common::exec_in(&ns, ["nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn reset_counters(tb: &Testbed, link: Uplink) {
    common::run(&mut common::exec_in(
        tb.isp_netns(link),
        ["nft", "reset", "counters", "table", "inet", "lwcount"],
    ));
}

/// (ICMP bytes, other bytes) counted since the last reset.
fn read_counters(tb: &Testbed, link: Uplink) -> (u64, u64) {
    let out = common::run(&mut common::exec_in(
        tb.isp_netns(link),
        ["nft", "list", "table", "inet", "lwcount"],
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut icmp, mut other) = (0, 0);
    for line in text.lines().filter(|l| l.contains("counter")) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let b = w
            .windows(2)
            .find(|p| p[0] == "bytes")
            .and_then(|p| p[1].parse::<u64>().ok())
            .unwrap_or(0);
        if line.contains("!= icmp") {
            other += b;
        } else {
            icmp += b;
        }
    }
    (icmp, other)
}

/// HTTP application checks run so far on `link` (one per batch here).
fn http_checks(tb: &Testbed, link: &str) -> u64 {
    super::app_checks(tb).get(link).copied().unwrap_or(0)
}

const DAY: f64 = 86_400.0;

/// The metered standby link (mb0) of a gateway: bytes a day healthy, and
/// with `outages` short silent outages of the active link.
pub fn bench_metered_standby(secs: u64, outages: usize) {
    let tb = Testbed::new();
    install_counters(&tb, Uplink::Mobile, None);
    install_counters(&tb, Uplink::Broadband, None);
    // Each outage starts from the base hold-down (no growing flap history).
    let agent = Agent::start(&tb, &config_mode("", "routes\"\nflap_window = \"1s\""));
    wait_until(Duration::from_secs(10), "route on bb0", || {
        kernel_route(&tb) == "bb0"
    });
    std::thread::sleep(Duration::from_secs(2));
    // Healthy.
    reset_counters(&tb, Uplink::Mobile);
    reset_counters(&tb, Uplink::Broadband);
    let bb_checks0 = http_checks(&tb, "bb0");
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let healthy_s = t.elapsed().as_secs_f64();
    let (mb_icmp, mb_other) = read_counters(&tb, Uplink::Mobile);
    let (_, bb_other) = read_counters(&tb, Uplink::Broadband);
    let bb_checks = http_checks(&tb, "bb0") - bb_checks0;
    // One application batch (DNS + captive HTTP check), measured on bb0,
    // which runs one every 30 s.
    let batch = bb_other as f64 / bb_checks.max(1) as f64;
    let apps_day = batch * DAY / 1800.0;
    let icmp_rate = mb_icmp as f64 / healthy_s;
    let healthy_day = icmp_rate * DAY + apps_day;
    println!(
        "metered standby link (mb0), healthy: {:.3} MB/day (target <= 1 MB) = reachability {:.3} MB \
         ({mb_icmp} B of ICMP in {healthy_s:.0} s, x {:.0}) + application checks {:.3} MB \
         (one batch {batch:.0} B, measured on bb0, every 30 min; {mb_other} B seen on mb0 in the window)",
        healthy_day / 1e6,
        icmp_rate * DAY / 1e6,
        DAY / healthy_s,
        apps_day / 1e6
    );
    // Outages of the active link: silent cuts of 15 s, then back (and the
    // fail-back after its hold-down).
    reset_counters(&tb, Uplink::Mobile);
    let t = Instant::now();
    let mut confirmed = 0;
    for _ in 0..outages {
        let t0 = SystemTime::now();
        tb.cut_upstream(Uplink::Broadband);
        agent.wait_transition("bb0", "down", t0, Duration::from_secs(30));
        std::thread::sleep(Duration::from_secs(15));
        let t1 = SystemTime::now();
        tb.heal_upstream(Uplink::Broadband);
        agent.wait_transition("bb0", "up", t1, Duration::from_secs(30));
        wait_until(Duration::from_secs(60), "route back on bb0", || {
            kernel_route(&tb) == "bb0"
        });
        confirmed += 1;
    }
    let outage_s = t.elapsed().as_secs_f64();
    let (o_icmp, o_other) = read_counters(&tb, Uplink::Mobile);
    let extra = (o_icmp as f64 - icmp_rate * outage_s).max(0.0);
    let per_outage = extra / confirmed as f64;
    let day = healthy_day + 20.0 * per_outage;
    println!(
        "metered standby link (mb0), a day with 20 outages of the active link: {:.3} MB/day \
         (target <= 1 MB) = healthy {:.3} MB + 20 x {per_outage:.0} B extra per outage \
         ({confirmed} outages measured over {outage_s:.0} s: {o_icmp} B of ICMP against {:.0} B at the \
         healthy rate; {o_other} B of application checks seen)",
        day / 1e6,
        healthy_day / 1e6,
        icmp_rate * outage_s
    );
}

/// Probes of a laptop whose only link is mb0 (metered), and a device config
/// with it alone.
fn mobile_config() -> String {
    r#"presets = []
probes = [
  { type = "icmp", target = "192.0.2.1" },
  { type = "icmp", target = "192.0.2.2" },
  { type = "dns", server = "198.51.100.53:53", name = "probe.test" },
  { type = "http", url = "http://192.0.2.1/generate_204", expect_status = 204, captive = true },
]
[agent]
status_listen = "127.0.0.1:9477"
log_format = "json"
log_level = "info"
[discovery]
enabled = false
[[link]]
name = "mb0"
kind = "mobile"
"#
    .into()
}

/// The officer's own steady traffic: a ping every 200 ms to an address no
/// probe uses (not counted).
fn steady_traffic(tb: &Testbed) -> Child {
    tb.exec_dev(["ping", "-n", "-q", "-i", "0.2", "203.0.113.10"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A metered link that is the only one: bytes a day idle and with steady
/// traffic; dead upstream -> `down` with traffic and idle.
pub fn bench_mobile(trials: usize, secs: u64) {
    let tb = Testbed::new();
    tb.remove_link(Uplink::Broadband);
    tb.remove_link(Uplink::Wifi);
    install_counters(&tb, Uplink::Mobile, Some("203.0.113.10"));
    reset_counters(&tb, Uplink::Mobile);
    let agent = Agent::start_links(&tb, &mobile_config(), &["mb0"]);
    // The first application batch runs right after start: its size.
    wait_until(Duration::from_secs(20), "first application batch", || {
        http_checks(&tb, "mb0") >= 1
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, first_other) = read_counters(&tb, Uplink::Mobile);
    let batch = first_other as f64 / http_checks(&tb, "mb0") as f64;
    let apps_day = batch * DAY / 600.0;
    let measure = |what: &str| {
        reset_counters(&tb, Uplink::Mobile);
        let checks = http_checks(&tb, "mb0");
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let s = t.elapsed().as_secs_f64();
        let (icmp, other) = read_counters(&tb, Uplink::Mobile);
        let checks = http_checks(&tb, "mb0") - checks;
        let icmp_day = icmp as f64 / s * DAY;
        println!(
            "metered only link (mb0), {what}: {:.3} MB/day on the wire (target <= 2 MB; was ~20 MB) = \
             reachability {:.3} MB ({icmp} B of ICMP = {} probes in {s:.0} s, x {:.0}) + application \
             checks {:.3} MB (one batch {batch:.0} B every 10 min; {checks} batches, {other} B seen in \
             the window)",
            (icmp_day + apps_day) / 1e6,
            icmp_day / 1e6,
            icmp / 72,
            DAY / s,
            apps_day / 1e6
        );
    };
    measure("idle");
    let mut ping = steady_traffic(&tb);
    std::thread::sleep(Duration::from_secs(1));
    measure("steady traffic (a ping every 200 ms, not counted)");

    let mut with_traffic = vec![];
    for i in 0..trials {
        std::thread::sleep(Duration::from_millis(137 * (i as u64 % 7) + 300));
        let t0 = SystemTime::now();
        tb.cut_upstream(Uplink::Mobile);
        with_traffic.push(agent.wait_transition("mb0", "down", t0, Duration::from_secs(40)));
        let t1 = SystemTime::now();
        tb.heal_upstream(Uplink::Mobile);
        agent.wait_transition("mb0", "up", t1, Duration::from_secs(40));
    }
    let _ = ping.kill();
    let _ = ping.wait();
    summary(
        "metered only link, dead upstream while traffic flows -> down",
        &mut with_traffic,
        Duration::from_secs(3),
        &[],
    );
    let mut idle = vec![];
    let mut back = vec![];
    for i in 0..trials {
        // Any phase of the 20 s rounds.
        std::thread::sleep(Duration::from_millis(500 + (i as u64 * 7_300) % 20_000));
        let t0 = SystemTime::now();
        tb.cut_upstream(Uplink::Mobile);
        idle.push(agent.wait_transition("mb0", "down", t0, Duration::from_secs(60)));
        let t1 = SystemTime::now();
        tb.heal_upstream(Uplink::Mobile);
        back.push(agent.wait_transition("mb0", "up", t1, Duration::from_secs(60)));
    }
    summary(
        "metered only link, dead upstream while idle -> down",
        &mut idle,
        Duration::from_secs(30),
        &[],
    );
    summary(
        "  and back up while idle (found by the next slow round)",
        &mut back,
        Duration::from_secs(25),
        &[],
    );
}
