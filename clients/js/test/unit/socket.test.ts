// The socket's logic over a fake WebSocket and a fake clock: backoff,
// acks, resume and de-duplication, the re-sends after a reconnect,
// positions, ping, and an unauthorized token.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";
import { Dispatchd, DispatchdError, backoffDelay, type DispatchdSocket, type SocketOptions } from "../../src/index.js";
import { FakeClock, FakeWS, flush } from "./fakes.js";

let clock: FakeClock;

beforeEach(() => {
  clock = new FakeClock();
  FakeWS.reset(clock);
});

/** Fetch for the token probe: 200 unless told otherwise. */
function fetchAnswering(status: number | "down") {
  const calls: Request[] = [];
  const f = async (req: Request) => {
    calls.push(req);
    if (status === "down") throw new TypeError("fetch failed");
    return new Response(status === 401 ? '{"error":{"code":"unauthorized","message":"expired"}}' : "{}", {
      status,
      headers: { "content-type": "application/json" },
    });
  };
  return Object.assign(f, { calls });
}

function client(fetch = fetchAnswering(200)) {
  return new Dispatchd({ url: "http://dispatchd.test", token: "tok", WebSocket: FakeWS, fetch });
}

/** A socket whose first connection is open. */
async function openSocket(options: SocketOptions = {}, d = client()): Promise<DispatchdSocket> {
  const s = d.socket({ clock, random: () => 0.5, ...options });
  await flush();
  FakeWS.last.open();
  return s;
}

/** Records every event of these names, in order. */
function record(s: DispatchdSocket, ...names: Array<"offer" | "offer_revoked" | "job" | "tracking" | "resumed" | "gap" | "state" | "error" | "unauthorized">) {
  const log: Array<[string, unknown]> = [];
  for (const n of names) s.on(n, (p: unknown) => log.push([n, p]));
  return log;
}

const job = (id: string, status: string, seq: number) => ({ type: "job", seq, job: { id, status } });

describe("backoff", () => {
  test("full jitter within [0, min(cap, base·2^attempt)), capped", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      assert.equal(backoffDelay(attempt, 500, 30_000, () => 0), 0);
      const top = backoffDelay(attempt, 500, 30_000, () => 0.999999);
      assert.ok(top < ceiling && top >= ceiling - 1, `attempt ${attempt}: ${top} vs ${ceiling}`);
    }
    // Jitter spreads the delays (no thundering herd after a restart).
    const delays = new Set(Array.from({ length: 200 }, () => backoffDelay(6, 500, 30_000, Math.random)));
    assert.ok(delays.size > 100, `only ${delays.size} distinct delays`);
    for (const d of delays) assert.ok(d >= 0 && d < 30_000);
  });

  test("reconnects wait longer after each failure, up to the cap, and start over after an open", async () => {
    const s = await openSocket({ backoffBaseMs: 100, backoffCapMs: 1_000 });
    FakeWS.last.drop();
    // random = 0.5: half of each ceiling (100, 200, 400, 800, 1000, 1000).
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = FakeWS.all.length;
      const from = clock.now();
      while (FakeWS.all.length === before) await clock.advance(10);
      waits.push(FakeWS.last.madeAt - from);
      FakeWS.last.fail("connect ECONNREFUSED 127.0.0.1:1");
    }
    assert.deepEqual(waits, [50, 100, 200, 400, 500, 500]);
    while (FakeWS.all.length === 7) await clock.advance(10);
    FakeWS.last.open();
    assert.equal(s.state, "open");
    FakeWS.last.drop();
    const from = clock.now();
    while (FakeWS.all.length === 8) await clock.advance(10);
    assert.equal(FakeWS.last.madeAt - from, 50, "the first wait again after a successful open");
    s.close();
  });

  test("state events: connecting, open, connecting (drop), open, closed", async () => {
    const d = client();
    const s = d.socket({ clock, random: () => 0 });
    const log = record(s, "state");
    assert.equal(s.state, "connecting");
    await flush();
    FakeWS.last.open();
    FakeWS.last.drop();
    await clock.advance(0);
    FakeWS.last.open();
    s.close();
    assert.deepEqual(
      log.map((e) => e[1]),
      ["open", "connecting", "open", "closed"],
    );
    const n = FakeWS.all.length;
    await clock.advance(120_000);
    assert.equal(FakeWS.all.length, n, "no reconnect after close()");
    assert.equal(clock.pending, 0, "no timer left behind");
  });
});

