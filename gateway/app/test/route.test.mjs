import assert from "node:assert/strict";
import { test } from "node:test";
import { load } from "./load.mjs";

const r = await load("src/route.ts");

test("hash routes parse and print back", () => {
  for (const route of [{ name: "home" }, { name: "new" }, { name: "properties" }, { name: "logs" }, { name: "profile" }, { name: "signup" }, { name: "job", id: "j-1/2" }]) {
    assert.deepEqual(r.parse(r.href(route)), route);
  }
  assert.deepEqual(r.parse(""), { name: "home" });
  assert.deepEqual(r.parse("#/jobs/abc"), { name: "job", id: "abc" });
  assert.deepEqual(r.parse("#/jobs"), { name: "home" });
  assert.deepEqual(r.parse("#/nowhere"), { name: "home" });
});
