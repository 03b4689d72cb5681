//! The durable record end to end: the agent in the device namespace uploads
//! over HTTPS to a real collector in the "internet" namespace, whose only way
//! in is through the device's links. Cutting the links really cuts the
//! collector off; afterwards it must hold every record exactly once, each at
//! its measured time. The agent's wall clock alone can be stepped (libfaketime
//! preloaded into the agent process only).

mod common;

use common::agent::{Agent, BIN, COLLECTOR_ADDR, add_device, uploading_config};
use common::{Testbed, Uplink, testbed_available, wait_until};
use linkwatch::collector::store::{self, Store, StoredRecord};
use linkwatch::collector::{report, uptime};
use linkwatch::wire::LinkState;
use linkwatch::wire::v1::{Body, LifecycleEvent};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Collector {
    child: Child,
    db_url: String,
    config: PathBuf,
    ca: PathBuf,
    log: PathBuf,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- collector log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

fn start_collector(tb: &Testbed, dir: &Path) -> Collector {
    common::run(&mut tb.exec_inet([
        "ip",
        "addr",
        "add",
        &format!("{COLLECTOR_ADDR}/32"),
        "dev",
        "lo",
    ]));
    let ck = rcgen::generate_simple_self_signed(vec![COLLECTOR_ADDR.to_string()]).unwrap();
    let cert = dir.join("collector.crt");
    let key = dir.join("collector.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    // The private key: 0600, or the collector refuses it.
    linkwatch::shared::files::write_new_private(&key, ck.signing_key.serialize_pem().as_bytes())
        .unwrap();
    let db = dir.join("collector.db");
    let db_url = format!("sqlite://{}", db.display());
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nlisten = \"{COLLECTOR_ADDR}:8443\"\ndatabase = \"{db_url}\"\n\
             tls_cert = \"{}\"\ntls_key = \"{}\"\nlog_format = \"text\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let log = dir.join("collector.log");
    let child = tb
        .exec_inet([BIN, "collector", "--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let c = Collector {
        child,
        db_url,
        config,
        ca: cert,
        log,
    };
    wait_until(Duration::from_secs(10), "collector listening", || {
        std::fs::read_to_string(&c.log).is_ok_and(|l| l.contains(COLLECTOR_ADDR))
            && tb
                .exec_inet([
                    "python3",
                    "-c",
                    &format!("import socket;socket.create_connection(('{COLLECTOR_ADDR}',8443),1)"),
                ])
                .status()
                .is_ok_and(|s| s.success())
    });
    c
}

async fn stored(c: &Collector) -> (Arc<dyn Store>, i64, Vec<StoredRecord>) {
    let s = store::open(&c.db_url).await.unwrap();
    let d = s.device_by_name("dev1").await.unwrap().expect("device");
    let recs = s.records(d.id, 0, 1_000_000).await.unwrap();
    (s, d.acked, recs)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every sequence number from 1 to the last is covered exactly once.
fn assert_contiguous(recs: &[StoredRecord]) {
    let mut next = 1;
    for r in recs {
        assert_eq!(r.seq, next, "gap or overlap before seq {}", r.seq);
        next = r.seq_end + 1;
    }
}

#[test]
fn offline_for_a_while_with_flapping_links_loses_nothing_and_keeps_measured_times() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(&tb, dir.path());
    let token = add_device(&c.config, "dev1", dir.path());
    let agent = Agent::start(
        &tb,
        &uploading_config("dev1", &token, &c.ca, dir.path(), "debug"),
    );
    agent.all_up();
    let rt = rt();
    wait_until(Duration::from_secs(15), "first upload", || {
        rt.block_on(stored(&c)).1 > 3
    });

    // Cut every link from the collector, and flap the broadband carrier meanwhile.
    for l in Uplink::ALL {
        tb.cut_upstream(l);
    }
    for l in ["bb0", "wl0", "mb0"] {
        agent.wait_state(l, LinkState::Down, Duration::from_secs(15), |_| {});
    }
    let offline_from = now_ms();
    let acked_before = rt.block_on(stored(&c)).1;
    for _ in 0..2 {
        tb.drop_carrier(Uplink::Broadband);
        agent.wait_state("bb0", LinkState::Down, Duration::from_secs(3), |_| {});
        tb.restore_carrier(Uplink::Broadband);
    }
    std::thread::sleep(Duration::from_secs(3)); // heartbeats pile up in the spool
    let s = agent.status();
    assert!(!s.online);
    assert!(
        s.record.depth > 0,
        "records wait in the spool: {:?}",
        s.record
    );
    assert_eq!(
        rt.block_on(stored(&c)).1,
        acked_before,
        "nothing can reach the collector while every link is cut"
    );
    let offline_to = now_ms();

    for l in Uplink::ALL {
        tb.heal_upstream(l);
    }
    wait_until(Duration::from_secs(30), "backlog delivered", || {
        agent.status().record.depth == 0
    });
    let (_s, acked, recs) = rt.block_on(stored(&c));
    assert_contiguous(&recs);
    assert_eq!(acked, recs.last().unwrap().seq_end);
    // The carrier flaps were recorded while offline and keep their measured time.
    let carrier_downs: Vec<&StoredRecord> = recs
        .iter()
        .filter(|r| {
            r.kind == "link_state" && r.body.contains("\"bb0\"") && r.body.contains("\"carrier\"")
        })
        .collect();
    assert!(
        carrier_downs.len() >= 2,
        "two carrier losses: {carrier_downs:#?}"
    );
    for r in carrier_downs {
        assert!(
            r.at_ms >= offline_from - 1000 && r.at_ms <= offline_to,
            "measured at {} but stored as {}",
            r.at_ms,
            r.received_ms
        );
        assert!(r.received_ms > r.at_ms, "arrived later than measured");
    }
}

#[test]
fn sigkill_mid_upload_and_restart_keep_every_record_exactly_once_and_sigterm_says_goodbye() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(&tb, dir.path());
    let token = add_device(&c.config, "dev1", dir.path());
    let mut agent = Agent::start(
        &tb,
        &uploading_config("dev1", &token, &c.ca, dir.path(), "debug"),
    );
    agent.all_up();
    let rt = rt();
    wait_until(Duration::from_secs(15), "first upload", || {
        rt.block_on(stored(&c)).1 > 3
    });
    for _ in 0..3 {
        agent.signal("-KILL");
        agent.wait_exit(Duration::from_secs(5));
        agent.restart();
        agent.all_up();
    }
    wait_until(Duration::from_secs(20), "caught up", || {
        agent.status().record.depth == 0
    });
    agent.signal("-TERM");
    assert!(agent.wait_exit(Duration::from_secs(10)).success());
    let (_s, acked, recs) = rt.block_on(stored(&c));
    assert_contiguous(&recs);
    assert_eq!(acked, recs.last().unwrap().seq_end);
    let starts = recs
        .iter()
        .filter(|r| r.kind == "lifecycle" && r.body.contains("\"start\""))
        .count();
    assert_eq!(starts, 4, "one start per run");
    let last = recs.last().unwrap();
    assert_eq!(last.kind, "lifecycle", "{last:?}");
    assert!(
        last.body.contains("\"stop\""),
        "the clean stop reached the collector: {last:?}"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn collector_sigkilled_mid_batch_then_restarted_ends_with_every_record_once() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let mut c = start_collector(&tb, dir.path());
    let token = add_device(&c.config, "dev1", dir.path());
    let agent = Agent::start(
        &tb,
        &uploading_config("dev1", &token, &c.ca, dir.path(), "debug"),
    );
    agent.all_up();
    let rt = rt();
    wait_until(Duration::from_secs(15), "first upload", || {
        rt.block_on(stored(&c)).1 > 3
    });
    // Kill the collector a few times while the agent keeps uploading.
    for _ in 0..3 {
        let _ = c.child.kill(); // SIGKILL
        let _ = c.child.wait();
        std::thread::sleep(Duration::from_millis(1500));
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&c.log)
            .unwrap();
        c.child = tb
            .exec_inet([BIN, "collector", "--config", c.config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    }
    wait_until(Duration::from_secs(30), "caught up", || {
        agent.status().record.depth == 0
    });
    let (_s, acked, recs) = rt.block_on(stored(&c));
    assert_contiguous(&recs);
    assert_eq!(acked, recs.last().unwrap().seq_end);
}

#[test]
fn a_full_spool_disk_loses_nothing_once_space_is_back() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(&tb, dir.path());
    let token = add_device(&c.config, "dev1", dir.path());
    // The spool lives on a tiny file system of its own.
    let spool_dir = dir.path().join("spoolfs");
    std::fs::create_dir(&spool_dir).unwrap();
    common::run(std::process::Command::new("mount").args([
        "-t",
        "tmpfs",
        "-o",
        "size=2m",
        "tmpfs",
        spool_dir.to_str().unwrap(),
    ]));
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(spool_dir.clone());
    let cfg = uploading_config("dev1", &token, &c.ca, &spool_dir, "debug");
    let agent = Agent::start(&tb, &cfg);
    agent.all_up();
    let rt = rt();
    wait_until(Duration::from_secs(15), "first upload", || {
        rt.block_on(stored(&c)).1 > 3
    });
    // Cut the collector off, then fill the spool's disk to the last byte.
    for l in Uplink::ALL {
        tb.cut_upstream(l);
    }
    for l in ["bb0", "wl0", "mb0"] {
        agent.wait_state(l, LinkState::Down, Duration::from_secs(15), |_| {});
    }
    let filler = spool_dir.join("filler");
    let _ = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", filler.display()),
            "bs=64k",
        ])
        .stderr(Stdio::null())
        .status();
    // Transitions happen while the disk is full.
    tb.drop_carrier(Uplink::Broadband);
    std::thread::sleep(Duration::from_secs(3));
    wait_until(Duration::from_secs(10), "write failures logged", || {
        agent.log_text().contains("cannot write to the spool")
    });
    assert!(
        agent.status().links.iter().any(|l| l.name == "bb0"),
        "the agent still runs"
    );
    // Space comes back, and so do the links.
    std::fs::remove_file(&filler).unwrap();
    tb.restore_carrier(Uplink::Broadband);
    for l in Uplink::ALL {
        tb.heal_upstream(l);
    }
    wait_until(Duration::from_secs(40), "backlog delivered", || {
        let s = agent.status();
        s.record.depth == 0 && s.online
    });
    let (_s, acked, recs) = rt.block_on(stored(&c));
    assert_contiguous(&recs);
    assert_eq!(acked, recs.last().unwrap().seq_end);
    assert!(
        recs.iter().any(|r| r.kind == "link_state"
            && r.body.contains("\"bb0\"")
            && r.body.contains("\"carrier\"")),
        "the transition made while the disk was full was kept"
    );
}

/// libfaketime's preload library (Debian package `faketime`), the
/// thread-safe build, as the agent runs several threads.
fn faketime_lib() -> Option<PathBuf> {
    const LIB: &str = "libfaketimeMT.so.1";
    let listed: Vec<PathBuf> = std::process::Command::new("dpkg")
        .args(["-L", "libfaketime"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    // Without dpkg: the Debian multiarch directories.
    let multiarch = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime").join(LIB));
    listed
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == LIB))
        .chain(multiarch)
        .find(|p| p.is_file())
}

/// Set the offset libfaketime applies to the agent's wall clock ("+0",
/// "-3600": seconds); replaced atomically, as the agent reads it on every
/// clock reading.
fn set_agent_clock(file: &Path, offset: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{offset}\n")).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn body(r: &StoredRecord) -> Body {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

#[test]
fn wall_clock_stepped_back_an_hour_loses_nothing_duplicates_nothing_and_keeps_sequence_order() {
    if !testbed_available() {
        return;
    }
    let Some(lib) = faketime_lib() else {
        eprintln!(
            "skipped: wall_clock_stepped_back_an_hour_loses_nothing_duplicates_nothing_\
             and_keeps_sequence_order needs libfaketime (Debian package `faketime`) \
             to step the agent's wall clock alone"
        );
        return;
    };
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(&tb, dir.path());
    let token = add_device(&c.config, "dev1", dir.path());
    // Only the agent's CLOCK_REALTIME is faked; its monotonic clock (and so
    // its timers and mono_ms), the collector's and this test's clocks are real.
    let clock = dir.path().join("agent-clock.rc");
    set_agent_clock(&clock, "+0");
    let preload = format!("LD_PRELOAD={}", lib.display());
    let clock_file = format!("FAKETIME_TIMESTAMP_FILE={}", clock.display());
    let t0 = now_ms();
    let mut agent = Agent::spawn_with(
        &tb,
        &uploading_config("dev1", &token, &c.ca, dir.path(), "debug"),
        &[
            "env",
            &preload,
            &clock_file,
            "FAKETIME_NO_CACHE=1",
            "FAKETIME_DONT_FAKE_MONOTONIC=1",
            "FAKETIME_DISABLE_SHM=1",
        ],
    );
    wait_until(Duration::from_secs(10), "agent status listener", || {
        agent.try_status().is_some()
    });
    agent.all_up();
    let rt = rt();
    wait_until(Duration::from_secs(15), "heartbeats uploaded", || {
        let (_s, _a, recs) = rt.block_on(stored(&c));
        recs.iter().filter(|r| r.kind == "heartbeat").count() >= 3
    });

    // The agent's wall clock goes back one hour.
    let stepped_at = now_ms();
    set_agent_clock(&clock, "-3600");
    let is_step = |r: &StoredRecord| {
        r.kind == "lifecycle"
            && matches!(
                body(r),
                Body::Lifecycle {
                    event: LifecycleEvent::ClockStep,
                    ..
                }
            )
    };
    wait_until(Duration::from_secs(15), "clock step uploaded", || {
        rt.block_on(stored(&c)).2.iter().any(is_step)
    });

    // A link state change after the step.
    let cut_at = now_ms();
    tb.drop_carrier(Uplink::Broadband);
    agent.wait_state("bb0", LinkState::Down, Duration::from_secs(15), |_| {});
    tb.restore_carrier(Uplink::Broadband);
    agent.wait_state("bb0", LinkState::Up, Duration::from_secs(20), |_| {});
    let back_at = now_ms();
    wait_until(Duration::from_secs(20), "caught up", || {
        agent.status().record.depth == 0
    });
    let stop_at = now_ms();
    agent.signal("-TERM");
    assert!(agent.wait_exit(Duration::from_secs(10)).success());
    let stopped = now_ms();

    let (s, acked, recs) = rt.block_on(stored(&c));
    assert_contiguous(&recs);
    assert_eq!(acked, recs.last().unwrap().seq_end);
    let last = recs.last().unwrap();
    assert!(
        matches!(
            body(last),
            Body::Lifecycle {
                event: LifecycleEvent::Stop,
                ..
            }
        ),
        "the clean stop reached the collector: {last:?}"
    );
    assert!(recs.iter().all(|r| r.boot_id == recs[0].boot_id));

    // Exactly one clock step, of about minus one hour.
    let steps: Vec<usize> = (0..recs.len()).filter(|&i| is_step(&recs[i])).collect();
    assert_eq!(steps.len(), 1, "one clock step: {steps:?}");
    let k = steps[0];
    let Body::Lifecycle { detail, .. } = body(&recs[k]) else {
        unreachable!()
    };
    let moved: i64 = detail
        .as_deref()
        .and_then(|d| d.strip_prefix("wall clock moved by "))
        .and_then(|d| d.strip_suffix(" ms"))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("step detail {detail:?}"));
    assert!(
        (moved + 3_600_000).abs() < 1_000,
        "the step says {moved} ms"
    );

    // Before the step, records carry the real time; from the step on (the
    // step record is stamped after it), the agent's raw wall clock, one hour
    // earlier. Wall minus monotonic is constant on each side.
    let (pre, post) = recs.split_at(k);
    assert!(pre.len() >= 5, "records before the step: {pre:#?}");
    let offset = |r: &StoredRecord| r.at_ms - r.mono_ms;
    let base = offset(&pre[0]);
    for r in pre {
        assert!(
            r.at_ms >= t0 - 1000 && r.at_ms <= stepped_at + 1000,
            "before the step, real time: {r:?}"
        );
        assert!((offset(r) - base).abs() < 1000, "{r:?}");
    }
    for r in post {
        assert!(
            r.at_ms >= stepped_at - 3_600_000 - 1000 && r.at_ms <= stopped - 3_600_000 + 1000,
            "after the step, an hour back: {r:?}"
        );
        assert!((offset(r) - (base - 3_600_000)).abs() < 1000, "{r:?}");
        assert!(r.received_ms > r.at_ms + 3_500_000, "{r:?}");
    }
    // mono_ms keeps increasing with the sequence, across the step too.
    for w in recs.windows(2) {
        assert!(
            w[1].mono_ms >= w[0].mono_ms,
            "monotonic time went back: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    assert!(post[0].mono_ms >= pre.last().unwrap().mono_ms);

    // The carrier loss and return made after the step are stored, in order.
    let bb0: Vec<(LinkState, Option<String>)> = post
        .iter()
        .filter_map(|r| match body(r) {
            Body::LinkState {
                link, to, reason, ..
            } if link == "bb0" => Some((to, reason)),
            _ => None,
        })
        .collect();
    let down = bb0
        .iter()
        .position(|(to, reason)| *to == LinkState::Down && reason.as_deref() == Some("carrier"))
        .unwrap_or_else(|| panic!("bb0 carrier loss after the step: {bb0:?}"));
    assert!(
        bb0[down..].iter().any(|(to, _)| *to == LinkState::Up),
        "bb0 back up after the step: {bb0:?}"
    );

    // The uptime engine places what came after the step at its real time
    // (anchored on the monotonic clock), not an hour back.
    let device = rt.block_on(s.device_by_name("dev1")).unwrap().unwrap();
    let engine_recs = rt.block_on(report::all_records(&*s, &device)).unwrap();
    let params = uptime::Params {
        heartbeat_ms: 1000,
        grace_ms: 2000,
    };
    let now = now_ms();
    let tl = uptime::timeline(&engine_recs, t0 - 7_200_000, now, now, &params);
    let running: Vec<_> = tl
        .device
        .iter()
        .filter(|i| i.state != uptime::DeviceState::NoData)
        .collect();
    assert!(
        running.iter().all(|i| i.start >= t0 - 1000),
        "nothing placed an hour back: {:#?}",
        tl.device
    );
    assert!(
        tl.device
            .iter()
            .any(|i| i.state == uptime::DeviceState::Online
                && i.start <= stepped_at
                && i.end >= stop_at),
        "online without a break across the step until the stop: {:#?}",
        tl.device
    );
    let stop_iv = tl.device.last().unwrap();
    assert_eq!(stop_iv.state, uptime::DeviceState::NotRunning, "{tl:#?}");
    assert_eq!(stop_iv.cause.as_deref(), Some(uptime::cause::STOPPED));
    assert!(
        stop_iv.start >= stop_at - 1000 && stop_iv.start <= stopped + 1000,
        "stopped at the real time of the stop ({stop_at}..{stopped}): {stop_iv:?}"
    );
    let (_kind, bb0_tl) = &tl.links["bb0"];
    assert!(
        bb0_tl.iter().any(|i| i.state == LinkState::Down
            && i.cause.as_deref() == Some("carrier")
            && i.start >= cut_at - 1000
            && i.end <= back_at + 2000),
        "bb0's carrier loss at its real time ({cut_at}..{back_at}): {bb0_tl:#?}"
    );
    eprintln!(
        "clock step: {moved} ms; {} records before it, {} from it on; \
         wall-mono offset {} then {}; mono {} -> {}",
        pre.len(),
        post.len(),
        base,
        offset(&post[0]),
        pre.last().unwrap().mono_ms,
        post[0].mono_ms
    );
}