describe("send", () => {
  test("numbers req_ids and resolves on the ack with the same req_id", async () => {
    const s = await openSocket();
    const ws = FakeWS.last;
    let done = 0;
    const a = s.send({ type: "accept", job_id: "j1" }).then(() => done++);
    const b = s.send({ type: "arrive", job_id: "j1" }).then(() => done++);
    await flush();
    assert.deepEqual(ws.sent, [
      { type: "accept", job_id: "j1", req_id: 1 },
      { type: "arrive", job_id: "j1", req_id: 2 },
    ]);
    ws.receive({ type: "ack", req_id: 2 });
    await flush();
    assert.equal(done, 1);
    ws.receive({ type: "ack", req_id: 1 });
    await Promise.all([a, b]);
    s.close();
  });

  test("rejects with the server's error {code, message}", async () => {
    const s = await openSocket();
    const p = s.send({ type: "accept", job_id: "j1" });
    FakeWS.last.receive({ type: "error", code: "offer_expired", message: "the offer expired", req_id: 1 });
    await assert.rejects(p, (e: DispatchdError) => e instanceof DispatchdError && e.code === "offer_expired" && e.message === "the offer expired");
    s.close();
  });

  test("rejects on a timeout, and a late ack changes nothing", async () => {
    const s = await openSocket({ sendTimeoutMs: 2_000 });
    const p = s.send({ type: "complete", job_id: "j1" });
    const rejected = assert.rejects(p, (e: DispatchdError) => e.code === "timeout");
    await clock.advance(1_999);
    let settled = false;
    void p.catch(() => (settled = true));
    await flush();
    assert.equal(settled, false);
    await clock.advance(1);
    await rejected;
    FakeWS.last.receive({ type: "ack", req_id: 1 });
    s.close();
  });

  test("rejects with `disconnected` on a drop before the ack; waiting ones go out after the reconnect", async () => {
    const s = await openSocket();
    const first = s.send({ type: "accept", job_id: "j1" });
    const dropped = assert.rejects(first, (e: DispatchdError) => e.code === "disconnected");
    FakeWS.last.drop();
    await dropped;
    assert.equal(s.state, "connecting");
    // Sent while reconnecting: waits, then goes out in order.
    const a = s.send({ type: "arrive", job_id: "j1" });
    const b = s.send({ type: "complete", job_id: "j1" });
    await clock.advance(1_000);
    const ws = FakeWS.last;
    assert.equal(ws.sent.length, 0, "nothing written before the open");
    ws.open();
    assert.deepEqual(
      ws.sent.map((m) => [m.type, m.req_id]),
      [
        ["arrive", 2],
        ["complete", 3],
      ],
    );
    ws.ackAll();
    await Promise.all([a, b]);
    s.close();
  });

  test("at most maxInFlight unanswered requests; the rest wait their turn, in order", async () => {
    const s = await openSocket({ maxInFlight: 2 });
    const ws = FakeWS.last;
    const all = Array.from({ length: 5 }, (_, i) => s.send({ type: "availability", available: i % 2 === 0 }));
    assert.deepEqual(ws.sent.map((m) => m.req_id), [1, 2]);
    ws.receive({ type: "ack", req_id: 1 });
    assert.deepEqual(ws.sent.map((m) => m.req_id), [1, 2, 3]);
    ws.receive({ type: "error", code: "invalid_input", message: "x", req_id: 2 });
    assert.deepEqual(ws.sent.map((m) => m.req_id), [1, 2, 3, 4]);
    ws.ackAll();
    ws.ackAll();
    assert.deepEqual(ws.sent.map((m) => m.req_id), [1, 2, 3, 4, 5]);
    const settled = await Promise.allSettled(all);
    assert.deepEqual(settled.map((r) => r.status), ["fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled"]);
    s.close();
  });

  test("after close() every waiting send rejects with `closed`, and new ones too", async () => {
    const s = await openSocket();
    const p = s.send({ type: "accept", job_id: "j1" });
    s.close();
    await assert.rejects(p, (e: DispatchdError) => e.code === "closed");
    await assert.rejects(s.send({ type: "ping" }), (e: DispatchdError) => e.code === "closed");
  });
});

