#!/bin/sh
# Build the collector of an earlier revision for `cargo bench --bench ingest
# -- versus` (default 5d874c5: main before the packed store, one row per
# record). Checks the revision out in a throwaway worktree, builds it with
# its own lock file (release profile) in target/versus/build and leaves the
# binary at target/versus/linkwatch-REV. Prints the binary's path.
set -eu
cd "$(dirname "$0")/../.."
rev="${1:-5d874c5}"
target="${CARGO_TARGET_DIR:-target}"
out="$target/versus"
mkdir -p "$out"
out=$(cd "$out" && pwd)
work="$out/src-$rev"
rm -rf "$work"
git worktree prune
git worktree add --detach "$work" "$rev" >/dev/null
trap 'git worktree remove --force "$work"' EXIT
(cd "$work" && CARGO_TARGET_DIR="$out/build" nice -n 19 cargo build --release --locked >&2)
cp "$out/build/release/linkwatch" "$out/linkwatch-$rev"
echo "$out/linkwatch-$rev"
