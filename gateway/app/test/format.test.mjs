import assert from "node:assert/strict";
import { test } from "node:test";
import { load } from "./load.mjs";

const f = await load("src/format.ts");

test("money is dollars and cents", () => {
  assert.equal(f.money(0), "$0.00");
  assert.equal(f.money(1000), "$10.00");
  assert.equal(f.money(1234), "$12.34");
  assert.equal(f.money(5), "$0.05");
  assert.equal(f.money(-250), "-$2.50");
  assert.equal(f.moneyRange({ low: 4000, high: 12000 }), "$40.00–$120.00");
  assert.equal(f.moneyRange({ low: 1000, high: 1000 }), "$10.00");
});

test("eta rounds up to whole minutes", () => {
  assert.equal(f.eta(0), "under a minute");
  assert.equal(f.eta(59), "under a minute");
  assert.equal(f.eta(60), "1 min");
  assert.equal(f.eta(61), "2 min");
  assert.equal(f.eta(3599), "1 h 00 min");
  assert.equal(f.eta(3900), "1 h 05 min");
  assert.equal(f.eta(-1), "unknown");
  assert.equal(f.eta(Number.NaN), "unknown");
});

test("countdown to expires_at", () => {
  const now = Date.parse("2025-01-01T12:00:00Z");
  assert.equal(f.secondsLeft("2025-01-01T12:00:15Z", now), 15);
  assert.equal(f.secondsLeft("2025-01-01T12:00:14.200Z", now), 15, "a started second counts");
  assert.equal(f.secondsLeft("2025-01-01T11:59:00Z", now), 0, "never negative");
  assert.equal(f.secondsLeft("not a time", now), 0);
  assert.equal(f.countdown(75), "1:15");
  assert.equal(f.countdown(9), "0:09");
  assert.equal(f.countdown(0), "0:00");
});

test("distance in metres and kilometres", () => {
  assert.equal(f.distance(0), "0 m");
  assert.equal(f.distance(849.6), "850 m");
  assert.equal(f.distance(1234), "1.2 km");
  assert.equal(f.distance(15_400), "15 km");
});

test("timeline of a job on the way", () => {
  const steps = f.timeline({
    status: "accepted",
    created_at: "2025-01-01T12:00:00Z",
    offered_at: "2025-01-01T12:00:01Z",
    accepted_at: "2025-01-01T12:00:05Z",
  });
  assert.deepEqual(
    steps.map((s) => [s.key, s.state]),
    [["created", "done"], ["offered", "done"], ["accepted", "current"], ["arrived", "todo"], ["completed", "todo"]],
  );
  assert.equal(steps[2].at, "2025-01-01T12:00:05Z");
});

test("timeline of a searching, a completed and a cancelled job", () => {
  const searching = f.timeline({ status: "searching", created_at: "2025-01-01T12:00:00Z" });
  assert.deepEqual(searching.map((s) => s.state), ["done", "current", "todo", "todo", "todo"]);
  assert.equal(searching[1].label, "Looking for an engineer");
  const done = f.timeline({
    status: "completed", created_at: "a", offered_at: "b", accepted_at: "c", arrived_at: "d", completed_at: "e",
  });
  assert.ok(done.every((s) => s.state === "done"));
  const cancelled = f.timeline({ status: "cancelled", created_at: "a", offered_at: "b", cancelled_at: "z" });
  assert.deepEqual(cancelled.map((s) => [s.key, s.state]), [["created", "done"], ["offered", "done"], ["cancelled", "failed"]]);
  assert.equal(cancelled.at(-1).at, "z");
});

test("open and closed statuses", () => {
  assert.ok(f.isOpen("accepted"));
  assert.ok(!f.isOpen("completed"));
  assert.ok(!f.isOpen("unmatched"));
});
