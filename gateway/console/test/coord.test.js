// The coordinator's screens' pure logic: occurrences in a zone, colours,
// hash routes, error fields, keyset paging and CSV pages.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  wallClock, zonedToUtc, addSteps, occurrences, toLocalInput, fromLocalInput, bothZones,
} from "../src/coord/time.js";
import {
  occurrenceKind, KINDS, parseRoute, routeHash, fieldOf, nextPage, takePage, parseCsv, csvRecords,
  centsOf, isLocation, reorderSteps, MOVEMENT_FIELDS,
} from "../src/coord/logic.js";

const iso = (ms) => new Date(ms).toISOString();

test("wall clock and back, across a DST change", () => {
  // 2025-03-30: Berlin goes from +01:00 to +02:00 at 02:00 local.
  assert.deepEqual(wallClock(Date.parse("2025-03-29T08:00:00Z"), "Europe/Berlin"),
    { y: 2025, mo: 3, d: 29, h: 9, mi: 0, s: 0 });
  assert.equal(iso(zonedToUtc({ y: 2025, mo: 3, d: 31, h: 9, mi: 0, s: 0 }, "Europe/Berlin")), "2025-03-31T07:00:00.000Z");
  assert.equal(iso(zonedToUtc({ y: 2025, mo: 1, d: 15, h: 9, mi: 0, s: 0 }, "America/New_York")), "2025-01-15T14:00:00.000Z");
  // A wall clock in the gap lands after it.
  assert.equal(iso(zonedToUtc({ y: 2025, mo: 3, d: 30, h: 2, mi: 30, s: 0 }, "Europe/Berlin")), "2025-03-30T01:30:00.000Z");
  assert.equal(toLocalInput(Date.parse("2025-07-01T07:00:00Z"), "Europe/Berlin"), "2025-07-01T09:00");
  assert.equal(iso(fromLocalInput("2025-07-01T09:00", "Europe/Berlin")), "2025-07-01T07:00:00.000Z");
  assert.equal(fromLocalInput("tomorrow", "UTC"), null);
});

test("month steps keep the day of the month, clamped", () => {
  const jan31 = { y: 2024, mo: 1, d: 31, h: 9, mi: 0, s: 0 };
  assert.deepEqual([1, 2, 3].map((n) => addSteps(jan31, "month", n, 31)).map((w) => `${w.mo}-${w.d}`),
    ["2-29", "3-31", "4-30"]);
  assert.deepEqual(addSteps({ y: 2024, mo: 2, d: 29, h: 0, mi: 0, s: 0 }, "year", 1, 29), { y: 2025, mo: 2, d: 28, h: 0, mi: 0, s: 0 });
  assert.deepEqual(addSteps(jan31, "week", 1, 31), { ...jan31, mo: 2, d: 7 });
});

test("occurrences: the current due date first, then the series, local time held across DST", () => {
  const s = {
    id: "s1", title: "Boiler", status: "overdue", timezone: "Europe/Berlin", anchor: "due",
    start_at: "2025-03-01T08:00:00Z", next_due_at: "2025-03-22T08:00:00Z", every: { unit: "week", interval: 1 },
  };
  const occ = occurrences(s, Date.parse("2025-03-01T00:00:00Z"), Date.parse("2025-04-10T00:00:00Z"));
  assert.deepEqual(occ.map((o) => iso(o.at)), [
    "2025-03-22T08:00:00.000Z", "2025-03-29T08:00:00.000Z", "2025-04-05T07:00:00.000Z"]);
  assert.deepEqual(occ.map((o) => occurrenceKind({ first: o.first, status: s.status })), ["overdue", "scheduled", "scheduled"]);
  assert.equal(occurrences({ ...s, status: "paused" }, 0, Date.parse("2026-01-01T00:00:00Z")).length, 1);
  const c = occurrences({ ...s, anchor: "completion" }, 0, Date.parse("2025-04-01T00:00:00Z"));
  assert.equal(c[1].projected, true);
  // A long past does not cost a walk of every step; 09:00 in Berlin all year.
  const daily = { ...s, start_at: "2000-01-01T08:00:00Z", next_due_at: "2025-06-01T07:00:00Z", every: { unit: "day", interval: 1 } };
  const d = occurrences(daily, Date.parse("2025-06-01T00:00:00Z"), Date.parse("2025-06-04T00:00:00Z"));
  assert.deepEqual(d.map((o) => iso(o.at)), ["2025-06-01T07:00:00.000Z", "2025-06-02T07:00:00.000Z", "2025-06-03T07:00:00.000Z"]);
});

