//! The command line as a user meets it, no root needed: config errors name the
//! file, the key and the fix; `validate` lists the links; `status` without an
//! agent says so.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run linkwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn with_config(text: &str, args: &[&str]) -> (i32, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap().to_string();
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--config", &p]);
    let (code, out, err) = run(&a);
    (code, out, err, p)
}

#[test]
fn unknown_key_is_refused_naming_file_and_key() {
    let (code, _, err, path) = with_config("[health]\ndown_afterr = 3\n", &["agent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&path), "{err}");
    assert!(err.contains("down_afterr"), "{err}");
    assert!(
        err.contains("down_after"),
        "the message lists the valid keys: {err}"
    );
}

#[test]
fn invalid_values_name_the_key_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        ("[health]\ndown_after = 0\n", "health.down_after"),
        (
            "[health]\ninterval_active = \"10ms\"\n",
            "health.interval_active",
        ),
        (
            "[health]\nloss_degraded_pct = 150.0\n",
            "health.loss_degraded_pct",
        ),
        ("presets = [\"nope\"]\n", "presets[0]"),
        (
            "[[link]]\nname = \"eth0\"\nprobes = [{ type = \"http\", url = \"ftp://x\" }]\n",
            "link[0].probes[0].url",
        ),
        (
            "[[link]]\nname = \"eth0\"\nprobes = [{ type = \"tcp\", target = \"nohost\" }]\n",
            "link[0].probes[0].target",
        ),
        (
            "[[link]]\nname = \"eth0\"\npresets = []\nprobes = [{ type = \"icmp\", target = \"192.0.2.1\" }]\nquorum = 2\n",
            "link[0].quorum",
        ),
        (
            "[[link]]\nname = \"eth0\"\n[[link]]\nname = \"eth0\"\n",
            "link[1].name",
        ),
        (
            "[[link]]\nname = \"eth0\"\npresets = []\n",
            "link[0].probes",
        ),
    ];
    for (text, key) in cases {
        let (code, _, err, path) = with_config(text, &["validate"]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(err.contains(&path), "{text}: {err}");
        assert!(
            err.contains(&format!("`{key}`")),
            "{text}: want key {key}: {err}"
        );
    }
}

#[test]
fn wrong_type_names_the_line() {
    let (code, _, err, _) = with_config("[health]\ndown_after = \"four\"\n", &["validate"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("down_after") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn missing_config_file_is_named() {
    let (code, _, err) = run(&["agent", "--config", "/nonexistent/linkwatch.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/linkwatch.toml"), "{err}");
}

#[test]
fn validate_lists_declared_links_with_defaults_by_kind() {
    let text = "presets = []\nprobes = [{ type = \"icmp\", target = \"192.0.2.1\" }]\n\
                [discovery]\nenabled = false\n\
                [[link]]\nname = \"wwan9\"\nkind = \"mobile\"\n\
                [[link]]\nname = \"eth9\"\nkind = \"broadband\"\n";
    let (code, out, err, _) = with_config(text, &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("eth9 (broadband, priority 10, not metered"),
        "{out}"
    );
    assert!(out.contains("wwan9 (mobile, priority 30, metered"), "{out}");
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let text = std::fs::read_to_string(example).unwrap();
    linkwatch::config::agent::AgentConfig::parse(&text, std::path::Path::new(example))
        .expect("config.example.toml parses");
}

#[test]
fn status_without_an_agent_says_so() {
    let text = "[agent]\nstatus_listen = \"127.0.0.1:1\"\n";
    let (code, _, err, _) = with_config(text, &["status"]);
    assert_eq!(code, 2);
    assert!(err.contains("is `linkwatch agent` running"), "{err}");
}

/// `validate` with a bus address where no bus listens (never the machine's own bus).
fn validate_without_bus(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, text).unwrap();
    let bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let out = Command::new(BIN)
        .args(["validate", "--config", path.to_str().unwrap()])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus)
        .output()
        .expect("run linkwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_says_which_failover_mode_applies_and_why() {
    let cfg = |mode: &str| {
        format!(
            "[discovery]\nenabled = false\n[failover]\nmode = \"{mode}\"\n[[link]]\nname = \"eth0\"\n"
        )
    };
    let (code, out, err) = validate_without_bus(&cfg("observe"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "failover: observe (failover.mode = \"observe\": measuring and reporting only, routes untouched)"
        ),
        "{out}"
    );
    // The default, on a machine without NetworkManager: observe, no warning.
    let (code, out, err) =
        validate_without_bus("[discovery]\nenabled = false\n[[link]]\nname = \"eth0\"\n");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("failover: observe (auto: NetworkManager is not running (no D-Bus system bus at unix:path="),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");
    // Asked for explicitly: the error and its fix.
    let (code, out, err) = validate_without_bus(&cfg("networkmanager"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "failover: observe (failover.mode = \"networkmanager\", but no D-Bus system bus at"
        ),
        "{out}"
    );
    assert!(
        out.contains("warning: cannot reach the D-Bus system bus at")
            && out.contains("systemctl start dbus"),
        "{out}"
    );
    // A misspelt mode is refused, naming the ones there are.
    let (code, _, err) = validate_without_bus(&cfg("network-manager"));
    assert_eq!(code, 2);
    assert!(
        err.contains("network-manager")
            && err.contains("`networkmanager`")
            && err.contains("`auto`"),
        "{err}"
    );
}

#[test]
fn completions_know_every_subcommand() {
    let (code, out, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("complete -F"),
        "a bash completion script: {out}"
    );
    for sub in ["agent", "status", "validate", "completions", "man"] {
        assert!(out.contains(sub), "{sub} missing");
    }
    #[cfg(feature = "collector")]
    assert!(out.contains("rotate"), "device rotate missing");
    let (code, out, _) = run(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("#compdef linkwatch"), "{out}");
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is refused: {err}");
    assert!(err.contains("bash"), "the valid shells are listed: {err}");
}

#[test]
fn man_pages_are_written_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let (code, out, err) = run(&["man", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "linkwatch",
        "linkwatch-agent",
        "linkwatch-status",
        "linkwatch-validate",
    ] {
        let path = out_dir.join(format!("{page}.1"));
        assert!(
            out.contains(path.to_str().unwrap()),
            "{page} not listed: {out}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(".TH "), "{page}: roff: {text}");
        assert!(text.contains(".SH NAME"), "{page}: {text}");
    }
    let agent = std::fs::read_to_string(out_dir.join("linkwatch-agent.1")).unwrap();
    assert!(
        agent.contains("SIGHUP"),
        "the subcommand's help is in its page"
    );
    assert!(agent.contains("log\\-format"), "its flags too: {agent}");
}

/// The agent-only build has no collector subcommands and says so for a collector config.
#[cfg(not(feature = "collector"))]
#[test]
fn the_agent_only_build_has_no_collector_side() {
    for sub in ["collector", "device", "office", "token", "report"] {
        let (code, _, err) = run(&[sub, "--help"]);
        assert_eq!(code, 2, "{sub}: {err}");
        assert!(err.contains("unrecognized subcommand"), "{sub}: {err}");
    }
    let (code, _, err) = with_config_named(
        "collector.toml",
        "[collector]\nlisten = \"127.0.0.1:8443\"\n",
        &["validate"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("agent-only build"), "{err}");
}

#[cfg(not(feature = "collector"))]
fn with_config_named(name: &str, text: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--config", path.to_str().unwrap()]);
    run(&a)
}