describe("resume and de-duplication", () => {
  test("resumes with since = the last seq; each message once and in order across reconnects", async () => {
    const s = await openSocket();
    const log = record(s, "job", "offer", "offer_revoked", "resumed", "gap");
    let ws = FakeWS.last;
    assert.equal(ws.query.get("since"), null, "a first connect has nothing to resume");
    assert.equal(ws.query.get("token"), "tok");
    ws.receive({ type: "offer", job_id: "j1", seq: 4, expires_at: "t" });
    ws.receive(job("j1", "offered", 5));
    ws.receive(job("j1", "accepted", 6));
    ws.drop();
    await clock.advance(1_000);
    ws = FakeWS.last;
    assert.equal(ws.query.get("since"), "6");
    ws.open();
    // The server replays from since (one repeat here), the open offer again, then `resumed`.
    ws.receive(job("j1", "accepted", 6));
    ws.receive(job("j1", "arrived", 7));
    ws.receive({ type: "offer", job_id: "j1", seq: 4, expires_at: "t" });
    ws.receive({ type: "resumed", seq: 7 });
    ws.receive(job("j1", "arrived", 7));
    ws.receive(job("j1", "completed", 8));
    // One change may reach a user as several messages with one seq.
    ws.receive({ type: "offer_revoked", job_id: "j2", reason: "cancelled", seq: 9 });
    ws.receive(job("j2", "cancelled", 9));
    ws.receive({ type: "offer_revoked", job_id: "j2", reason: "cancelled", seq: 9 });
    assert.deepEqual(
      log.map(([n, p]) => (n === "resumed" ? `resumed:${JSON.stringify(p)}` : `${n}:${(p as { seq: number }).seq}`)),
      ["offer:4", "job:5", "job:6", "job:7", 'resumed:{"seq":7,"gap":false,"replayed":1}', "job:8", "offer_revoked:9", "job:9"],
    );
    assert.equal(s.lastSeq, 9);
    s.close();
  });

  test("a gap: `resumed` with gap, then `gap`; a server whose history went back starts over", async () => {
    const s = await openSocket();
    const log = record(s, "resumed", "gap", "job");
    FakeWS.last.receive(job("j1", "offered", 50));
    FakeWS.last.drop();
    await clock.advance(1_000);
    FakeWS.last.open();
    FakeWS.last.receive({ type: "resumed", seq: 3, gap: true });
    FakeWS.last.receive(job("j1", "searching", 4));
    assert.deepEqual(log, [
      ["job", job("j1", "offered", 50)],
      ["resumed", { seq: 3, gap: true, replayed: 0 }],
      ["gap", { seq: 3 }],
      ["job", job("j1", "searching", 4)],
    ]);
    s.close();
  });

  test("a reconnect with nothing seen cannot resume: it says gap", async () => {
    const s = await openSocket();
    const log = record(s, "resumed", "gap");
    FakeWS.last.drop();
    await clock.advance(1_000);
    assert.equal(FakeWS.last.query.get("since"), null);
    FakeWS.last.open();
    assert.deepEqual(log, [
      ["gap", { seq: null }],
      ["resumed", { seq: null, gap: true, replayed: 0 }],
    ]);
    s.close();
  });

  test("`since` given at creation is used on the first connect", async () => {
    const s = await openSocket({ since: 41 });
    assert.equal(FakeWS.last.query.get("since"), "41");
    FakeWS.last.receive(job("j", "accepted", 41));
    assert.equal(s.lastSeq, 41);
    s.close();
  });
});

describe("after a reconnect", () => {
  test("the last availability and the latest position go first, then what waited", async () => {
    const s = await openSocket();
    let ws = FakeWS.last;
    const avail = s.send({ type: "availability", available: true });
    s.track(52.5, 13.4);
    ws.ackAll();
    await avail;
    ws.drop();
    // While away: only the latest position is kept; an accept waits.
    s.track(52.6, 13.5);
    s.track(52.7, 13.6);
    const accept = s.send({ type: "accept", job_id: "j1" });
    await clock.advance(1_000);
    ws = FakeWS.last;
    ws.open();
    assert.deepEqual(
      ws.sent.map(({ req_id: _, ...m }) => m),
      [
        { type: "availability", available: true },
        { type: "location", lat: 52.7, lng: 13.6 },
        { type: "accept", job_id: "j1" },
      ],
    );
    ws.ackAll();
    await accept;
    // A network blip with no new position: the latest one is re-sent anyway.
    ws.drop();
    await clock.advance(1_000);
    FakeWS.last.open();
    assert.deepEqual(
      FakeWS.last.sent.map(({ req_id: _, ...m }) => m),
      [
        { type: "availability", available: true },
        { type: "location", lat: 52.7, lng: 13.6 },
      ],
    );
    s.close();
  });

  test("a re-sent availability the server refuses is an `error` event, not an unhandled rejection", async () => {
    const s = await openSocket();
    const errors = record(s, "error");
    const p = s.send({ type: "availability", available: false });
    FakeWS.last.ackAll();
    await p;
    FakeWS.last.drop();
    await clock.advance(1_000);
    FakeWS.last.open();
    const resent = FakeWS.last.of("availability")[0]!;
    assert.equal(resent.available, false);
    FakeWS.last.receive({ type: "error", code: "forbidden", message: "only workers", req_id: resent.req_id });
    await flush();
    assert.deepEqual(
      errors.map(([, e]) => (e as DispatchdError).code),
      ["forbidden"],
    );
    s.close();
  });
});

