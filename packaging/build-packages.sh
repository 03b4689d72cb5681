#!/usr/bin/env bash
# Build linkwatch's packages: `linkwatch` (the full binary: agent and collector,
# both units) and `linkwatch-agent` (the agent-only binary and its unit, for
# laptops and gateways), as .deb (dpkg-deb) and .rpm (rpmbuild, when present).
#
# Usage: packaging/build-packages.sh [--full-bin FILE] [--agent-bin FILE]
#            [--version V] [--out DIR] [--no-rpm] [--fast]
# Without --full-bin/--agent-bin it makes both release builds first. The test
# suite (tests/packaging.sh) packages its debug builds the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

full_bin="" agent_bin="" version="" out="target/packages" rpm=yes level=9
while [ $# -gt 0 ]; do
    case "$1" in
    --full-bin) full_bin="$2"; shift 2 ;;
    --agent-bin) agent_bin="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --no-rpm) rpm=no; shift ;;
    --fast) level=1; shift ;;
    *) echo "build-packages.sh: unknown argument $1 (see the usage at the top of the script)" >&2; exit 2 ;;
    esac
done
[ -n "$version" ] || version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
tdir="${CARGO_TARGET_DIR:-target}"
if [ -z "$agent_bin" ]; then
    # Profile `agent`: size over speed (Cargo.toml).
    cargo build --profile agent --locked --no-default-features --features agent-only
    agent_bin="$tdir/agent/linkwatch"
fi
if [ -z "$full_bin" ]; then
    cargo build --release --locked
    full_bin="$tdir/release/linkwatch"
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deb_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
rpm_arch=$(uname -m)

# The newest glibc symbol version the binary uses: the lowest libc6 it runs on.
glibc_min() {
    objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1
}

