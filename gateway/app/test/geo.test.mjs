import assert from "node:assert/strict";
import { test } from "node:test";
import { load } from "./load.mjs";

const g = await load("src/geo.ts");

test("haversine: a known distance", () => {
  // London Eye to Big Ben: about 0.54 km.
  const d = g.haversine({ lat: 51.5033, lng: -0.1196 }, { lat: 51.5007, lng: -0.1246 });
  assert.ok(Math.abs(d - 450) < 30, `${d}`);
  assert.equal(g.haversine({ lat: 10, lng: 10 }, { lat: 10, lng: 10 }), 0);
  // A degree of latitude is about 111.2 km.
  assert.ok(Math.abs(g.haversine({ lat: 0, lng: 0 }, { lat: 1, lng: 0 }) - 111_195) < 10);
});

test("positions: at most every 2 s, a 25 m move, a refresh every 10 s", () => {
  const t = 1_000_000;
  const at = { lat: 51.5, lng: -0.12, at: t };
  const near = { lat: 51.5001, lng: -0.12 }; // ~11 m
  const far = { lat: 51.5003, lng: -0.12 }; // ~33 m
  assert.equal(g.shouldSend(null, at, t), true, "the first one goes");
  assert.equal(g.shouldSend(at, far, t + 1_999), false, "never within 2 s");
  assert.equal(g.shouldSend(at, far, t + 2_000), true, "a 25 m move after 2 s");
  assert.equal(g.shouldSend(at, near, t + 5_000), false, "a small move waits");
  assert.equal(g.shouldSend(at, near, t + 10_000), true, "refreshed before it goes stale");
  assert.equal(g.shouldSend(at, at, t + 10_000), true, "standing still is refreshed too");
});

test("navigation links", () => {
  assert.equal(g.geoUri({ lat: 51.5, lng: -0.12 }), "geo:51.500000,-0.120000");
  assert.equal(g.osmUrl({ lat: 51.5, lng: -0.12 }), "https://www.openstreetmap.org/?mlat=51.500000&mlon=-0.120000#map=17/51.500000/-0.120000");
});