describe("track", () => {
  test("throttled to the location budget: the first at once, then only the latest per interval", async () => {
    const s = await openSocket({ locationsPerMinute: 60 });
    const ws = FakeWS.last;
    for (let i = 0; i < 10; i++) s.track(50 + i, 10);
    assert.deepEqual(ws.of("location"), [{ type: "location", lat: 50, lng: 10 }]);
    await clock.advance(999);
    assert.equal(ws.of("location").length, 1);
    await clock.advance(1);
    assert.deepEqual(ws.of("location")[1], { type: "location", lat: 59, lng: 10 });
    await clock.advance(5_000);
    assert.equal(ws.of("location").length, 2, "nothing new to send");
    s.track(1, 2);
    assert.equal(ws.of("location").length, 3, "the interval has passed: at once");
    s.close();
  });

  test("the default budget is the server's: 1 200 a minute", async () => {
    const s = await openSocket();
    for (let i = 0; i < 100; i++) {
      s.track(i, 0);
      await clock.advance(10);
    }
    // 0 … 1 000 ms: one every 50 ms, 21 in all.
    assert.equal(FakeWS.last.of("location").length, 21);
    s.close();
  });

  test("honours the server's rate_limited: nothing until retry_after_s, then the latest", async () => {
    const s = await openSocket({ locationsPerMinute: 600 });
    const errors = record(s, "error");
    const ws = FakeWS.last;
    s.track(1, 1);
    ws.receive({ type: "error", code: "rate_limited", message: "too many", retry_after_s: 3 });
    for (let i = 2; i < 30; i++) {
      s.track(i, i);
      await clock.advance(100);
    }
    assert.equal(ws.of("location").length, 1, "held back for 3 s");
    await clock.advance(200);
    assert.deepEqual(ws.of("location")[1], { type: "location", lat: 29, lng: 29 });
    assert.equal((errors[0]?.[1] as DispatchdError).retryAfterS, 3);
    s.close();
  });

  test("refuses a position that is not a number", async () => {
    const s = await openSocket();
    assert.throws(() => s.track(Number.NaN, 1), TypeError);
    s.close();
  });
});

describe("ping", () => {
  test("a silent connection is pinged; no answer in time means dead: reconnect", async () => {
    const s = await openSocket({ pingEveryMs: 10_000, pongTimeoutMs: 5_000 });
    const ws = FakeWS.last;
    await clock.advance(9_000);
    ws.receive(job("j", "offered", 1)); // any message is a sign of life
    await clock.advance(9_999);
    assert.equal(ws.of("ping").length, 0);
    await clock.advance(1);
    assert.equal(ws.of("ping").length, 1);
    ws.receive({ type: "pong" });
    await clock.advance(9_999);
    assert.equal(s.state, "open");
    assert.equal(ws.of("ping").length, 1);
    await clock.advance(1);
    assert.equal(ws.of("ping").length, 2);
    await clock.advance(5_000);
    assert.equal(s.state, "connecting", "no pong: dropped");
    assert.equal(ws.closedByClient, 1000);
    const n = FakeWS.all.length;
    await clock.advance(1_000);
    assert.equal(FakeWS.all.length, n + 1, "and reconnecting");
    s.close();
  });
});

