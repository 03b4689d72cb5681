#!/usr/bin/env bash
# Build a .deb of linkwatch from a release build. Usage: packaging/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m0755 target/release/linkwatch "$root/usr/bin/linkwatch"
install -D -m0644 config.example.toml "$root/etc/linkwatch/agent.toml"
install -D -m0644 systemd/linkwatch-agent.service "$root/lib/systemd/system/linkwatch-agent.service"
install -D -m0644 packaging/polkit/50-linkwatch-networkmanager.rules \
    "$root/usr/share/polkit-1/rules.d/50-linkwatch-networkmanager.rules"
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: linkwatch
Version: $version
Architecture: $arch
Maintainer: linkwatch developers
Description: connectivity monitoring for officers' devices and office gateways
CONTROL
echo "/etc/linkwatch/agent.toml" > "$root/DEBIAN/conffiles"
mkdir -p target/deb
dpkg-deb --build --root-owner-group "$root" "target/deb/linkwatch_${version}_${arch}.deb"
