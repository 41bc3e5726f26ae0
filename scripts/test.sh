#!/usr/bin/env bash
# Runs every test of dispatchd. Works on a fresh checkout: it sets up what it
# needs itself. CI (`.ci/run`) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

echo "== the engine stays pure (no tokio, axum, sled, redis or hyper)"
impure=$(cargo tree -p engine -e normal --prefix none | grep -E '^(tokio|axum|sled|redis|hyper) ' | sort -u || true)
if [ -n "$impure" ]; then
  echo "engine depends on I/O crates:"
  echo "$impure"
  exit 1
fi

echo "== tests (unit, property, stress, end-to-end) and a one-pass smoke run of every benchmark"
# SIZES keeps the criterion smoke pass to small fleets; the real runs are in BENCHMARKS.md.
SIZES=1000 cargo test --workspace --all-targets