describe("unauthorized", () => {
  test("a 401 on the upgrade: one event, closed, no reconnect loop", async () => {
    const d = client();
    const dEvents: DispatchdError[] = [];
    d.on("unauthorized", (e) => dEvents.push(e));
    const s = d.socket({ clock });
    const log = record(s, "unauthorized", "state");
    const p = s.send({ type: "availability", available: true });
    await flush();
    FakeWS.last.fail("Unexpected server response: 401");
    await assert.rejects(p, (e: DispatchdError) => e.code === "unauthorized");
    await clock.advance(600_000);
    assert.equal(FakeWS.all.length, 1, "never tried again");
    assert.deepEqual(
      log.map(([n, p]) => (n === "state" ? p : n)),
      ["closed", "unauthorized"],
    );
    assert.equal(dEvents.length, 1);
    // Signing in again revives it, resuming where it was.
    d.token = "fresh";
    await flush();
    assert.equal(FakeWS.all.length, 2);
    assert.equal(FakeWS.last.query.get("token"), "fresh");
    FakeWS.last.open();
    assert.equal(s.state, "open");
    assert.deepEqual(FakeWS.last.of("availability"), [{ type: "availability", available: true, req_id: 2 }]);
    s.close();
    // Closed for good: another token does not bring it back.
    d.token = "another";
    await flush();
    assert.equal(FakeWS.all.length, 2);
  });

  test("close() after `unauthorized` is final", async () => {
    const d = client();
    const s = d.socket({ clock });
    await flush();
    FakeWS.last.fail("Unexpected server response: 401");
    assert.equal(s.state, "closed");
    s.close();
    d.token = "fresh";
    await flush();
    assert.equal(FakeWS.all.length, 1);
  });

  test("a browser hides the status: the token is checked over HTTP, one event in all", async () => {
    const fetch = fetchAnswering(401);
    const d = client(fetch);
    const dEvents: DispatchdError[] = [];
    d.on("unauthorized", (e) => dEvents.push(e));
    const s = await openSocket({}, d);
    const log = record(s, "unauthorized");
    FakeWS.last.drop();
    await clock.advance(1_000);
    FakeWS.last.fail();
    await clock.advance(0);
    await flush();
    assert.equal(fetch.calls.length, 1);
    assert.equal(fetch.calls[0]!.headers.get("authorization"), "Bearer tok");
    assert.equal(log.length, 1);
    assert.equal(dEvents.length, 1, "REST and socket together: one event");
    assert.equal(s.state, "closed");
    await clock.advance(600_000);
    assert.equal(FakeWS.all.length, 2);
  });

  test("a server that is away is not a token problem: keep reconnecting", async () => {
    const fetch = fetchAnswering("down");
    const s = await openSocket({}, client(fetch));
    const log = record(s, "unauthorized");
    FakeWS.last.drop();
    for (let i = 0; i < 3; i++) {
      const n = FakeWS.all.length;
      while (FakeWS.all.length === n) await clock.advance(100);
      FakeWS.last.fail();
      await flush();
    }
    assert.equal(log.length, 0);
    assert.equal(s.state, "connecting");
    s.close();
  });

  test("a close whose reason names the token stops the socket", async () => {
    const s = await openSocket();
    const log = record(s, "unauthorized");
    FakeWS.last.drop(4001, "token expired");
    await clock.advance(60_000);
    assert.equal(log.length, 1);
    assert.equal(s.state, "closed");
    assert.equal(FakeWS.all.length, 1);
  });
});

describe("frames", () => {
  test("MessagePack: binary frames both ways, the same events as JSON", async () => {
    const { encode } = await import("@msgpack/msgpack");
    const s = await openSocket({ format: "msgpack" });
    const ws = FakeWS.last;
    assert.equal(ws.query.get("format"), "msgpack");
    assert.equal(ws.binaryType, "arraybuffer");
    const log = record(s, "job");
    const p = s.send({ type: "availability", available: true });
    assert.deepEqual(ws.sent, [{ type: "availability", available: true, req_id: 1 }]);
    const bytes = encode({ type: "ack", req_id: 1 });
    ws.frame(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    await p;
    const j = encode(job("j1", "offered", 3));
    ws.frame(j.buffer.slice(j.byteOffset, j.byteOffset + j.byteLength));
    assert.deepEqual(log, [["job", job("j1", "offered", 3)]]);
    s.close();
  });

  test("an unreadable frame is an `error` event and the socket goes on", async () => {
    const s = await openSocket();
    const log = record(s, "error", "job");
    FakeWS.last.frame("{not json");
    FakeWS.last.receive(job("j", "offered", 1));
    assert.deepEqual(
      log.map(([n, p]) => (n === "error" ? (p as DispatchdError).code : n)),
      ["bad_frame", "job"],
    );
    s.close();
  });
});
