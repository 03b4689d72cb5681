#!/usr/bin/env bash
# The packages as an operator meets them: build `linkwatch` and `linkwatch-agent`
# (.deb and .rpm) from the debug builds with packaging/build-packages.sh, install
# the .debs into a throwaway root this script makes (dpkg --root, the maintainer
# scripts run against it through DPKG_ROOT), and check files, modes, the
# collector's user, `linkwatch --version`, `systemd-analyze verify` of the
# installed units, an upgrade that keeps an edited config and the data, remove
# (data kept) and purge (data gone), the switch between the two packages, and
# the .rpm's contents. Needs root (dpkg --root sets owners); skips otherwise.
# Run by tests/run.sh after `cargo test`; by hand: bash tests/packaging.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "SKIP tests/packaging.sh: needs root (dpkg --root sets file owners)" >&2
    exit 0
fi
for tool in dpkg dpkg-deb systemd-sysusers systemd-tmpfiles objdump strip; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP tests/packaging.sh: $tool missing (tests/run.sh installs it)" >&2
        exit 0
    fi
done

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
check() { # check DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

tdir="${CARGO_TARGET_DIR:-target}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The agent-only and the full debug binaries: the ones tests/run.sh kept from its
# test builds (LINKWATCH_PKG_AGENT_BIN, LINKWATCH_PKG_FULL_BIN), or built here.
if [ -x "${LINKWATCH_PKG_AGENT_BIN:-}" ] && [ -x "${LINKWATCH_PKG_FULL_BIN:-}" ]; then
    cp "$LINKWATCH_PKG_AGENT_BIN" "$work/agent-bin"
    cp "$LINKWATCH_PKG_FULL_BIN" "$work/full-bin"
else
    cargo build --locked --quiet --no-default-features --features agent-only
    cp "$tdir/debug/linkwatch" "$work/agent-bin"
    cargo build --locked --quiet
    cp "$tdir/debug/linkwatch" "$work/full-bin"
fi
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
build() { # build VERSION OUTDIR [--no-rpm]
    bash packaging/build-packages.sh --fast --full-bin "$work/full-bin" \
        --agent-bin "$work/agent-bin" --version "$1" --out "$2" "${@:3}" >/dev/null
}
build "$version" "$work/v1"
build "$version.1" "$work/v2" --no-rpm
deb_full="$work/v1/linkwatch_${version}_$(dpkg --print-architecture).deb"
deb_agent="$work/v1/linkwatch-agent_${version}_$(dpkg --print-architecture).deb"
deb_full2="$work/v2/linkwatch_${version}.1_$(dpkg --print-architecture).deb"
ls -l "$work"/v1 "$work"/v2

# A throwaway root: an empty dpkg database and the passwd/group files a
# minimal system has.
R="$work/root"
new_root() {
    rm -rf "$R"
    mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/etc" "$R/usr/lib" "$R/var/lib"
    : >"$R/var/lib/dpkg/status"
    : >"$R/var/lib/dpkg/available"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
    printf 'root:x:0:\n' >"$R/etc/group"
    printf 'root:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
    printf 'root:*::\n' >"$R/etc/gshadow"
}
# The package's Depends (libc6, systemd) are the host's, not in the root.
dpkg_r() {
    dpkg --root="$R" --force-script-chrootless --force-depends --log="$work/dpkg.log" "$@"
}
mode_of() { stat -c '%a' "$R/$1"; }
owner_of() { stat -c '%u:%g' "$R/$1"; }
uid_in_root() { awk -F: -v n="$1" '$1 == n { print $3 }' "$R/etc/passwd"; }
gid_in_root() { awk -F: -v n="$1" '$1 == n { print $3 }' "$R/etc/group"; }
installed_version() {
    dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${Version} ${db:Status-Abbrev}' "$1" 2>/dev/null || true
}

echo "== linkwatch (full) into a fresh root"
new_root
dpkg_r -i "$deb_full" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i linkwatch"; }
check "installed as version $version" [ "$(installed_version linkwatch)" = "$version ii " ]
check "binary 0755" [ "$(mode_of usr/bin/linkwatch)" = 755 ]
check "linkwatch --version runs" sh -c "'$R/usr/bin/linkwatch' --version | grep -qx 'linkwatch $version'"
for f in usr/lib/systemd/system/linkwatch-agent.service usr/lib/systemd/system/linkwatch-collector.service \
    etc/linkwatch/agent.toml usr/share/man/man1/linkwatch.1.gz usr/share/man/man1/linkwatch-agent.1.gz \
    usr/share/man/man1/linkwatch-collector.1.gz usr/share/bash-completion/completions/linkwatch \
    usr/share/zsh/vendor-completions/_linkwatch usr/share/fish/vendor_completions.d/linkwatch.fish \
    usr/share/polkit-1/rules.d/50-linkwatch-networkmanager.rules \
    usr/share/linkwatch/linkwatch-agent.service.d/routes.conf usr/share/doc/linkwatch/operations.md \
    usr/share/doc/linkwatch/copyright; do
    check "installs /$f" [ -f "$R/$f" ]
done
check "conffiles are the configs" [ "$(sort "$R/var/lib/dpkg/info/linkwatch.conffiles" | tr '\n' ' ')" \
    = "/etc/linkwatch/agent.toml /etc/linkwatch/collector.toml " ]
uid=$(uid_in_root linkwatch-collector)
gid=$(gid_in_root linkwatch-collector)
check "postinst made the system user linkwatch-collector" sh -c "[ -n '$uid' ] && [ '$uid' -lt 1000 ]"
check "its shell is nologin" sh -c "grep -q '^linkwatch-collector:.*nologin' '$R/etc/passwd'"
check "collector.toml 0640 root:linkwatch-collector" \
    [ "$(mode_of etc/linkwatch/collector.toml) $(owner_of etc/linkwatch/collector.toml)" = "640 0:$gid" ]
check "state directory 0700 linkwatch-collector" \
    [ "$(mode_of var/lib/linkwatch-collector) $(owner_of var/lib/linkwatch-collector)" = "700 $uid:$gid" ]
check "nothing enabled: no wants symlink" sh -c "! find '$R/etc' -name 'linkwatch-*.service' -type l | grep -q ."
# Every Documentation=man: page a unit names is installed.
for unit in "$R"/usr/lib/systemd/system/linkwatch-*.service; do
    for page in $(grep -o 'man:[a-z-]*([0-9])' "$unit" | sed 's/man:\(.*\)(\([0-9]\))/\1.\2/'); do
        check "$(basename "$unit") names an installed man page $page" [ -f "$R/usr/share/man/man1/$page.gz" ]
    done
done

# The installed units as systemd reads them: the machine's system units beside
# ours, kill(1) for ExecReload.
if command -v systemd-analyze >/dev/null && [ -e /usr/lib/systemd/system/sysinit.target ]; then
    cp -an /usr/lib/systemd/system/. "$R/usr/lib/systemd/system/"
    [ -e "$R/bin" ] || ln -s usr/bin "$R/bin"
    cp "$(for k in /usr/bin/kill /bin/kill; do [ -x "$k" ] && echo "$k" && break; done)" "$R/usr/bin/kill"
    if systemd-analyze verify --man=no --root="$R" linkwatch-agent.service linkwatch-collector.service \
        >"$work/verify.log" 2>&1 && ! grep -q linkwatch "$work/verify.log"; then
        ok "systemd-analyze verify of the installed units"
    else
        cat "$work/verify.log"; fail "systemd-analyze verify of the installed units"
    fi
else
    echo "SKIP systemd-analyze verify: systemd-analyze or the system units missing" >&2
fi

echo "== upgrade keeps an edited config and the data"
echo '# edited by the operator' >>"$R/etc/linkwatch/agent.toml"
echo 'records' >"$R/var/lib/linkwatch-collector/collector.db"
dpkg_r --force-confold -i "$deb_full2" >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "dpkg -i (upgrade)"; }
check "upgraded to $version.1" [ "$(installed_version linkwatch)" = "$version.1 ii " ]
check "edited agent.toml kept" grep -q '^# edited by the operator' "$R/etc/linkwatch/agent.toml"
check "collector data kept" grep -qx records "$R/var/lib/linkwatch-collector/collector.db"
check "collector.toml still 0640 root:linkwatch-collector" \
    [ "$(mode_of etc/linkwatch/collector.toml) $(owner_of etc/linkwatch/collector.toml)" = "640 0:$gid" ]

