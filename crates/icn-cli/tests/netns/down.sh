#!/usr/bin/env bash
# Removes what up.sh made.
P=${1:?usage: down.sh PREFIX}
for n in net hub r1 r2 h1 h2 h1b; do ip netns del "$P-$n" 2>/dev/null || true; done
