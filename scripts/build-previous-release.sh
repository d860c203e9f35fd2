#!/usr/bin/env bash
# Builds the previous release's icnd and icnctl into target/previous-release/,
# for `the_previous_release_and_this_one_interoperate_during_a_rolling_upgrade`
# (two adjacent versions in one co-op). The release is a commit of this
# repository, exported with `git archive` (the repository is not touched)
# and built into this tree's target/ directory, so the dependencies it
# shares with this version are compiled once. Run it before `cargo test`
# (.ci/run does); it does nothing when the binaries are there.
set -euo pipefail
cd "$(dirname "$0")/.."

# 0.1.0: the release the pilot started with (main at the end of 2026-11-22's
# first sessions). When a release ships, move this to it.
release=1dafe5daeaf65aea6fd914ce66fb042f05058c30
out=target/previous-release
[ -x "$out/icnd" ] && [ -x "$out/icnctl" ] && [ "$(cat "$out/commit" 2>/dev/null)" = "$release" ] && exit 0

mkdir -p "$out"
rm -f "$out/unavailable"
if ! git cat-file -e "$release^{commit}" 2>/dev/null; then
  # A shallow clone: fetch the history it lacks from where it came from.
  git fetch --quiet --unshallow 2>/dev/null || git fetch --quiet origin "$release" 2>/dev/null || true
fi
if ! git cat-file -e "$release^{commit}" 2>/dev/null; then
  echo "commit $release is not in this clone's history (a shallow clone without its origin?)" | tee "$out/unavailable" >&2
  exit 0
fi
src=target/previous-release-src
rm -rf "$src"
mkdir -p "$src"
git archive "$release" | tar -x -C "$src"
# Its own workspace, this tree's target directory: the registry crates it
# shares with this version are not compiled twice.
CARGO_TARGET_DIR="$PWD/target" cargo build --locked --bins -p icn-cli --manifest-path "$src/Cargo.toml"
cp target/debug/icnd target/debug/icnctl "$out/"
echo "$release" > "$out/commit"
rm -rf "$src"
# This version's own binaries were overwritten: `cargo test` builds them again.
rm -f target/debug/icnd target/debug/icnctl
echo "previous release $release: $out/icnd, $out/icnctl"