echo "== remove keeps data and config; purge deletes them"
echo 'secret' >"$R/etc/linkwatch/agent.token"
dpkg_r -r linkwatch >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dpkg -r"; }
check "binary gone after remove" [ ! -e "$R/usr/bin/linkwatch" ]
check "data kept after remove" [ -f "$R/var/lib/linkwatch-collector/collector.db" ]
check "config and token kept after remove" test -f "$R/etc/linkwatch/agent.toml" -a -f "$R/etc/linkwatch/agent.token"
dpkg_r -P linkwatch >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg -P"; }
check "data gone after purge" [ ! -e "$R/var/lib/linkwatch-collector" ]
check "config and token gone after purge" [ ! -e "$R/etc/linkwatch" ]
check "package forgotten after purge" [ -z "$(installed_version linkwatch)" ]

echo "== linkwatch-agent (agent-only) and the switch to the full package"
new_root
dpkg_r -i "$deb_agent" >"$work/agent.log" 2>&1 || { cat "$work/agent.log"; fail "dpkg -i linkwatch-agent"; }
check "agent-only binary runs" sh -c "'$R/usr/bin/linkwatch' --version | grep -qx 'linkwatch $version'"
check "agent-only binary has no collector subcommand" sh -c "! '$R/usr/bin/linkwatch' collector --help >/dev/null 2>&1"
check "agent package ships no collector unit" [ ! -e "$R/usr/lib/systemd/system/linkwatch-collector.service" ]
check "agent package makes no user" [ -z "$(uid_in_root linkwatch-collector)" ]
check "agent.toml is a conffile" grep -qx /etc/linkwatch/agent.toml "$R/var/lib/dpkg/info/linkwatch-agent.conffiles"
echo '# edited on the laptop' >>"$R/etc/linkwatch/agent.toml"
dpkg_r --force-confold -i "$deb_full" >"$work/switch.log" 2>&1 || { cat "$work/switch.log"; fail "switch to linkwatch"; }
check "full package replaced the agent package" \
    test "$(installed_version linkwatch-agent)" != "$version ii " -a "$(installed_version linkwatch)" = "$version ii "
