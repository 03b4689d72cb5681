#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (when root and missing), then format check, clippy, and every test.
# Tests that need root (network namespaces) skip with a message when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v nft >/dev/null || need_pkgs+=(nftables)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need_pkgs+=(dnsmasq-base)
command -v ping >/dev/null || need_pkgs+=(iputils-ping)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v python3 >/dev/null || need_pkgs+=(python3)
# A venv for aiosmtpd (the alert mail tests) needs ensurepip (Debian: python3-venv).
python3 -c 'import ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
command -v setpriv >/dev/null || need_pkgs+=(util-linux)
command -v conntrack >/dev/null || need_pkgs+=(conntrack)
command -v faketime >/dev/null || need_pkgs+=(faketime)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql-15)
command -v dbus-daemon >/dev/null || need_pkgs+=(dbus)
command -v nsenter >/dev/null || need_pkgs+=(util-linux)
# systemd-analyze verify/security for tests/systemd_units.rs (the package only; nothing is
# booted or started by installing it).
command -v systemd-analyze >/dev/null || need_pkgs+=(systemd)
# tests/packaging.sh: dpkg-deb and rpmbuild build the packages, objdump and strip
# read and strip the binaries.
command -v dpkg-deb >/dev/null || need_pkgs+=(dpkg)
command -v rpmbuild >/dev/null || need_pkgs+=(rpm)
command -v objdump >/dev/null || need_pkgs+=(binutils)
# tests/dashboard_browser.rs: Debian's chromium (driven by Playwright, below) and a
# Bengali font so Bangla pages render in its screenshots.
command -v chromium >/dev/null || need_pkgs+=(chromium)
dpkg -s fonts-beng-extra >/dev/null 2>&1 || need_pkgs+=(fonts-beng-extra)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "tests/run.sh: installing ${need_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
    else
        echo "tests/run.sh: missing ${need_pkgs[*]}: tests that need them will skip" >&2
    fi
fi

# A real NetworkManager for tests/networkmanager_netns.rs and benches/networkmanager.rs. The
# tests start it only inside network namespaces they create, with a private bus and config:
# the machine itself must never get a NetworkManager managing its real interfaces. So the
# package's service is kept from starting during the installation (policy-rc.d) and masked
# so that it never starts at boot either. Only done when this script installs it: an existing
# NetworkManager is left as it is.
if ! command -v NetworkManager >/dev/null && [ ! -x /usr/sbin/NetworkManager ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "tests/run.sh: installing network-manager (its service masked: it runs only inside the tests' namespaces)"
        export DEBIAN_FRONTEND=noninteractive
        guard=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            guard=/usr/sbin/policy-rc.d
        fi
        if command -v systemctl >/dev/null; then
            # Masked before the package exists, so no unit of it can start even once.
            systemctl mask NetworkManager.service NetworkManager-wait-online.service \
                NetworkManager-dispatcher.service >/dev/null 2>&1 || true
        fi
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends network-manager >/dev/null
        [ -n "$guard" ] && rm -f "$guard"
    else
        echo "tests/run.sh: missing network-manager: NetworkManager tests will skip" >&2
    fi
fi

# PostgreSQL 15 for the storage tests (the same tests also run on SQLite).
if [ -z "${LINKWATCH_TEST_PG_URL:-}" ] && [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then
    if ! pg_lsclusters 2>/dev/null | grep -q '^15 *main'; then
        pg_createcluster 15 main >/dev/null
    fi
    pg_ctlcluster 15 main start 2>/dev/null || true
    for _ in $(seq 1 50); do
        su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
        sleep 0.2
    done
    su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='linkwatch_test'\"" | grep -q 1 \
        || su postgres -c "psql -qc \"create role linkwatch_test login password 'linkwatch_test' createdb\""
    su postgres -c "psql -qtAc \"select 1 from pg_database where datname='linkwatch_test'\"" | grep -q 1 \
        || su postgres -c "psql -qc 'create database linkwatch_test owner linkwatch_test'"
    export LINKWATCH_TEST_PG_URL="postgres://linkwatch_test:linkwatch_test@127.0.0.1:5432/linkwatch_test"
fi
if [ -z "${LINKWATCH_TEST_PG_URL:-}" ]; then
    echo "tests/run.sh: no PostgreSQL (set LINKWATCH_TEST_PG_URL or run as root): PostgreSQL tests will skip" >&2
fi

# Python's aiosmtpd, a real SMTP server for the alert mail tests
# (tests/alert_channels.rs), from PyPI into a venv under target/ (the
# system's Python stays as it is). Without it those tests skip.
if [ -z "${LINKWATCH_TEST_PYTHON:-}" ]; then
    venv="${CARGO_TARGET_DIR:-target}/test-venv"
    if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
        python3 -m venv "$venv" && "$venv/bin/python" -m pip install -q aiosmtpd \
            || echo "tests/run.sh: cannot install aiosmtpd: the alert mail tests will skip" >&2
    fi
    # Playwright for Python drives the system's chromium in the dashboard's browser
    # test (its own browser download is neither needed nor run).
    if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import playwright' 2>/dev/null; then
        "$venv/bin/python" -m pip install -q playwright \
            || echo "tests/run.sh: cannot install playwright: the dashboard's browser test will skip" >&2
    fi
    if "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
        LINKWATCH_TEST_PYTHON="$(cd "$venv/bin" && pwd)/python"
        export LINKWATCH_TEST_PYTHON
    fi
fi

cargo fmt --check
# Clippy runs inside the builds the tests need, not as builds of their own:
# clippy-driver wraps rustc for this package's own crates (what `cargo clippy`
# does), so each target is linted and compiled in one pass and the
# dependencies are compiled once, not once checked and once built. Same lints
# and the same `-D warnings` as `cargo clippy --all-targets -- -D warnings`.
# Incremental compilation only costs time in a one-off build.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
export CARGO_INCREMENTAL=0
# Every target built once (tests, and benches so that they are linted), then
# the test binaries run two at a time, longest first (tests/run_binaries.py):
# most of the suite's time is tests waiting on timers inside network
# namespaces, and `cargo test` runs binaries one by one. Every binary runs
# even when one fails; the summary names the failures.
artifacts="${CARGO_TARGET_DIR:-target}/test-artifacts.json"
cargo test --locked --all-targets --no-run --timings --message-format=json-render-diagnostics >"$artifacts"
python3 tests/run_binaries.py "$artifacts" --lanes 2 -- --test-threads=4
cargo test --locked --doc
# The binaries the test builds made, kept for the package test (which then
# builds neither again): the full one now, the agent-only one after its tests.
bins="${CARGO_TARGET_DIR:-target}"
cp "$bins/debug/linkwatch" "$bins/linkwatch-full.bin"
# The agent-only build (no collector, PostgreSQL, TLS server, mail): every
# target linted and built, then its command line and systemd notifications run.
cargo test --locked --no-default-features --features agent-only --all-targets --no-run
cargo test --locked --no-default-features --features agent-only --test cli --test sd_notify --bin linkwatch
cp "$bins/debug/linkwatch" "$bins/linkwatch-agent.bin"
# The .deb and .rpm packages, installed into a throwaway root (needs root; skips otherwise).
LINKWATCH_PKG_FULL_BIN="$bins/linkwatch-full.bin" LINKWATCH_PKG_AGENT_BIN="$bins/linkwatch-agent.bin" \
    bash tests/packaging.sh
