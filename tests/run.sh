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

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked -- --test-threads=4
