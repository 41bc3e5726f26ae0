// Dispatchd over a fake fetch: login, the bearer token on every REST call,
// one `unauthorized` per token, errors as DispatchdError, socket URLs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Dispatchd, DispatchdError, unwrap } from "../../src/index.js";
import { FakeWS, flush } from "./fakes.js";

function fakeServer(handler: (req: Request) => Response | Promise<Response>) {
  const calls: Request[] = [];
  const fetch = async (req: Request) => {
    calls.push(req.clone());
    return handler(req);
  };
  return { fetch, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

test("login stores the token and the user; REST calls carry the token", async () => {
  const srv = fakeServer(async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/v1/auth/login") {
      const body = (await req.json()) as { email: string; password: string };
      assert.deepEqual(body, { email: "ria@example.com", password: "Secret123" });
      return json(200, { token: "t1", expires_at: "2030-01-01T00:00:00Z", user: { id: "u1", role: "resident", name: "Ria" } });
    }
    return json(201, { id: "job1", status: "searching" });
  });
  const d = new Dispatchd({ url: "http://dispatchd.test/", fetch: srv.fetch });
  const user = await d.login("ria@example.com", "Secret123");
  assert.deepEqual(user, { id: "u1", role: "resident", name: "Ria" });
  assert.equal(d.token, "t1");
  assert.deepEqual(d.user, user);
  const { data } = await d.rest.POST("/v1/jobs", { body: { lat: 52.5, lng: 13.4, skill: "plumbing" } });
  assert.equal(data?.id, "job1");
  assert.equal(srv.calls[1]!.url, "http://dispatchd.test/v1/jobs");
  assert.equal(srv.calls[1]!.headers.get("authorization"), "Bearer t1");
});

test("a wrong password rejects with the server's error and is not `unauthorized`", async () => {
  const srv = fakeServer(() => json(401, { error: { code: "unauthorized", message: "wrong email or password" } }));
  const d = new Dispatchd({ url: "http://dispatchd.test", fetch: srv.fetch });
  let events = 0;
  d.on("unauthorized", () => events++);
  await assert.rejects(
    d.login("x@example.com", "nope"),
    (e: DispatchdError) => e instanceof DispatchdError && e.code === "unauthorized" && e.status === 401 && e.message === "wrong email or password",
  );
  assert.equal(events, 0);
  assert.equal(d.token, undefined);
});

test("a 401 from REST is one `unauthorized` event per token", async () => {
  const srv = fakeServer(() => json(401, { error: { code: "unauthorized", message: "expired token" } }));
  const d = new Dispatchd({ url: "http://dispatchd.test", token: "old", fetch: srv.fetch });
  const events: DispatchdError[] = [];
  d.on("unauthorized", (e) => events.push(e));
  await d.rest.GET("/v1/jobs", {});
  await d.rest.GET("/v1/jobs/{id}", { params: { path: { id: "j" } } });
  assert.equal(events.length, 1);
  assert.equal(events[0]!.code, "unauthorized");
  d.token = "new";
  await d.rest.GET("/v1/jobs", {});
  assert.equal(events.length, 2, "a new token that fails too is worth telling");
});

test("unwrap: the data, or the server's error with status and Retry-After", async () => {
  const srv = fakeServer((req) =>
    new URL(req.url).pathname === "/v1/jobs"
      ? json(429, { error: { code: "rate_limited", message: "slow down" } }, { "retry-after": "7" })
      : json(200, { jobs: [] }),
  );
  const d = new Dispatchd({ url: "http://dispatchd.test", token: "t", fetch: srv.fetch });
  await assert.rejects(
    unwrap(d.rest.POST("/v1/jobs", { body: { lat: 1, lng: 2, skill: "x" } })),
    (e: DispatchdError) => e.code === "rate_limited" && e.status === 429 && e.retryAfterS === 7,
  );
  assert.deepEqual(await unwrap(d.rest.GET("/v1/ops/unmatched", {})), { jobs: [] });
});

test("socket URLs: ws/wss, path prefix kept, token, format and since in the query", async () => {
  FakeWS.reset();
  const d = new Dispatchd({ url: "https://example.com/api", token: "a b", WebSocket: FakeWS });
  const s = d.socket({ format: "msgpack", since: 12 });
  await flush();
  const u = new URL(FakeWS.last.url);
  assert.equal(u.protocol, "wss:");
  assert.equal(u.pathname, "/api/v1/ws");
  assert.equal(u.searchParams.get("token"), "a b");
  assert.equal(u.searchParams.get("format"), "msgpack");
  assert.equal(u.searchParams.get("since"), "12");
  s.close();
  const plain = new Dispatchd({ url: "http://127.0.0.1:8080", token: "t", WebSocket: FakeWS }).socket();
  await flush();
  assert.equal(FakeWS.last.url, "ws://127.0.0.1:8080/v1/ws?token=t");
  plain.close();
});

test("no WebSocket in the runtime: a clear error", () => {
  const g = globalThis as { WebSocket?: unknown };
  const saved = g.WebSocket;
  delete g.WebSocket;
  try {
    assert.throws(() => new Dispatchd({ url: "http://x.test" }).socket(), /pass one/);
  } finally {
    if (saved) g.WebSocket = saved;
  }
});