# Files both packages carry: the binary (stripped), the agent's unit and its
# routes-mode drop-in (under /usr/share, for the operator to copy), the agent's
# config, the polkit rule for NetworkManager mode, man pages, completions, docs.
stage_common() {
    local root="$1" bin="$2" pkg="$3"
    install -D -m0755 "$bin" "$root/usr/bin/linkwatch"
    strip --strip-unneeded "$root/usr/bin/linkwatch"
    install -D -m0644 systemd/linkwatch-agent.service "$root/usr/lib/systemd/system/linkwatch-agent.service"
    install -D -m0644 systemd/linkwatch-agent.service.d/routes.conf \
        "$root/usr/share/linkwatch/linkwatch-agent.service.d/routes.conf"
    install -d -m0755 "$root/etc/linkwatch"
    install -D -m0644 config.example.toml "$root/etc/linkwatch/agent.toml"
    install -D -m0644 packaging/polkit/50-linkwatch-networkmanager.rules \
        "$root/usr/share/polkit-1/rules.d/50-linkwatch-networkmanager.rules"
    install -d -m0755 "$root/usr/share/man/man1"
    "$root/usr/bin/linkwatch" man "$root/usr/share/man/man1" >/dev/null
    gzip -9n "$root"/usr/share/man/man1/*.1
    install -d -m0755 "$root/usr/share/bash-completion/completions" \
        "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
    "$root/usr/bin/linkwatch" completions bash >"$root/usr/share/bash-completion/completions/linkwatch"
    "$root/usr/bin/linkwatch" completions zsh >"$root/usr/share/zsh/vendor-completions/_linkwatch"
    "$root/usr/bin/linkwatch" completions fish >"$root/usr/share/fish/vendor_completions.d/linkwatch.fish"
    local doc="$root/usr/share/doc/$pkg"
    install -D -m0644 README.md "$doc/README.md"
    install -m0644 CHANGELOG.md docs/*.md "$doc/"
    install -m0644 config.example.toml "$doc/"
    cat >"$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: linkwatch
Files: *
Copyright: linkwatch developers
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
    chmod 0644 "$doc/copyright"
}

# What only the full package adds: the collector's unit, config, user and
# directories.
stage_collector() {
    local root="$1"
    install -D -m0644 systemd/linkwatch-collector.service \
        "$root/usr/lib/systemd/system/linkwatch-collector.service"
    install -D -m0640 collector.example.toml "$root/etc/linkwatch/collector.toml"
    install -D -m0644 collector.example.toml "$root/usr/share/doc/linkwatch/collector.example.toml"
    install -D -m0644 packaging/sysusers.d/linkwatch-collector.conf \
        "$root/usr/lib/sysusers.d/linkwatch-collector.conf"
    install -D -m0644 packaging/tmpfiles.d/linkwatch-collector.conf \
        "$root/usr/lib/tmpfiles.d/linkwatch-collector.conf"
}

# make_deb ROOT PKG SUMMARY RELATIONS
make_deb() {
    local root="$1" pkg="$2" summary="$3" relations="$4"
    local bin="$root/usr/bin/linkwatch"
    mkdir -p "$root/DEBIAN"
    install -m0755 packaging/debian/"$pkg"/{postinst,prerm,postrm} "$root/DEBIAN/"
    (cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
        | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    local size
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<CONTROL
Package: $pkg
Version: $version
Architecture: $deb_arch
Maintainer: linkwatch developers <linkwatch@example.org>
Installed-Size: $size
Depends: libc6 (>= $(glibc_min "$bin")), libgcc-s1, systemd
$relations
Section: net
Priority: optional
Homepage: https://example.org/linkwatch
Description: $summary
 linkwatch measures every uplink of an officer's laptop or an office gateway
 through that link (broadband, Wi-Fi, mobile data), fails over between them,
 records every change durably and uploads the records to a collector, which
 computes uptime, alerts IT staff and serves reports.
CONTROL
    sed -i '/^$/d' "$root/DEBIAN/control"
    dpkg-deb --build --root-owner-group -Zxz -z"$level" "$root" "$out/${pkg}_${version}_${deb_arch}.deb" >/dev/null
    echo "$out/${pkg}_${version}_${deb_arch}.deb"
}

# make_rpm ROOT PKG SUMMARY RELATIONS: the same tree, scriptlets from the
# Debian ones (they take "configure"/"remove"/"purge"; RPM passes counts).
make_rpm() {
    local root="$1" pkg="$2" summary="$3" relations="$4"
    local spec="$work/$pkg.spec" top="$work/rpmbuild-$pkg"
    mkdir -p "$top"
    {
        echo "Name: $pkg"
        echo "Version: ${version//-/_}"
        echo "Release: 1"
        echo "Summary: $summary"
        echo "License: Apache-2.0"
        echo "URL: https://example.org/linkwatch"
        echo "Requires: systemd"
        [ -n "$relations" ] && echo "$relations"
        echo "%description"
        echo "linkwatch measures every uplink of a device through that link, fails over"
        echo "between them, records every change and uploads to a collector."
        echo "%install"
        echo "cp -a $root/. %{buildroot}/"
        echo "rm -rf %{buildroot}/DEBIAN"
        echo "%post"
        echo "set -- configure \"\$( [ \"\$1\" -gt 1 ] && echo upgrade )\""
        sed '1d' "packaging/debian/$pkg/postinst"
        echo "%preun"
        echo "[ \"\$1\" -eq 0 ] || exit 0"
        echo "set -- remove"
        sed '1d' "packaging/debian/$pkg/prerm"
        echo "%postun"
        echo "[ \"\$1\" -eq 0 ] || exit 0"
        echo "set -- remove"
        sed '1d' "packaging/debian/$pkg/postrm"
        echo "%files"
        echo "%defattr(-,root,root,-)"
        (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort) | while read -r f; do
            case "$f" in
            etc/*) echo "%config(noreplace) /$f" ;;
            *) echo "/$f" ;;
            esac
        done
        echo "%dir /etc/linkwatch"
    } >"$spec"
    rpmbuild -bb --quiet --define "_topdir $top" --define "_rpmdir $out" \
        --define '_build_id_links none' --define '__os_install_post %{nil}' \
        --define "_binary_payload w${level}.xzdio" \
        --define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' \
        --target "$rpm_arch" "$spec" >/dev/null
    echo "$out/$pkg-${version//-/_}-1.$rpm_arch.rpm"
}

full_root="$work/linkwatch" agent_root="$work/linkwatch-agent"
stage_common "$full_root" "$full_bin" linkwatch
stage_collector "$full_root"
stage_common "$agent_root" "$agent_bin" linkwatch-agent

deb_full=$(make_deb "$full_root" linkwatch "connectivity monitoring: agent and collector" \
    "Provides: linkwatch-agent
Conflicts: linkwatch-agent
Replaces: linkwatch-agent")
deb_agent=$(make_deb "$agent_root" linkwatch-agent "connectivity monitoring: the agent alone" \
    "Conflicts: linkwatch
Replaces: linkwatch")
echo "$deb_full"
echo "$deb_agent"
if [ "$rpm" = yes ]; then
    if command -v rpmbuild >/dev/null; then
        make_rpm "$full_root" linkwatch "connectivity monitoring: agent and collector" \
            "Provides: linkwatch-agent
Conflicts: linkwatch-agent"
        make_rpm "$agent_root" linkwatch-agent "connectivity monitoring: the agent alone" \
            "Conflicts: linkwatch"
    else
        echo "build-packages.sh: no rpmbuild (Debian: apt-get install rpm): .rpm skipped" >&2
    fi
fi
