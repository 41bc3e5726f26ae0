#!/usr/bin/env python3
"""Job creation latency while ops teach triage (API.md v1.2, "triage
learning"): starts dispatchd on a free loopback port, times N sequential
`POST /v1/jobs` alone, then again while another thread posts examples of
~2 000 characters of random words, and prints p50/p99 of both and the
server's RSS before and after. Stops by itself.

    cargo build --release -p gateway
    python3 scripts/bench_triage_learning.py target/release/dispatchd
    CONTROL=1 python3 scripts/bench_triage_learning.py target/release/dispatchd

(CONTROL=1: the second thread creates jobs instead — the same stream of
durable writes without learning, to tell learning from write load.)
"""

import base64, hashlib, hmac, json, os, random, socket, string, subprocess
import sys, tempfile, threading, time, urllib.request

SECRET = "bench-secret-bench-secret-bench-secret!"


def token(sub, role):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps({"sub": sub, "role": role, "exp": int(time.time()) + 3600}).encode())
    sig = enc(hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def post(base, path, tok, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {tok}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        return r.status


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


def main():
    binary = sys.argv[1]
    n = int(os.environ.get("JOBS", "600"))
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    data = tempfile.mkdtemp(prefix="dispatchd-bench-")
    env = dict(os.environ, DISPATCHD_SERVER_ADDR=f"127.0.0.1:{port}",
               DISPATCHD_STORAGE_DATA_DIR=data, DISPATCHD_AUTH_JWT_SECRET=SECRET,
               DISPATCHD_LIMITS_REQUESTS_PER_MINUTE="10000000", DISPATCHD_LOG_LEVEL="warn")
    srv = subprocess.Popen([binary], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1).read(); break
            except Exception:
                time.sleep(0.05)
        r, ops = token("bench-resident", "resident"), token("bench-ops", "ops")
        ops2 = token("bench-other", "resident")

        def jobs():
            out = []
            for i in range(n):
                t = time.perf_counter()
                post(base, "/v1/jobs", r, {"lat": 10 + i * 1e-4, "lng": 10, "skill": "nobody"})
                out.append(time.perf_counter() - t)
            return out

        jobs()  # warm
        alone = jobs()
        before = rss_mib(srv.pid)
        stop, taught = threading.Event(), [0]

        def teach():
            rnd = random.Random(7)
            while not stop.is_set():
                words = []
                while sum(len(w) + 1 for w in words) < 1990:
                    words.append("".join(rnd.choice(string.ascii_lowercase) for _ in range(5)))
                if os.environ.get("CONTROL"):
                    # The control: the same rate of durable writes that
                    # are not examples (ops' jobs with the same text).
                    post(base, "/v1/jobs", ops2, {"lat": 20, "lng": 20, "skill": "nobody",
                                                  "description": " ".join(words)[:1000]})
                else:
                    post(base, "/v1/ops/triage/examples", ops,
                         {"description": " ".join(words), "skill": "pest", "urgency": "low"})
                taught[0] += 1

        th = threading.Thread(target=teach); th.start()
        time.sleep(0.5)
        during = jobs()
        stop.set(); th.join()
        after = rss_mib(srv.pid)
        print(f"POST /v1/jobs alone:          p50 {pct(alone, .5):.2f} ms  p99 {pct(alone, .99):.2f} ms  (n={n})")
        print(f"POST /v1/jobs while teaching: p50 {pct(during, .5):.2f} ms  p99 {pct(during, .99):.2f} ms  ({taught[0]} examples posted)")
        print(f"RSS {before} MiB -> {after} MiB")
    finally:
        srv.kill(); srv.wait()


if __name__ == "__main__":
    main()
