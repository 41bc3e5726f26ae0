// Helpers for the integration tests: users made through the library on a
// real dispatchd (scripts/server.mjs starts it), and waiting for events.
import WebSocket from "ws";
import { Dispatchd, unwrap, type DispatchdSocket, type SocketEvents, type SocketOptions } from "../../src/index.js";
import { TestServer, startServer } from "../../scripts/server.mjs";

export { TestServer, startServer };

export const PASSWORD = "Secret123";
let n = 0;

/** Socket options for tests: a short backoff cap so a restart is noticed quickly. */
export const FAST: SocketOptions = { backoffBaseMs: 100, backoffCapMs: 1_000 };

/** Every socket the tests opened: closed by {@link closeAll}, so a failed test leaves none reconnecting. */
const opened: DispatchdSocket[] = [];

/** A Dispatchd whose sockets {@link closeAll} closes. */
export class TestClient extends Dispatchd {
  constructor(srv: TestServer, token?: string) {
    super({ url: srv.url, WebSocket, ...(token ? { token } : {}) });
  }

  override socket(options?: SocketOptions): DispatchdSocket {
    const s = super.socket(options);
    opened.push(s);
    return s;
  }
}

/** Closes every socket the tests opened. */
export function closeAll(): void {
  for (const s of opened.splice(0)) s.close();
}

/** A registered and signed-in user. */
export async function user(srv: TestServer, role: "worker" | "resident", skills: string[] = ["plumbing"]): Promise<Dispatchd> {
  const d = new TestClient(srv);
  const email = `${role}-${process.pid}-${++n}@example.com`;
  await unwrap(
    d.rest.POST("/v1/auth/register", {
      body: { email, password: PASSWORD, name: `${role} ${n}`, role, ...(role === "worker" ? { skills } : {}) },
    }),
  );
  await d.login(email, PASSWORD);
  return d;
}

/** An ops client, its token minted with the server's secret. */
export function ops(srv: TestServer): Dispatchd {
  return new TestClient(srv, srv.token("ops-1", "ops"));
}

/** Every event of a socket, in arrival order. */
export type Log = Array<{ [K in keyof SocketEvents]: [K, SocketEvents[K]] }[keyof SocketEvents]>;

/** Records the socket's events. */
export function record(s: DispatchdSocket): Log {
  const log: Log = [];
  for (const name of ["offer", "offer_revoked", "job", "tracking", "resumed", "gap", "state", "unauthorized", "error"] as const) {
    s.on(name, ((p: unknown) => void log.push([name, p] as never)) as never);
  }
  return log;
}

/** Waits until `check` returns a value other than undefined/false (errors count as not yet). */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(20);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The events of one name, with their payloads. */
export function events<K extends keyof SocketEvents>(log: Log, name: K): Array<SocketEvents[K]> {
  return log.filter((e) => e[0] === name).map((e) => e[1] as SocketEvents[K]);
}

/** The worker as ops sees it on the map (`GET /v1/workers/nearby`). */
export async function seenByOps(o: Dispatchd, workerId: string, lat: number, lng: number) {
  const r = await unwrap(o.rest.GET("/v1/workers/nearby", { params: { query: { lat: String(lat), lng: String(lng), radius_m: "50000", limit: "500" } } }));
  return r.workers.find((w) => w.id === workerId);
}

/**
 * The server's own record of a user's sequenced messages: a plain socket
 * resuming from `since` gets every one it would have sent, then `resumed`.
 */
export async function serverReplay(srv: TestServer, token: string, since: number): Promise<{ messages: Array<Record<string, unknown>>; resumed: Record<string, unknown> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/v1/ws?token=${encodeURIComponent(token)}&since=${since}`);
  const messages: Array<Record<string, unknown>> = [];
  try {
    return await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error("no resumed within 10 s")), 10_000);
      ws.on("error", fail);
      ws.on("message", (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.type === "resumed") {
          clearTimeout(timer);
          ok({ messages, resumed: m });
        } else if (typeof m.seq === "number") messages.push(m);
      });
    });
  } finally {
    ws.close();
  }
}
