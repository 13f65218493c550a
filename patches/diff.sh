#!/usr/bin/env bash
# Writes patches/CRATE.diff for each patched crate (each folder here, or the ones named):
# the whole retrato change against the crate as published. The published crate is the one
# cargo unpacked for this build (run any cargo build first).
# Usage: bash patches/diff.sh [CRATE ...]
set -euo pipefail
cd "$(dirname "$0")"
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=($(ls -d */ | tr -d /))
for crate in "${crates[@]}"; do
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$crate/Cargo.toml" | head -1)
    published=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate-$version" | head -1)
    tmp=$(mktemp -d)
    ln -s "$published" "$tmp/a"
    ln -s "$PWD/$crate" "$tmp/b"
    # diff exits 1 when the trees differ, which is the point; timestamps dropped for stable diffs.
    (cd "$tmp" && diff -ruN a/src b/src || true) | sed -E 's/^(---|\+\+\+) ([^\t]*)\t.*/\1 \2/' >"$crate.diff"
    rm -rf "$tmp"
    echo "patches/$crate.diff: $(grep -c '^+[^+]' "$crate.diff") lines added, $(grep -c '^-[^-]' "$crate.diff") removed"
done
