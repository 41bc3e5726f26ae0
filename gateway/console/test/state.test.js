import { test } from "node:test";
import assert from "node:assert/strict";
import { Fleet, age, money, jobIdFrom } from "../src/state.js";

test("a fleet snapshot replaces, a diff updates", () => {
  const f = new Fleet();
  f.applyFleet({ workers: [{ id: "a", lat: 1, lng: 2, state: "available" },
                           { id: "b", lat: 3, lng: 4, state: "busy" }] }, true);
  assert.equal(f.workers.size, 2);
  f.takeDirty();
  f.applyFleet({ workers: [{ id: "a", lat: 1.5, lng: 2, state: "offered" }] }, false);
  assert.deepEqual(f.takeDirty(), { workers: ["a"], jobs: [] });
  assert.equal(f.workers.get("a").state, "offered");
  assert.deepEqual(f.counts(), { available: 0, offered: 1, busy: 1, stale: 0, offline: 0 });
  f.applyFleet({ workers: [{ id: "c", lat: 0, lng: 0, state: "stale" }] }, true);
  assert.equal(f.workers.size, 1);
  assert.deepEqual(new Set(f.takeDirty().workers), new Set(["a", "b", "c"]));
});

test("jobs are kept while open, dropped when they end, never rolled back", () => {
  const f = new Fleet();
  f.applyJob({ id: "j", status: "searching", version: 1 });
  f.applyJob({ id: "j", status: "offered", version: 2 });
  f.applyJob({ id: "j", status: "searching", version: 1 });
  assert.equal(f.jobs.get("j").status, "offered");
  f.applyJob({ id: "j", status: "completed", version: 5 });
  assert.equal(f.jobs.has("j"), false);
  assert.deepEqual(f.takeDirty().jobs, ["j"]);
  f.applyJob({ status: "searching" });
  assert.equal(f.jobs.size, 0);
});

test("formatting", () => {
  const now = Date.parse("2026-11-24T12:00:00Z");
  assert.equal(age("2026-11-24T11:59:30Z", now), "30 s ago");
  assert.equal(age("2026-11-24T11:00:00Z", now), "1 h ago");
  assert.equal(age("nonsense", now), "");
  assert.equal(money(12345), "$123.45");
  assert.equal(jobIdFrom("  job_1 "), "job_1");
  assert.equal(jobIdFrom("has space"), null);
  assert.equal(jobIdFrom(""), null);
});