check "collector subcommand present after the switch" "$R/usr/bin/linkwatch" collector --help >/dev/null

echo "== .rpm contents"
rpm_full="$work/v1/linkwatch-$version-1.$(uname -m).rpm"
rpm_agent="$work/v1/linkwatch-agent-$version-1.$(uname -m).rpm"
if command -v rpm >/dev/null && [ -f "$rpm_full" ]; then
    check "rpm lists the collector unit" sh -c "rpm -qlp '$rpm_full' 2>/dev/null | grep -qx /usr/lib/systemd/system/linkwatch-collector.service"
    check "rpm agent.toml is %config(noreplace)" sh -c "rpm -qcp '$rpm_agent' 2>/dev/null | grep -qx /etc/linkwatch/agent.toml"
    check "rpm collector.toml mode 0640" sh -c "rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' '$rpm_full' 2>/dev/null | grep -qx -- '-rw-r----- /etc/linkwatch/collector.toml'"
    check "rpm %post makes the user" sh -c "rpm -qp --scripts '$rpm_full' 2>/dev/null | grep -q 'systemd-sysusers'"
    check "rpm agent package ships no collector unit" sh -c "! rpm -qlp '$rpm_agent' 2>/dev/null | grep -q linkwatch-collector.service"
    # Files land where the list says (scriptlets need a chroot with a shell: not run here).
    RR="$work/rpmroot"
    mkdir -p "$RR"
    if rpm --root "$RR" --initdb 2>/dev/null && rpm --root "$RR" -i --nodeps --noscripts "$rpm_agent" 2>"$work/rpm.log"; then
        check "rpm installs the agent binary 0755" [ "$(stat -c %a "$RR/usr/bin/linkwatch")" = 755 ]
        check "rpm-installed agent runs" sh -c "'$RR/usr/bin/linkwatch' --version | grep -qx 'linkwatch $version'"
    else
        cat "$work/rpm.log"; fail "rpm -i into a throwaway root"
    fi
else
    echo "SKIP .rpm checks: rpm/rpmbuild missing (tests/run.sh installs the rpm package)" >&2
fi

echo "== package and binary sizes"
ls -l "$work"/v1/*.deb "$work"/v1/*.rpm 2>/dev/null | awk '{print $5, $9}'
if [ "$failures" -gt 0 ]; then
    echo "tests/packaging.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "tests/packaging.sh: all checks passed"
