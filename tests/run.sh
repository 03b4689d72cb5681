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
        python3 -m venv "$venv" && "$venv/bin/pip" install -q aiosmtpd \
            || echo "tests/run.sh: cannot install aiosmtpd: the alert mail tests will skip" >&2
    fi
    if "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
        LINKWATCH_TEST_PYTHON="$(cd "$venv/bin" && pwd)/python"
        export LINKWATCH_TEST_PYTHON
    fi
fi

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --no-fail-fast -- --test-threads=4
