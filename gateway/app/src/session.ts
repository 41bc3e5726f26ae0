/**
 * One signed-in person: the `Dispatchd` client (token kept in localStorage
 * so a reload stays signed in), its one socket wired into the store, and
 * what the app knows about the network. Screens call the library through
 * `session.d.rest` and `session.socket`; the protocol itself (acks, resume,
 * dedup, throttling) is the library's.
 * @module
 */
import { Dispatchd, unwrap, type DispatchdError, type DispatchdSocket, type User } from "@dispatchd/client";
import { Store } from "./store.js";

const KEY = "dispatchd.app.session";

/** What survives a reload. */
export interface Saved {
  token: string;
  user: User;
}

export function loadSaved(): Saved | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Partial<Saved>;
    return typeof s.token === "string" && s.user && typeof s.user.id === "string" ? (s as Saved) : null;
  } catch {
    return null;
  }
}

/** A fetch that tells the store whether the server answered. */
function watchedFetch(store: Store): (r: Request) => Promise<Response> {
  return async (r) => {
    try {
      const res = await fetch(r);
      store.dispatch({ type: "reachable", reachable: true });
      return res;
    } catch (e) {
      store.dispatch({ type: "reachable", reachable: false });
      throw e;
    }
  };
}

/** A client for signing in or up (no token yet). */
export function anonymous(): Dispatchd {
  return new Dispatchd({ url: location.origin });
}

export class Session {
  readonly store: Store;
  readonly d: Dispatchd;
  readonly socket: DispatchdSocket;
  user: User;
  readonly #offs: Array<() => void> = [];

  /** @param onEnded called once when the token is refused (expired): sign in again */
  constructor(saved: Saved, onEnded: (why: string) => void, store: Store = new Store()) {
    this.store = store;
    this.user = saved.user;
    this.d = new Dispatchd({ url: location.origin, token: saved.token, fetch: watchedFetch(store) });
    this.d.user = saved.user;
    this.#offs.push(this.d.on("unauthorized", () => onEnded("Your session has ended: please sign in again.")));
    // Reconnects wait at most 8 s (not the library's 30 s): a phone back in
    // signal is live again soon.
    const s = this.d.socket({ format: "json", backoffCapMs: 8_000 });
    this.socket = s;
    const put = store.dispatch.bind(store);
    this.#offs.push(
      s.on("state", (state) => put({ type: "socket", state })),
      s.on("job", (m) => put({ type: "job", job: m.job })),
      s.on("tracking", (m) => put({ type: "tracking", m })),
      s.on("offer", (m) => put({ type: "offer", m })),
      s.on("offer_revoked", (m) => put({ type: "offer_revoked", m })),
      // History was missed: read the jobs again.
      s.on("gap", () => void this.refreshJobs().catch(() => undefined)),
      s.on("state", (state) => {
        if (state === "open") put({ type: "reachable", reachable: true });
      }),
    );
    put({ type: "socket", state: s.state });
  }

  /** Reads the caller's jobs (`GET /v1/jobs`) into the store. */
  async refreshJobs(): Promise<void> {
    const { jobs } = await unwrap(this.d.rest.GET("/v1/jobs", { params: { query: { limit: "100" } } }));
    this.store.dispatch({ type: "jobs", jobs });
  }

  /** Reads one job (with `worker_position`) into the store. */
  async refreshJob(id: string): Promise<void> {
    const job = await unwrap(this.d.rest.GET("/v1/jobs/{id}", { params: { path: { id } } }));
    this.store.dispatch({ type: "job", job });
  }

  /** Ends the session here: the socket closes, the saved token is forgotten. */
  close(): void {
    for (const off of this.#offs) off();
    this.socket.close();
    localStorage.removeItem(KEY);
  }

  static save(saved: Saved): void {
    localStorage.setItem(KEY, JSON.stringify(saved));
  }
}

/** The sign-in call; the result is saved for reloads. */
export async function signIn(email: string, password: string): Promise<Saved> {
  const d = anonymous();
  const user = await d.login(email, password);
  const saved: Saved = { token: d.token!, user };
  Session.save(saved);
  return saved;
}

/** Human text for any failure of a call: the server's message, or that it could not be reached. */
export function describe(e: unknown): string {
  const err = e as Partial<DispatchdError> | undefined;
  if (err && typeof err.code === "string") {
    if (err.code === "timeout") return "No answer from dispatchd in time. Try again.";
    if (err.code === "disconnected" || err.code === "closed") return "The connection dropped before dispatchd answered. Try again.";
    if (err.code === "rate_limited") return `Too many requests: try again in ${err.retryAfterS ?? 1} s.`;
    return err.message || err.code;
  }
  if (e instanceof TypeError) return "Cannot reach dispatchd: you may be offline.";
  return e instanceof Error ? e.message : String(e);
}
