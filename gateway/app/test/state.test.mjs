import assert from "node:assert/strict";
import { test } from "node:test";
import { load } from "./load.mjs";

const s = await load("src/state.ts");

const job = (over = {}) => ({
  id: "j1", resident_id: "r1", lat: 51.5, lng: -0.12, skill: "plumbing", description: "leak",
  status: "searching", worker_id: null, attempts: 0, created_at: "2025-01-01T12:00:00Z", version: 1, ...over,
});
const track = (over = {}) => ({ type: "tracking", job_id: "j1", lat: 51.51, lng: -0.12, at: "2025-01-01T12:01:00Z", eta_s: 120, seq: 10, ...over });

test("jobs merge by version: a stale copy does not undo a newer one", () => {
  let st = s.initial();
  st = s.reduce(st, { type: "job", job: job({ status: "accepted", version: 3, worker_id: "w1", worker_name: "Pat" }) });
  st = s.reduce(st, { type: "jobs", jobs: [job({ version: 2, status: "offered" })] });
  assert.equal(st.jobs.j1.status, "accepted");
  // A message without worker_name keeps the name a read had.
  st = s.reduce(st, { type: "job", job: job({ status: "arrived", version: 4, worker_id: "w1" }) });
  assert.equal(st.jobs.j1.status, "arrived");
  assert.equal(st.jobs.j1.worker_name, "Pat");
});

test("tracking: the newest position wins, and it ends when the engineer arrives", () => {
  let st = s.reduce(s.initial(), { type: "job", job: job({ status: "accepted", version: 2, worker_id: "w1" }) });
  st = s.reduce(st, { type: "tracking", m: track() });
  st = s.reduce(st, { type: "tracking", m: track({ lat: 51.505, at: "2025-01-01T12:01:02Z", eta_s: 60, seq: 11 }) });
  st = s.reduce(st, { type: "tracking", m: track({ lat: 51.52, at: "2025-01-01T12:00:58Z", seq: 9 }) });
  assert.deepEqual(st.tracks.j1, { lat: 51.505, lng: -0.12, at: "2025-01-01T12:01:02Z", eta_s: 60 });
  st = s.reduce(st, { type: "job", job: job({ status: "arrived", version: 3, worker_id: "w1" }) });
  assert.equal(st.tracks.j1, undefined);
  st = s.reduce(st, { type: "tracking", m: track({ at: "2025-01-01T12:05:00Z", seq: 12 }) });
  assert.equal(st.tracks.j1, undefined, "a late one is dropped");
});

test("worker_position from a read counts as tracking", () => {
  const st = s.reduce(s.initial(), {
    type: "job",
    job: job({ status: "accepted", version: 2, worker_position: { lat: 1, lng: 2, at: "2025-01-01T12:00:00Z", eta_s: 30 } }),
  });
  assert.deepEqual(st.tracks.j1, { lat: 1, lng: 2, at: "2025-01-01T12:00:00Z", eta_s: 30 });
});

test("offers: revoked, answered, taken", () => {
  const offer = { type: "offer", job_id: "j1", lat: 1, lng: 2, skill: "plumbing", description: "leak", distance_m: 300, expires_at: "2025-01-01T12:00:15Z", seq: 5 };
  let st = s.reduce(s.initial(), { type: "offer", m: offer });
  assert.equal(st.offer.revoked, undefined);
  assert.equal(s.reduce(st, { type: "offer_revoked", m: { type: "offer_revoked", job_id: "other", reason: "expired", seq: 6 } }), st);
  assert.equal(s.reduce(st, { type: "offer_revoked", m: { type: "offer_revoked", job_id: "j1", reason: "expired", seq: 6 } }).offer.revoked, "expired");
  assert.equal(s.reduce(st, { type: "offer_done", job_id: "j1", why: "declined" }).offer.revoked, "declined");
  st = s.reduce(st, { type: "job", job: job({ status: "accepted", worker_id: "w1", version: 3 }) });
  assert.equal(st.offer.revoked, "accepted");
  assert.equal(s.activeJob(st, "w1").id, "j1");
  assert.equal(s.activeJob(st, "w2"), undefined);
});

test("the connection banner", () => {
  assert.equal(s.connection({ online: true, reachable: true, socket: "open" }), null);
  assert.equal(s.connection({ online: false, reachable: true, socket: "open" }).kind, "offline");
  assert.match(s.connection({ online: false, reachable: false, socket: "connecting" }).text, /offline/i);
  assert.equal(s.connection({ online: true, reachable: false, socket: "connecting" }).kind, "unreachable");
  assert.equal(s.connection({ online: true, reachable: true, socket: "connecting" }).kind, "reconnecting");
  const st = s.reduce(s.initial(), { type: "socket", state: "open" });
  assert.equal(s.reduce(st, { type: "socket", state: "open" }), st, "no change, same object");
  assert.equal(st.opens, 1);
  const again = s.reduce(s.reduce(st, { type: "socket", state: "connecting" }), { type: "socket", state: "open" });
  assert.equal(again.opens, 2, "every reopening counts: failed reads retry");
});

test("the field a server error names", () => {
  const fields = ["email", "password", "name", "lat", "attachments"];
  assert.equal(s.fieldOf("password: must have at least 8 characters", fields), "password");
  assert.equal(s.fieldOf("attachments[0]: not your upload", fields), "attachments");
  assert.equal(s.fieldOf("lat: must be in [-90, 90]", fields), "lat");
  assert.equal(s.fieldOf("email is already registered", fields), "email");
  assert.equal(s.fieldOf("body: expected an object", fields), null);
  assert.equal(s.fieldOf("something else", fields), null);
});

test("jobs newest first", () => {
  const jobs = { a: job({ id: "a", created_at: "2025-01-01T10:00:00Z" }), b: job({ id: "b", created_at: "2025-01-01T11:00:00Z" }) };
  assert.deepEqual(s.newestFirst(jobs).map((j) => j.id), ["b", "a"]);
});
