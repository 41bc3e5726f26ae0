#!/usr/bin/env bash
# Runs every test of dispatchd. Works on a fresh checkout: it sets up what it
# needs itself. CI (`.ci/run`) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# A fresh machine gains nothing from incremental state; it only costs disk.
export CARGO_INCREMENTAL=0

echo "== redis-server (the loadtest's Redis-GEO baseline; scale-out tests)"
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  # The Debian package starts a system instance; the tests start their own.
  (service redis-server stop || systemctl stop redis-server) >/dev/null 2>&1 || true
fi
redis-server --version

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

echo "== the same end-to-end tests on the other backend: a one-node cluster on its own redis-server"
# Same test code, a parameter (E2E_BACKEND) in the harness: every Server gets
# a private redis-server and DISPATCHD_REDIS_URL. (cluster.rs runs 2-3 nodes itself.)
# `--workspace` keeps the feature set of the first run, so nothing is rebuilt.
E2E_BACKEND=redis cargo test --workspace --test http_api --test dispatch --test process --test abuse --test history --test resume --test chaos --test time --test notify --test properties --test maintenance --test stock --test triage --test payments --test attachments
