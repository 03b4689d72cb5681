#!/bin/sh
# Build both binaries the footprint benchmark compares and keep them side by
# side in target/footprint/: the agent-only build and the full one. Prints
# the cold-build time of each when the release directory was empty.
set -eu
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target/footprint"
build() { # name, cargo flags...
    name=$1; shift
    start=$(date +%s)
    nice -n 19 cargo build --release --locked "$@"
    end=$(date +%s)
    cp "$target/release/linkwatch" "$target/footprint/linkwatch-$name"
    echo "built linkwatch-$name in $((end - start)) s" >&2
}
build agent --no-default-features --features agent
build full
