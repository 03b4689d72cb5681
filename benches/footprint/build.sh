#!/bin/sh
# Build both binaries the footprint benchmark compares and keep them side by
# side in target/footprint/: the agent-only build and the full one. Prints
# the cold-build time of each when the release directory was empty.
set -eu
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target/footprint"
build() { # name, profile, cargo flags...
    name=$1; profile=$2; shift 2
    start=$(date +%s)
    nice -n 19 cargo build --profile "$profile" --locked "$@"
    end=$(date +%s)
    cp "$target/$profile/linkwatch" "$target/footprint/linkwatch-$name"
    echo "built linkwatch-$name in $((end - start)) s" >&2
}
# The agent-only package's build: profile `agent` (size over speed).
build agent agent --no-default-features --features agent-only
build full release
