#!/usr/bin/env python3
# Seeds 10 000 properties x 3 schedules through the HTTP API, then times the
# due/overdue check (first run and repeat), a listing and the calendar feed.
# Usage: maintenance_seed.py PORT OPS_TOKEN RESIDENT_TOKEN [N] RESIDENT_ID
# (BENCHMARKS.md, "Maintenance at the seed's scale").
import json, sys, time, subprocess, threading, http.client, datetime, queue
API_HOST, API_PORT = "127.0.0.1", int(sys.argv[1])
OPS, RES = sys.argv[2], sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
def iso(t): return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
now = time.time()
local = threading.local()
def call(method, path, token, body=None, accept=None):
    c = getattr(local, "c", None)
    if c is None:
        c = local.c = http.client.HTTPConnection(API_HOST, API_PORT, timeout=60)
    h = {"authorization": "Bearer " + token}
    if body is not None: h["content-type"] = "application/json"
    if accept: h["accept"] = accept
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse(); data = r.read()
    return r.status, data
def run(tasks, threads=32):
    q = queue.Queue()
    for t in tasks: q.put(t)
    errs = []
    def worker():
        while True:
            try: t = q.get_nowait()
            except queue.Empty: return
            st, d = t()
            if st >= 300: errs.append((st, d[:200]))
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return errs
# The owner of every property: a resident's id (argv[5]).
owner = sys.argv[5]
pids = [None]*N
def mkprop(i):
    def f():
        st, d = call("POST", "/v1/properties", OPS, {"name": f"Home {i}", "lat": 48.8 + (i%100)*0.002, "lng": 2.3 + (i//100)*0.002, "owner_id": owner})
        if st == 201: pids[i] = json.loads(d)["id"]
        return st, d
    return f
t0 = time.time(); errs = run([mkprop(i) for i in range(N)]); t1 = time.time()
print(f"properties: {N} in {t1-t0:.1f} s, errors {len(errs)} {errs[:2]}")
zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
def mksch(i, k):
    start = [now + 2*3600, now + 10*86400, now + 30*86400][k]
    unit = ["month", "week", "year"][k]
    def f():
        return call("POST", "/v1/schedules", OPS, {"property_id": pids[i], "title": "Boiler service", "skill": "hvac",
            "every": {"unit": unit, "interval": 1}, "timezone": zones[i % 4], "start_at": iso(start)})
    return f
t0 = time.time(); errs = run([mksch(i, k) for i in range(N) for k in range(3)]); t1 = time.time()
print(f"schedules: {3*N} in {t1-t0:.1f} s, errors {len(errs)} {errs[:2]}")
for label in ["first", "repeat"]:
    t0 = time.time(); st, d = call("POST", "/v1/ops/maintenance/check", OPS, {}); t1 = time.time()
    print(f"check ({label}): {st} {d.decode()} in {(t1-t0)*1000:.0f} ms")
t0 = time.time(); st, d = call("GET", "/v1/schedules?status=due&limit=500", OPS); t1 = time.time()
print(f"list due (500 of them): {st} {len(json.loads(d)['schedules'])} in {(t1-t0)*1000:.1f} ms")
t0 = time.time(); st, d = call("GET", "/v1/schedules.ics?token=" + RES, RES); t1 = time.time()
print(f"ics for an owner of all {3*N}: {st} {len(d)} bytes in {(t1-t0)*1000:.0f} ms")
