// The library against a real dispatchd, without restarts: a worker and a
// resident through a whole job, 1 000 acked sends in order, JSON and
// MessagePack giving the same events, and a refused token.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DispatchdError, unwrap, type DispatchdSocket } from "../../src/index.js";
import { FAST, closeAll, events, ops, record, seenByOps, sleep, startServer, TestClient, until, user, type TestServer } from "./support.js";

let srv: TestServer;
before(async () => {
  srv = await startServer();
});
after(async () => {
  closeAll();
  await srv.stop();
});

const HOME = { lat: 48.85, lng: 2.35 };

/** A worker with an open socket, available, at `at`. */
async function workerOnline(at: { lat: number; lng: number }, skill: string, format: "json" | "msgpack" = "json") {
  const d = await user(srv, "worker", [skill]);
  const s = d.socket({ ...FAST, format });
  await s.send({ type: "availability", available: true });
  s.track(at.lat, at.lng);
  await until("the worker on the map", () => seenByOps(ops(srv), d.user!.id, at.lat, at.lng));
  return { d, s };
}

test("a worker and a resident through a whole job", { timeout: 60_000 }, async () => {
  const { s: ws } = await workerOnline(HOME, "roofing");
  const resident = await user(srv, "resident");
  const rs = resident.socket();
  const wlog = record(ws);
  const rlog = record(rs);
  await until("open", () => rs.state === "open");
  const job = await unwrap(resident.rest.POST("/v1/jobs", { body: { lat: HOME.lat + 0.001, lng: HOME.lng, skill: "roofing" } }));
  const offer = await until("the offer", () => events(wlog, "offer").find((m) => m.job_id === job.id));
  assert.equal(offer.skill, "roofing");
  assert.ok(offer.distance_m > 50 && offer.distance_m < 200, `${offer.distance_m}`);
  // A step out of order is the server's error, with its code.
  await assert.rejects(ws.send({ type: "arrive", job_id: job.id }), (e: DispatchdError) => e.code === "invalid_transition");
  for (const step of ["accept", "arrive", "complete"] as const) await ws.send({ type: step, job_id: job.id });
  const done = await until("completed", () => events(rlog, "job").find((m) => m.job.status === "completed"));
  // One message per change, in order (each shows the job as it stood when
  // published: on a busy machine one may already show the next step).
  const jobs = events(rlog, "job");
  assert.equal(jobs.length, 4, JSON.stringify(jobs.map((m) => [m.seq, m.job.status])));
  const rank = ["offered", "accepted", "arrived", "completed"];
  for (let i = 1; i < jobs.length; i++) {
    assert.ok(jobs[i]!.seq > jobs[i - 1]!.seq);
    assert.ok(rank.indexOf(jobs[i]!.job.status) >= rank.indexOf(jobs[i - 1]!.job.status));
  }
  assert.equal(done.job.fare_cents, 1000);
  assert.deepEqual(done.job, await unwrap(resident.rest.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } })));
  ws.close();
  rs.close();
});

test("1 000 acked sends, answered in order", { timeout: 60_000 }, async () => {
  const { d, s } = await workerOnline(HOME, "hvac");
  const order: number[] = [];
  const sends: Array<Promise<void>> = [];
  for (let i = 0; i < 1000; i++) {
    sends.push(s.send({ type: "availability", available: i % 2 === 1 }).then(() => void order.push(i)));
  }
  await Promise.all(sends);
  assert.deepEqual(order, Array.from({ length: 1000 }, (_, i) => i));
  // Applied in order too: the last one (available) holds.
  const w = await seenByOps(ops(srv), d.user!.id, HOME.lat, HOME.lng);
  assert.equal(w?.available, true);
  s.close();
});

test("JSON and MessagePack give the same events", { timeout: 60_000 }, async () => {
  const { d: worker, s: wMsgpack } = await workerOnline({ lat: 40.4, lng: -3.7 }, "locksmith", "msgpack");
  const wJson = worker.socket();
  const resident = await user(srv, "resident");
  const sockets: Record<string, DispatchdSocket> = {
    wJson,
    wMsgpack,
    rJson: resident.socket(),
    rMsgpack: resident.socket({ format: "msgpack" }),
  };
  const logs = Object.fromEntries(Object.entries(sockets).map(([k, s]) => [k, record(s)]));
  await until("all open", () => Object.values(sockets).every((s) => s.state === "open"));
  const job = await unwrap(resident.rest.POST("/v1/jobs", { body: { lat: 40.401, lng: -3.7, skill: "locksmith", description: "locked out, ñ ü 🔑" } }));
  await until("the offer on both", () => events(logs.wJson!, "offer").length === 1 && events(logs.wMsgpack!, "offer").length === 1);
  for (const step of ["accept", "arrive", "complete"] as const) await wMsgpack.send({ type: step, job_id: job.id });
  await until("completed on both", () =>
    [logs.rJson!, logs.rMsgpack!].every((l) => events(l, "job").some((m) => m.job.status === "completed")),
  );
  await sleep(200);
  const data = (l: typeof logs.wJson) => l!.filter(([n]) => n === "offer" || n === "job" || n === "offer_revoked");
  assert.deepEqual(data(logs.wMsgpack), data(logs.wJson));
  assert.deepEqual(data(logs.rMsgpack), data(logs.rJson));
  assert.equal(events(logs.rJson!, "job").length, 4);
  assert.equal(events(logs.wJson!, "offer")[0]!.description, "locked out, ñ ü 🔑");
  for (const s of Object.values(sockets)) s.close();
});

test("a refused token: one `unauthorized`, closed, no reconnect loop", { timeout: 30_000 }, async () => {
  const d = new TestClient(srv, "not-a-token");
  const seen: DispatchdError[] = [];
  d.on("unauthorized", (e) => seen.push(e));
  const s = d.socket(FAST);
  const log = record(s);
  const p = s.send({ type: "availability", available: true });
  await assert.rejects(p, (e: DispatchdError) => e.code === "unauthorized");
  const rest = await d.rest.GET("/v1/jobs", {});
  assert.equal(rest.response.status, 401);
  await sleep(1_500);
  assert.equal(s.state, "closed");
  assert.equal(events(log, "unauthorized").length, 1);
  assert.deepEqual(events(log, "state"), ["closed"]);
  assert.equal(seen.length, 1, "socket and REST together: one event for the token");
  // Signing in again brings the same socket back.
  const w = await user(srv, "worker");
  d.token = w.token;
  await until("open with the new token", () => s.state === "open");
  await s.send({ type: "availability", available: false });
  s.close();
});

test("closed while connecting, or while waiting to reconnect to a server that is away: quiet, nothing left running", { timeout: 30_000 }, async () => {
  const d = await user(srv, "worker");
  const s = d.socket(FAST);
  await sleep(0);
  s.close(); // the upgrade is under way
  assert.equal(s.state, "closed");
  await assert.rejects(s.send({ type: "ping" }), (e: DispatchdError) => e.code === "closed");
  const gone = await startServer();
  await gone.stop(); // nothing listens on its port any more
  const t = new TestClient(gone, d.token).socket(FAST);
  const log = record(t);
  await sleep(800); // a few refused connects and backoff waits
  t.close();
  await sleep(300);
  assert.deepEqual(events(log, "state"), ["closed"]);
  assert.equal(events(log, "unauthorized").length, 0, "a server that is away is not a refused token");
});