test("occurrence colours", () => {
  assert.equal(occurrenceKind({ log: true }), "done");
  assert.equal(occurrenceKind({ first: true, status: "due" }), "due");
  assert.equal(occurrenceKind({ first: true, status: "upcoming" }), "scheduled");
  assert.equal(occurrenceKind({ first: false, status: "overdue" }), "scheduled");
  assert.equal(new Set(Object.values(KINDS).map((k) => k.colour)).size, 5);
});

test("times in both zones", () => {
  const t = Date.parse("2025-07-01T07:00:00Z");
  assert.match(bothZones(t, "Europe/Berlin", "America/New_York"), /09:00 Europe\/Berlin \(.*03:00 your time\)/);
  assert.doesNotMatch(bothZones(t, "Europe/Berlin", "Europe/Berlin"), /your time/);
});

test("hash routes carry the filters", () => {
  assert.deepEqual(parseRoute("#/logs?property=p%201&from=2025-01-01&to="), {
    screen: "logs", params: { property: "p 1", from: "2025-01-01" } });
  assert.deepEqual(parseRoute(""), { screen: "map", params: {} });
  assert.deepEqual(parseRoute("#/nowhere"), { screen: "map", params: {} });
  assert.equal(routeHash("logs", { to: "", property: "p 1", from: "2025-01-01", low: false }),
    "#/logs?from=2025-01-01&property=p+1");
  const h = routeHash("stock", { part: "a&b", location: "depot:main" });
  assert.deepEqual(parseRoute(h).params, { part: "a&b", location: "depot:main" });
});

test("the field a server error names", () => {
  const fields = ["title", "timezone", "every.interval", "every.unit", "start_at"];
  assert.equal(fieldOf("timezone: unknown time zone", fields), "timezone");
  assert.equal(fieldOf("every.interval: must be an integer 1 to 1000", fields), "every.interval");
  assert.equal(fieldOf("every: bad", fields), "every.interval");
  assert.equal(fieldOf("missing field `title` at line 1 column 2", fields), "title");
  assert.equal(fieldOf("something else went wrong", fields), null);
});

test("keyset paging over an inclusive `to`", () => {
  const rows = [{ id: "a", t: "3" }, { id: "b", t: "2" }, { id: "c", t: "1" }, { id: "d", t: "1" }];
  const p = nextPage(rows, (r) => r.t, (r) => r.id, 4);
  assert.deepEqual({ to: p.to, limit: p.limit, seen: [...p.seen] }, { to: "1", limit: 6, seen: ["c", "d"] });
  const got = [{ id: "d", t: "1" }, { id: "c", t: "1" }, { id: "e", t: "1" }, { id: "f", t: "0" }];
  assert.deepEqual(takePage(got, p, (r) => r.id), { rows: [{ id: "e", t: "1" }, { id: "f", t: "0" }], more: false });
  assert.equal(nextPage([], (r) => r.t, (r) => r.id, 4), null);
});

test("CSV: parsed, and pages joined record by record", () => {
  const text = 'id,notes\r\n1,"said ""hi""\r\nover two lines"\r\n2,\'=SUM(A1)\r\n';
  assert.deepEqual(parseCsv(text), [["id", "notes"], ["1", 'said "hi"\r\nover two lines'], ["2", "'=SUM(A1)"]]);
  const [head, recs] = csvRecords(text);
  assert.equal(head, "id,notes");
  assert.deepEqual(recs, ['1,"said ""hi""\r\nover two lines"', "2,'=SUM(A1)"]);
});

test("stock form helpers", () => {
  assert.equal(centsOf("12.5"), 1250);
  assert.equal(centsOf("$3"), 300);
  assert.equal(centsOf("abc"), null);
  assert.ok(isLocation("depot:main") && isLocation("van:w1") && !isLocation("shelf:1") && !isLocation("depot:"));
  assert.deepEqual(reorderSteps("open"), ["ordered", "received", "cancel"]);
  assert.deepEqual(reorderSteps("ordered"), ["received", "cancel"]);
  assert.deepEqual(reorderSteps("received"), []);
  assert.equal(MOVEMENT_FIELDS.receive.from, "no");
});
