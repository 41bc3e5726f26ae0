// The library against a real dispatchd that is killed (-9) and restarted on
// the same port and data directory: the sockets reconnect by themselves,
// resume, re-send availability and position, and deliver each offer and job
// message once and in order.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { unwrap, type JobMessage } from "../../src/index.js";
import { FAST, closeAll, events, ops, record, seenByOps, serverReplay, startServer, until, user, type Log, type TestServer } from "./support.js";

const servers: TestServer[] = [];
after(async () => {
  closeAll();
  for (const s of servers) await s.stop();
});

const HOME = { lat: 52.52, lng: 13.405 };
const SITE = { lat: 52.521, lng: 13.405 };

/** Strictly increasing seqs: nothing repeated, nothing out of order. */
function assertOnceInOrder(what: string, seqs: number[]) {
  for (let i = 1; i < seqs.length; i++) {
    assert.ok(seqs[i]! > seqs[i - 1]!, `${what}: seq ${seqs[i]} after ${seqs[i - 1]} in ${JSON.stringify(seqs)}`);
  }
}

const jobSeqs = (log: Log, id: string) => events(log, "job").filter((m) => m.job.id === id).map((m) => m.seq);
const statuses = (log: Log, id: string) => events(log, "job").filter((m) => m.job.id === id).map((m) => m.job.status);

/**
 * A worker holds an open offer and a resident follows the job when the
 * server is killed (-9) and restarted; the worker then takes the job again
 * and finishes it, all through the library.
 */
async function offerOpenAcrossRestart() {
  // Long offers: the offer is still open when the server comes back.
  const srv = await startServer({ DISPATCHD_DISPATCH_OFFER_TIMEOUT_S: "120" });
  servers.push(srv);
  const worker = await user(srv, "worker");
  const resident = await user(srv, "resident");
  const ws = worker.socket(FAST);
  const rs = resident.socket(FAST);
  const wlog = record(ws);
  const rlog = record(rs);
  await ws.send({ type: "availability", available: true });
  ws.track(HOME.lat, HOME.lng);
  await until("the worker on the map", () => seenByOps(ops(srv), worker.user!.id, HOME.lat, HOME.lng));
  await until("the resident's socket open", () => rs.state === "open");

  const job = await unwrap(resident.rest.POST("/v1/jobs", { body: { ...SITE, skill: "plumbing", description: "leaking tap" } }));
  const first = await until("the offer", () => events(wlog, "offer").find((m) => m.job_id === job.id));
  await until("the resident sees it offered", () => statuses(rlog, job.id).includes("offered"));
  const residentBefore = jobSeqs(rlog, job.id)[0]! - 1;

  await srv.kill9();
  await srv.start();

  // By itself: reconnected, resumed, and (availability and position re-sent) offered again.
  await until("both sockets resumed", () => events(wlog, "resumed").length >= 1 && events(rlog, "resumed").length >= 1, 30_000);
  const again = await until("the offer again", () => events(wlog, "offer").find((m) => m.job_id === job.id && m.seq > first.seq), 30_000);
  await ws.send({ type: "accept", job_id: job.id });
  await ws.send({ type: "arrive", job_id: job.id });
  await ws.send({ type: "complete", job_id: job.id });
  const done = await until("the resident sees it completed", () => events(rlog, "job").find((m) => m.job.id === job.id && m.job.status === "completed"));
  const server = await unwrap(resident.rest.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } }));
  return { srv, resident, job, first, again, done, server, wlog, rlog, residentBefore };
}

test("kill -9 while an offer is open and a resident follows: each offer and job message once, in order, the job finished through the library", { timeout: 90_000 }, async () => {
  const { job, first, again, done, server, wlog, rlog } = await offerOpenAcrossRestart();
  assertOnceInOrder("resident job messages", jobSeqs(rlog, job.id));
  assertOnceInOrder(
    "worker offers and revokes",
    [...events(wlog, "offer"), ...events(wlog, "offer_revoked")].map((m) => m.seq).sort((a, b) => a - b),
  );
  assert.equal(events(wlog, "offer").filter((m) => m.job_id === job.id).length, 2, "the first offer, and the one after the restart");
  assert.ok(again.seq > first.seq);
  assert.deepEqual(statuses(rlog, job.id).slice(-3), ["accepted", "arrived", "completed"]);
  assert.equal(server.status, "completed");
  assert.deepEqual(done.job, server);
  // What the server said about its replay window, the library passed on: `gap` with every gap:true.
  for (const log of [wlog, rlog]) {
    assert.equal(events(log, "gap").length, events(log, "resumed").filter((r) => r.gap).length);
  }
});

