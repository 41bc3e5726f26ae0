#!/usr/bin/env bash
# Runs schemathesis (PyPI, pinned) against a live dispatchd built by the
# test run (target/debug/dispatchd): every operation of /openapi.json with a
# bounded number of generated examples, as ops; fails on any 5xx, a
# response that does not match its schema, an undocumented status code or
# content type. Called by scripts/test.sh; runs alone too (after a build).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.32.5
venv=$PWD/target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
fi
bin=target/debug/dispatchd
[ -x "$bin" ] || cargo build -q -p gateway --bin dispatchd
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DISPATCHD_SERVER_ADDR=127.0.0.1:$port DISPATCHD_STORAGE_DATA_DIR=$data/data \
  DISPATCHD_AUTH_JWT_SECRET=schemathesis-run-secret-0123456789 \
  DISPATCHD_LIMITS_REQUESTS_PER_MINUTE=1000000 DISPATCHD_LIMITS_AUTH_PER_MINUTE=1000000 \
  DISPATCHD_AUTH_ARGON2_MEMORY_KIB=64 DISPATCHD_AUTH_ARGON2_ITERATIONS=1 DISPATCHD_LOG_LEVEL=warn
"$bin" >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
ops=$("$bin" token --sub ops-schemathesis --role ops)
# /v1/ws is an upgrade, not a request/response operation. Run from the
# temporary directory: schemathesis keeps a cache where it runs.
cd "$data"
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $ops" --exclude-path /v1/ws \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  -n "${SCHEMATHESIS_EXAMPLES:-10}" --seed "${SCHEMATHESIS_SEED:-1}" --request-timeout 10 \
  --report-dir "$data/report" --no-color
