//! NetworkManager's connectivity-check settings from its configuration files: the interval
//! is not on D-Bus (the URI and the run-time switch are, see [`super::dbus`]).
//!
//! Files are read the way NetworkManager reads them: `NetworkManager.conf`, then the
//! `conf.d/*.conf` files of `/usr/lib`, `/run` and `/etc` in the order of their names (a file
//! in `/etc` hides one of the same name in `/run` or `/usr/lib`); later settings win.
//! [`parse`] is pure; [`read`] collects the files under a root directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The `[connectivity]` keys that matter here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectivitySettings {
    pub uri: Option<String>,
    /// `interval` (seconds; 0 switches checking off).
    pub interval: Option<Duration>,
    pub enabled: Option<bool>,
}

/// The `[connectivity]` settings of `files` (name, text), later files winning.
pub fn parse(files: &[(String, String)]) -> ConnectivitySettings {
    let mut out = ConnectivitySettings::default();
    for (_, text) in files {
        let mut in_section = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_section = name.trim() == "connectivity";
                continue;
            }
            if !in_section {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "uri" => out.uri = (!value.is_empty()).then(|| value.to_string()),
                "interval" => {
                    if let Ok(s) = value.parse::<u64>() {
                        out.interval = Some(Duration::from_secs(s));
                    }
                }
                "enabled" => match value {
                    "true" | "yes" | "1" | "on" => out.enabled = Some(true),
                    "false" | "no" | "0" | "off" => out.enabled = Some(false),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    out
}

/// The configuration files under `root` (`/` on a real system), in NetworkManager's order.
pub fn read(root: &Path) -> Vec<(String, String)> {
    let mut files = vec![];
    let main = root.join("etc/NetworkManager/NetworkManager.conf");
    if let Ok(text) = std::fs::read_to_string(&main) {
        files.push((main.display().to_string(), text));
    }
    // Name -> path; a later directory hides an earlier one's file of the same name.
    let mut confd: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for dir in [
        "usr/lib/NetworkManager/conf.d",
        "run/NetworkManager/conf.d",
        "etc/NetworkManager/conf.d",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") && !name.starts_with('.') {
                confd.insert(name, e.path());
            }
        }
    }
    for path in confd.into_values() {
        if let Ok(text) = std::fs::read_to_string(&path) {
            files.push((path.display().to_string(), text));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str) -> (String, String) {
        ("x".into(), text.into())
    }

    #[test]
    fn later_files_win_and_other_sections_are_ignored() {
        let s = parse(&[
            f("[main]\ninterval=5\n[connectivity]\nuri=http://a/\ninterval=300\n"),
            f("# comment\n[connectivity]\ninterval = 60\nenabled=false\n[logging]\nuri=x\n"),
        ]);
        assert_eq!(
            s,
            ConnectivitySettings {
                uri: Some("http://a/".into()),
                interval: Some(Duration::from_secs(60)),
                enabled: Some(false),
            }
        );
        assert_eq!(parse(&[]), ConnectivitySettings::default());
        assert_eq!(parse(&[f("[connectivity]\nuri=\n")]).uri, None);
    }

    #[test]
    fn files_are_read_in_networkmanagers_order() {
        let root = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let p = root.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        w(
            "etc/NetworkManager/NetworkManager.conf",
            "[connectivity]\ninterval=10\nuri=http://main/\n",
        );
        w(
            "usr/lib/NetworkManager/conf.d/20-connectivity.conf",
            "[connectivity]\ninterval=20\n",
        );
        // Hidden by the /etc file of the same name.
        w(
            "run/NetworkManager/conf.d/30-x.conf",
            "[connectivity]\ninterval=30\n",
        );
        w("etc/NetworkManager/conf.d/30-x.conf", "[connectivity]\n");
        w(
            "etc/NetworkManager/conf.d/10-a.conf",
            "[connectivity]\ninterval=5\n",
        );
        w(
            "etc/NetworkManager/conf.d/99-z.txt",
            "[connectivity]\ninterval=99\n",
        );
        let s = parse(&read(root.path()));
        // main 10, then 10-a (5), 20-connectivity (20), 30-x (nothing).
        assert_eq!(s.interval, Some(Duration::from_secs(20)));
        assert_eq!(s.uri.as_deref(), Some("http://main/"));
    }
}