test("contract (API.md, Settled questions v1.2): the replay window survives kill -9 — resumed without gap, the revoke delivered, nothing lost against the server's own replay", { timeout: 90_000 }, async () => {
  const { srv, resident, job, first, again, wlog, rlog, residentBefore } = await offerOpenAcrossRestart();
  const resumed = [...events(wlog, "resumed"), ...events(rlog, "resumed")];
  assert.deepEqual(
    resumed.map((r) => r.gap),
    resumed.map(() => false),
    `resumed without gap after a restart: ${JSON.stringify(resumed)}`,
  );
  const revoked = events(wlog, "offer_revoked").filter((m) => m.job_id === job.id);
  assert.ok(revoked.some((m) => m.seq > first.seq && m.seq < again.seq), `the first offer revoked before the second: ${JSON.stringify(revoked)}`);
  // Nothing lost: exactly what the server itself replays for the resident.
  const replay = await serverReplay(srv, resident.token!, residentBefore);
  assert.equal(replay.resumed.gap, undefined);
  const serverSeqs = (replay.messages as unknown as JobMessage[]).filter((m) => m.type === "job" && m.job.id === job.id).map((m) => m.seq);
  assert.deepEqual(jobSeqs(rlog, job.id), serverSeqs);
  assert.ok(statuses(rlog, job.id).includes("searching"), "the revert to searching after the restart reached the resident");
});

test("kill -9 with a job on the way: both sockets come back by themselves, no duplicates, and the worker is matchable again without help", { timeout: 90_000 }, async () => {
  const srv = await startServer();
  servers.push(srv);
  const worker = await user(srv, "worker");
  const resident = await user(srv, "resident");
  const o = ops(srv);
  const ws = worker.socket(FAST);
  const rs = resident.socket(FAST);
  const wlog = record(ws);
  const rlog = record(rs);
  await ws.send({ type: "availability", available: true });
  ws.track(HOME.lat, HOME.lng);
  await until("the worker on the map", () => seenByOps(o, worker.user!.id, HOME.lat, HOME.lng));
  await until("the resident's socket open", () => rs.state === "open");
  const job = await unwrap(resident.rest.POST("/v1/jobs", { body: { ...SITE, skill: "plumbing" } }));
  const offer = await until("the offer", () => events(wlog, "offer").find((m) => m.job_id === job.id));
  await ws.send({ type: "accept", job_id: offer.job_id });
  await until("the resident sees it accepted", () => statuses(rlog, job.id).includes("accepted"));

  await srv.kill9();
  // A position while the server is away: kept, and sent first when it is back.
  const MOVED = { lat: 52.5205, lng: 13.4052 };
  ws.track(MOVED.lat, MOVED.lng);
  await until("both sockets see the drop", () => ws.state === "connecting" && rs.state === "connecting");
  await srv.start();
  await until("both sockets resumed", () => events(wlog, "resumed").length >= 1 && events(rlog, "resumed").length >= 1, 30_000);
  const gap = events(rlog, "gap").length > 0;
  // An app re-reads after `gap`; either way the accepted job kept its worker.
  const now = await unwrap(resident.rest.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } }));
  assert.equal(now.status, "accepted");
  assert.equal(now.worker_id, worker.user!.id);
  const there = await until("the position sent while the server was down", async () => {
    const w = await seenByOps(o, worker.user!.id, MOVED.lat, MOVED.lng);
    return w && w.lat === MOVED.lat && w.lng === MOVED.lng && w;
  });
  assert.equal(there.available, true, "availability re-sent");

  await ws.send({ type: "arrive", job_id: job.id });
  await ws.send({ type: "complete", job_id: job.id });
  await until("the resident sees it completed", () => statuses(rlog, job.id).includes("completed"));
  // Matchable again with no help from the app: the re-sent availability and position did it.
  const next = await unwrap(resident.rest.POST("/v1/jobs", { body: { ...SITE, skill: "plumbing" } }));
  await until("an offer for the next job", () => events(wlog, "offer").find((m) => m.job_id === next.id));

  assertOnceInOrder("resident job messages", events(rlog, "job").map((m) => m.seq));
  assertOnceInOrder("worker messages", [...events(wlog, "offer"), ...events(wlog, "offer_revoked"), ...events(wlog, "job")].map((m) => m.seq).sort((a, b) => a - b));
  assert.equal(events(wlog, "offer").filter((m) => m.job_id === job.id).length, 1, "an accepted job is not offered again");
  const seen = statuses(rlog, job.id);
  assert.equal(new Set(seen).size, seen.length, `no status twice: ${seen}`);
  assert.deepEqual(seen.slice(-2), ["arrived", "completed"]);
  if (!gap) assert.deepEqual(seen, ["offered", "accepted", "arrived", "completed"]);
  assert.equal(events(wlog, "unauthorized").length + events(rlog, "unauthorized").length, 0);
  ws.close();
  rs.close();
});
