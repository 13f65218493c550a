#!/usr/bin/env bash
# Writes patches/burn-flex.diff: the whole retrato change against burn-flex as published.
# The published crate is the one cargo unpacked for this build (run any cargo build first).
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' burn-flex/Cargo.toml | head -1)
published=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"burn-flex-$version" | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$published" "$tmp/a"
ln -s "$PWD/burn-flex" "$tmp/b"
# diff exits 1 when the trees differ, which is the point; timestamps dropped for stable diffs.
(cd "$tmp" && diff -ruN a/src b/src || true) | sed -E 's/^(---|\+\+\+) ([^\t]*)\t.*/\1 \2/' >burn-flex.diff
echo "patches/burn-flex.diff: $(grep -c '^+[^+]' burn-flex.diff) lines added, $(grep -c '^-[^-]' burn-flex.diff) removed"
