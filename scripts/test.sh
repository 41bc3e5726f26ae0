#!/usr/bin/env bash
# Runs every test of dispatchd. Works on a fresh checkout: it sets up what it
# needs itself. CI (`.ci/run`) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# A fresh machine gains nothing from incremental state; it only costs disk.
export CARGO_INCREMENTAL=0

# Debian packages the tests need, when missing (the package lists are
# refreshed once, first).
updated=
install_packages() {
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  if [ -z "$updated" ]; then
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    updated=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

echo "== redis-server (the loadtest's Redis-GEO baseline; scale-out tests)"
if ! command -v redis-server >/dev/null 2>&1; then
  install_packages redis-server
  # The Debian package starts a system instance; the tests start their own.
  (service redis-server stop || systemctl stop redis-server) >/dev/null 2>&1 || true
fi
redis-server --version

echo "== promtool (checks /metrics and the Grafana dashboard's queries)"
if ! command -v promtool >/dev/null 2>&1; then
  install_packages prometheus
  # Only its promtool is wanted; the package starts a server.
  (service prometheus stop || systemctl stop prometheus) >/dev/null 2>&1 || true
fi
promtool --version | head -1

echo "== Chromium (the front ends' browser tests) and the npm packages (one workspace: the console, the app, the client library)"
if ! command -v chromium >/dev/null 2>&1; then
  install_packages chromium
fi
chromium --version
# One lockfile at the root for every JavaScript package (package.json
# "workspaces"): the console, the app and clients/js share node_modules/,
# esbuild and TypeScript.
npm ci --no-audit --no-fund --loglevel=error
# Each front end: its logic in node, its types, and dist/ — committed, so
# cargo builds without node — exactly what the sources and the lockfile make.
for fe in console app; do
  (
    cd "gateway/$fe"
    npm test --silent
    npm run typecheck --silent
    fresh=$(mktemp -d)
    OUT="$fresh" npm run build --silent
    diff -r dist "$fresh" >/dev/null || { echo "gateway/$fe/dist is stale: run 'npm run build' there and commit it"; exit 1; }
    rm -rf "$fresh"
  )
done

echo "== the engine stays pure (no tokio, axum, sled, redis or hyper)"
impure=$(cargo tree -p engine -e normal --prefix none | grep -E '^(tokio|axum|sled|redis|hyper) ' | sort -u || true)
if [ -n "$impure" ]; then
  echo "engine depends on I/O crates:"
  echo "$impure"
  exit 1
fi

echo "== tests (unit, property, stress, end-to-end) and a one-pass smoke run of every benchmark"
# SIZES keeps the criterion smoke pass to small fleets; the real runs are in BENCHMARKS.md.
SIZES=1000 E2E_BROWSER=1 E2E_PROMTOOL=1 cargo test --workspace --all-targets

echo "== the client library (clients/js): strict build, unit tests, REST types current, against the real binary"
# cargo test built target/debug/dispatchd (the end-to-end tests run it); the
# schema check and the integration tests start it themselves on free
# loopback ports (npm packages: installed by the root 'npm ci' above).
(
  export DISPATCHD_BIN="$PWD/target/debug/dispatchd"
  cd clients/js
  npm run build --silent
  npm test --silent
  npm run check:schema --silent
  npm run test:integration --silent
)

echo "== the front ends in Chromium, each against its own dispatchd: the app (resident and worker at phone size) and the coordinator's screens"
# Screenshots of every step: target/app-screenshots, target/coordinator-screenshots.
(
  export DISPATCHD_BIN="$PWD/target/debug/dispatchd"
  (cd gateway/app && SHOTS="$PWD/../../target/app-screenshots" npm run e2e --silent)
  (cd gateway/console && SHOTS="$PWD/../../target/coordinator-screenshots" npm run e2e:coordinator --silent)
)

echo "== schemathesis against a live server: every operation of /openapi.json"
./scripts/schemathesis.sh

echo "== the same end-to-end tests on the other backend: a one-node cluster on its own redis-server"
# Same test code, a parameter (E2E_BACKEND) in the harness: every Server gets
# a private redis-server and DISPATCHD_REDIS_URL. (cluster.rs runs 2-3 nodes itself.)
# `--workspace` keeps the feature set of the first run, so nothing is rebuilt.
E2E_BACKEND=redis E2E_BROWSER=1 cargo test --workspace --test http_api --test dispatch --test process --test abuse --test history --test resume --test chaos --test time --test notify --test properties --test maintenance --test stock --test triage --test payments --test attachments --test console --test tighter --test tracking
