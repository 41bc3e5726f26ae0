/**
 * The socket: one object that owns a dispatchd WebSocket across its whole
 * life — acks by `req_id`, reconnects with capped exponential backoff and
 * full jitter, resume with `?since=`, de-duplication by `seq`, an app-level
 * ping, the re-sent availability and position after a reconnect, throttled
 * positions, and token expiry. All of that logic lives in this file (as in
 * centrifuge-js); time and randomness come in through {@link Clock} and
 * `random` so that the unit tests drive it with a fake clock.
 * @module
 */
import { loadCodec, type Codec, type Format } from "./codec.js";
import { Emitter } from "./emitter.js";
import { DispatchdError } from "./errors.js";
import {
  isSequenced,
  type ClientMessage,
  type FleetMessage,
  type JobMessage,
  type MaintenanceMessage,
  type OfferMessage,
  type OfferRevokedMessage,
  type SequencedMessage,
  type ServerMessage,
  type TrackingMessage,
} from "./messages.js";

/**
 * `connecting`: opening, or waiting to reconnect after a drop; `open`:
 * connected; `closed`: for good (`close()`, or the token was refused).
 */
export type SocketState = "connecting" | "open" | "closed";

/** The `resumed` event: the server's replay after a reconnect is over. */
export interface ResumedEvent {
  /** The server's latest `seq` when it resumed; null for a socket that had seen none (see `gap`). */
  seq: number | null;
  /** True when messages were missed: re-read over HTTP. */
  gap: boolean;
  /** How many missed messages the replay delivered (after de-duplication). */
  replayed: number;
}

/** Events of a {@link DispatchdSocket}, by name. */
export interface SocketEvents {
  /** A job offered to this worker (once per offer, also across reconnects). */
  offer: OfferMessage;
  /** An offer taken back from this worker. */
  offer_revoked: OfferRevokedMessage;
  /** A job this user follows changed. */
  job: JobMessage;
  /** The engineer's position on the way to a job (v1.2). */
  tracking: TrackingMessage;
  /** A maintenance alert (server extension). */
  maintenance: MaintenanceMessage;
  /** Ops watching `fleet`: workers on the map. */
  fleet: FleetMessage;
  /** A reconnect's replay is complete; live messages follow. */
  resumed: ResumedEvent;
  /** Messages were missed (the server's `gap`, or a reconnect with nothing to resume from): re-read over HTTP. */
  gap: { seq: number | null };
  /** Connection state changes. */
  state: SocketState;
  /** The token was refused: the socket is closed until a new token is set (sign in again). Emitted once. */
  unauthorized: DispatchdError;
  /** A failure not tied to a `send`: a server `error` without `req_id`, an undecodable frame, a failed re-send. */
  error: DispatchdError;
  /** Every server message, after de-duplication (for extensions the events above do not name). */
  message: ServerMessage;
}

/** Options of {@link Dispatchd.socket}. */
export interface SocketOptions {
  /** Wire format: `"json"` (default) or `"msgpack"` (needs `@msgpack/msgpack`). */
  format?: Format;
  /** How long `send` waits for its answer before it rejects with `timeout` (default 10 000 ms). */
  sendTimeoutMs?: number;
  /** The first reconnect waits up to this long (default 500 ms); each failure doubles it. */
  backoffBaseMs?: number;
  /** The longest reconnect wait (default 30 000 ms). */
  backoffCapMs?: number;
  /** After this long without any message the socket sends `ping` (default 10 000 ms). */
  pingEveryMs?: number;
  /** No message this long after a `ping`: the connection is dead, reconnect (default 5 000 ms). */
  pongTimeoutMs?: number;
  /**
   * Positions `track` sends per minute at most: the server's
   * `[limits] locations_per_minute` (default 1 200, i.e. one every 50 ms).
   */
  locationsPerMinute?: number;
  /**
   * Requests written and not yet answered, at most (default 64); more wait
   * their turn. The server closes a client that lets its outbound queue
   * (`[websocket] outbound_queue`, 256) fill, which a burst of unanswered
   * requests would do.
   */
  maxInFlight?: number;
  /** Resume from this `seq` on the first connect (a `seq` the app kept from an earlier socket). */
  since?: number;
  /** Time source (for tests); defaults to the platform's timers and `Date.now`. */
  clock?: Clock;
  /** Uniform random numbers in [0, 1) for the backoff jitter (for tests); defaults to `Math.random`. */
  random?: () => number;
}

/** A time source: the socket's only access to time. */
export interface Clock {
  /** Milliseconds, monotonic enough for intervals. */
  now(): number;
  /** Schedules `fn` after `ms`; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a handle of {@link Clock.setTimeout}. */
  clearTimeout(handle: unknown): void;
}

/**
 * An event handler property. Checked like a method (bivariantly), so that the
 * browser's and `ws`'s handlers, typed with their own event classes, fit.
 */
export type Handler<E> = { handle(ev: E): void }["handle"];

/** The parts of a WebSocket the socket uses (the browser's, or the `ws` package's). */
export interface WebSocketLike {
  /** Set to `"arraybuffer"`: MessagePack frames arrive as `ArrayBuffer`. */
  binaryType: string;
  /** Writes one frame: text (JSON) or binary (MessagePack). */
  send(data: string | Uint8Array): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** The connection opened. */
  onopen: Handler<unknown> | null;
  /** A frame arrived: a string (text) or an `ArrayBuffer` (binary). */
  onmessage: Handler<{ data: unknown }> | null;
  /** The connection ended. */
  onclose: Handler<{ code: number; reason: string }> | null;
  /** Something failed (`ws` says what in `message`; browsers do not). */
  onerror: Handler<unknown> | null;
}

/** A WebSocket constructor: the global `WebSocket`, or `ws`'s in Node 20. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What the socket needs from its {@link Dispatchd} (or from a test). */
export interface SocketDeps {
  /** The WebSocket URL for a connect (token, format and `since` in the query). */
  url(query: { format: Format; since: number | undefined }): string;
  /** The WebSocket constructor to use. */
  WebSocket: WebSocketConstructor;
  /**
   * After a connect failed before opening: true when the token is refused
   * (expired, revoked) — browsers do not show a refused upgrade's status,
   * so this asks over HTTP. False for anything else (server down …).
   */
  tokenRefused(failure: { message: string | undefined }): Promise<boolean>;
  /** Told once when the socket stops for an unauthorized token. */
  onUnauthorized?(e: DispatchdError): void;
  /** Told when the socket is closed for good (`close()`). */
  onClosed?(): void;
}

/** The full-jitter backoff delay before reconnect number `attempt` (0-based). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** A close reason that means the token is no longer good (none today; a later server may say so). */
const TOKEN_CLOSE = /token|unauthori[sz]ed/i;

interface Pending {
  msg: ClientMessage;
  resolve(): void;
  reject(e: DispatchdError): void;
  timer: unknown;
  /** Written to a connection (a drop before its answer rejects it). */
  written: boolean;
  /** Sent by the socket itself (the re-sent availability): failures become `error` events. */
  internal: boolean;
}

/**
 * A dispatchd WebSocket that survives drops. Made by {@link Dispatchd.socket};
 * it connects at once.
 *
 * @example
 * ```ts
 * const s = d.socket();
 * s.on("offer", (o) => s.send({ type: "accept", job_id: o.job_id }));
 * await s.send({ type: "availability", available: true });
 * s.track(52.52, 13.405);
 * ```
 */
export class DispatchdSocket extends Emitter<SocketEvents> {
  readonly #deps: SocketDeps;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #format: Format;
  readonly #sendTimeoutMs: number;
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #pingEveryMs: number;
  readonly #pongTimeoutMs: number;
  readonly #trackEveryMs: number;
  readonly #maxInFlight: number;

  #state: SocketState = "connecting";
  /** Why the socket stopped for good, once it has. */
  #stopped: "closed" | "unauthorized" | null = null;
  #codec: Codec | null = null;
  #ws: WebSocketLike | null = null;
  /** The current connection opened (a drop before that is a failed connect). */
  #opened = false;
  /** Some connection opened once (later connects are reconnects). */
  #everOpened = false;
  /** Failed connects since the last open: the backoff exponent. */
  #attempt = 0;
  #reconnectTimer: unknown = null;
  #pingTimer: unknown = null;
  #pongTimer: unknown = null;

  #nextReqId = 1;
  readonly #pending = new Map<number, Pending>();
  /** req_ids not yet written, in the order `send` was called. */
  #queue: number[] = [];
  /** Requests written and not yet answered. */
  #inFlight = 0;

  /** The highest `seq` delivered, and what was delivered at exactly that `seq`. */
  #lastSeq: number | undefined;
  #atLastSeq = new Set<string>();
  /** Sequenced messages delivered since the current connection opened (until `resumed`). */
  #replayed = 0;
  /** The current connect asked to resume (`since` sent). */
  #resuming = false;

  /** The last availability given to `send`: re-sent on every reconnect. */
  #availability: boolean | undefined;
  /** The latest tracked position (re-sent on reconnect), and the one still to send. */
  #lastPos: { lat: number; lng: number } | undefined;
  #pendingPos: { lat: number; lng: number } | undefined;
  #posSentAt = -Infinity;
  #posBlockedUntil = -Infinity;
  #posTimer: unknown = null;

  /** @internal Use {@link Dispatchd.socket}. */
  constructor(deps: SocketDeps, options: SocketOptions = {}) {
    super();
    this.#deps = deps;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#format = options.format ?? "json";
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 10_000;
    this.#baseMs = options.backoffBaseMs ?? 500;
    this.#capMs = options.backoffCapMs ?? 30_000;
    this.#pingEveryMs = options.pingEveryMs ?? 10_000;
    this.#pongTimeoutMs = options.pongTimeoutMs ?? 5_000;
    this.#trackEveryMs = 60_000 / (options.locationsPerMinute ?? 1200);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 64);
    this.#lastSeq = options.since;
    void this.#connect();
  }

  /** The connection state (see {@link SocketState}): `connecting` at first; `state` events report each change. */
  get state(): SocketState {
    return this.#state;
  }

  /** The last `seq` this socket delivered: what it resumes from. */
  get lastSeq(): number | undefined {
    return this.#lastSeq;
  }

  /**
   * Sends a message with a fresh `req_id`; resolves on its `ack`. Rejects
   * with a {@link DispatchdError}: the server's `error` (its `code` and
   * `message`), `timeout` when no answer came in time, `disconnected` when
   * the connection dropped after the message was written (it may or may not
   * have run: the caller decides whether to retry), `closed` when the socket
   * was closed first. While reconnecting, messages wait and go out in order.
   * An `availability` given here is re-sent after every reconnect.
   */
  send(msg: ClientMessage, options: { timeoutMs?: number } = {}): Promise<void> {
    return this.#send(msg, options.timeoutMs ?? this.#sendTimeoutMs, false);
  }

  /**
   * Reports a worker's position. Sent at most `locationsPerMinute` a minute
   * (only the latest waits when they come faster); while disconnected only
   * the latest is kept, and it is the first thing sent after a reconnect. A
   * `rate_limited` answer holds positions back for the server's
   * `retry_after_s`.
   * @throws TypeError when `lat` or `lng` is not a finite number
   */
  track(lat: number, lng: number): void {
    if (!Number.isFinite(lat) || !Number.isFinite(lng)) throw new TypeError("track: lat and lng must be finite numbers");
    if (this.#stopped === "closed") return;
    // Kept while stopped for an unauthorized token: sent once signed in again.
    this.#lastPos = { lat, lng };
    this.#pendingPos = this.#lastPos;
    this.#flushPosition();
  }

  /**
   * Closes the socket for good: no reconnect; `send`s still waiting reject
   * with `closed`.
   */
  close(): void {
    this.#stop("closed", new DispatchdError("closed", "the socket was closed"));
  }

  /**
   * @internal Called by {@link Dispatchd} when its token changes: a socket
   * stopped for an unauthorized token connects again, resuming where it was.
   */
  tokenChanged(): void {
    if (this.#stopped !== "unauthorized") return;
    this.#stopped = null;
    this.#attempt = 0;
    void this.#connect();
  }

  // ---- connection -------------------------------------------------------

  #setState(s: SocketState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.emit("state", s);
  }

  async #connect(): Promise<void> {
    this.#reconnectTimer = null;
    if (this.#stopped) return;
    this.#setState("connecting");
    if (!this.#codec) {
      try {
        this.#codec = await loadCodec(this.#format);
      } catch (e) {
        this.emit("error", new DispatchdError("unsupported_format", (e as Error).message));
        this.#stop("closed", new DispatchdError("closed", (e as Error).message));
        return;
      }
      if (this.#stopped) return;
    }
    this.#resuming = this.#lastSeq !== undefined;
    let ws: WebSocketLike;
    try {
      ws = new this.#deps.WebSocket(this.#deps.url({ format: this.#format, since: this.#lastSeq }));
    } catch (e) {
      this.emit("error", new DispatchdError("connect_failed", (e as Error).message));
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    this.#opened = false;
    ws.binaryType = "arraybuffer";
    let failure: string | undefined;
    ws.onopen = () => this.#ws === ws && this.#onOpen();
    ws.onmessage = (ev) => this.#ws === ws && this.#onFrame(ev.data);
    ws.onerror = (ev) => {
      const m = (ev as { message?: unknown }).message;
      if (typeof m === "string") failure = m;
    };
    ws.onclose = (ev) => this.#ws === ws && this.#onDrop(ev.code, ev.reason ?? "", failure);
  }

  #onOpen(): void {
    this.#opened = true;
    this.#attempt = 0;
    this.#replayed = 0;
    const reconnect = this.#everOpened;
    this.#everOpened = true;
    this.#setState("open");
    this.#armPing();
    // Before anything else: what makes a worker matchable again — the last
    // availability (unless the app's own is waiting to go) and the latest position.
    if (this.#availability !== undefined && !this.#queue.some((id) => this.#pending.get(id)?.msg.type === "availability")) {
      void this.#send({ type: "availability", available: this.#availability }, this.#sendTimeoutMs, true, true);
      this.#pump(1);
    }
    if (reconnect && this.#lastPos && !this.#pendingPos) this.#pendingPos = this.#lastPos;
    this.#flushPosition();
    this.#pump();
    if (reconnect && !this.#resuming) {
      // Nothing to resume from: whatever happened meanwhile is unknown.
      this.emit("gap", { seq: null });
      this.emit("resumed", { seq: null, gap: true, replayed: 0 });
    }
  }

  /** The connection ended (closed, failed, or found dead). */
  #onDrop(code: number, reason: string, failure: string | undefined): void {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      // Not null: `ws` (Node) throws an error event nobody listens to, as
      // closing a socket that is still connecting raises.
      ws.onerror = () => {};
      try {
        ws.close(1000);
      } catch {
        // already closed
      }
    }
    this.#pingTimer = this.#cancel(this.#pingTimer);
    this.#pongTimer = this.#cancel(this.#pongTimer);
    this.#posTimer = this.#cancel(this.#posTimer);
    const opened = this.#opened;
    this.#opened = false;
    // Written and unanswered: it may or may not have run.
    for (const [id, p] of this.#pending) {
      if (p.written) this.#settle(id, new DispatchdError("disconnected", "the connection dropped before the answer"));
    }
    if (this.#stopped) return;
    if (opened && TOKEN_CLOSE.test(reason)) {
      this.#unauthorized(`the server closed the socket: ${reason} (${code})`);
      return;
    }
    this.#setState("connecting");
    if (opened) {
      this.#scheduleReconnect();
      return;
    }
    // A connect that never opened: a refused token, or the server away?
    if (failure && /\b401\b/.test(failure)) {
      this.#unauthorized(failure);
      return;
    }
    this.#deps.tokenRefused({ message: failure }).then(
      (refused) => {
        if (this.#stopped || this.#ws || this.#reconnectTimer) return;
        if (refused) this.#unauthorized("the token was refused");
        else this.#scheduleReconnect();
      },
      () => !this.#stopped && !this.#ws && !this.#reconnectTimer && this.#scheduleReconnect(),
    );
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#reconnectTimer) return;
    const delay = backoffDelay(this.#attempt++, this.#baseMs, this.#capMs, this.#random);
    this.#reconnectTimer = this.#clock.setTimeout(() => void this.#connect(), delay);
  }

  #unauthorized(why: string): void {
    const e = new DispatchdError("unauthorized", why, { status: 401 });
    this.#stop("unauthorized", e);
    this.emit("unauthorized", e);
    this.#deps.onUnauthorized?.(e);
  }

  #stop(why: "closed" | "unauthorized", e: DispatchdError): void {
    // close() after `unauthorized` makes it final (a new token no longer revives it).
    if (this.#stopped === "closed" || this.#stopped === why) return;
    this.#stopped = why;
    this.#reconnectTimer = this.#cancel(this.#reconnectTimer);
    for (const id of [...this.#pending.keys()]) this.#settle(id, e);
    this.#queue = [];
    if (this.#ws) this.#onDrop(1000, "", undefined);
    this.#posTimer = this.#cancel(this.#posTimer);
    if (why === "closed") this.#pendingPos = undefined;
    this.#setState("closed");
    if (why === "closed") this.#deps.onClosed?.();
  }

  /** Cancels a timer handle; returns null to store in its place. */
  #cancel(handle: unknown): null {
    if (handle !== null) this.#clock.clearTimeout(handle);
    return null;
  }

  /** Any message proves the connection alive: ping again only after a silence. */
  #armPing(): void {
    this.#pingTimer = this.#cancel(this.#pingTimer);
    this.#pongTimer = this.#cancel(this.#pongTimer);
    this.#pingTimer = this.#clock.setTimeout(() => {
      this.#pingTimer = null;
      this.#raw({ type: "ping" });
      this.#pongTimer = this.#clock.setTimeout(() => {
        this.#pongTimer = null;
        this.#onDrop(4000, "no answer to ping", undefined);
      }, this.#pongTimeoutMs);
    }, this.#pingEveryMs);
  }

  /** Writes a frame on the open connection; false when there is none or it refuses. */
  #raw(msg: object): boolean {
    const ws = this.#ws;
    if (!ws || !this.#opened || !this.#codec) return false;
    try {
      ws.send(this.#codec.encode(msg));
      return true;
    } catch {
      return false;
    }
  }

  // ---- requests ---------------------------------------------------------

  /**
   * Queues a request (`front`: ahead of the others) and writes what the
   * in-flight cap allows. `internal`: the socket's own (failures become
   * `error` events).
   */
  #send(msg: ClientMessage, timeoutMs: number, internal: boolean, front = false): Promise<void> {
    if (this.#stopped) {
      return Promise.reject(
        new DispatchdError(this.#stopped, this.#stopped === "closed" ? "the socket was closed" : "the token was refused"),
      );
    }
    if (msg.type === "availability") this.#availability = msg.available;
    if (msg.type === "location") this.#lastPos = { lat: msg.lat, lng: msg.lng };
    const id = this.#nextReqId++;
    return new Promise<void>((resolve, reject) => {
      const timer = this.#clock.setTimeout(
        () => this.#settle(id, new DispatchdError("timeout", `no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#pending.set(id, { msg, resolve, reject, timer, written: false, internal });
      if (front) this.#queue.unshift(id);
      else this.#queue.push(id);
      if (!front) this.#pump();
    }).catch((e: DispatchdError) => {
      if (!internal) throw e;
      if (e.code !== "disconnected" && e.code !== "closed" && e.code !== "unauthorized") this.emit("error", e);
    });
  }

  /**
   * Writes waiting requests in order (at most `limit`) while the connection
   * is open and fewer than `maxInFlight` await their answer: the server
   * closes a client whose outbound queue fills, and every request is answered.
   */
  #pump(limit = Infinity): void {
    if (this.#stopped) return;
    for (let n = 0; n < limit && this.#inFlight < this.#maxInFlight; n++) {
      const id = this.#queue[0];
      const p = id === undefined ? undefined : this.#pending.get(id);
      if (id === undefined || !p || !this.#raw({ ...p.msg, req_id: id })) return;
      this.#queue.shift();
      p.written = true;
      this.#inFlight++;
    }
  }

  /** Resolves (no error) or rejects a pending request, once. */
  #settle(id: number, error?: DispatchdError): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    this.#clock.clearTimeout(p.timer);
    if (p.written) this.#inFlight--;
    else this.#queue.splice(this.#queue.indexOf(id), 1);
    if (error) p.reject(error);
    else p.resolve();
    if (p.written) this.#pump();
  }

  // ---- positions --------------------------------------------------------

  /** Sends the waiting position if the budget allows, else when it will. */
  #flushPosition(): void {
    if (!this.#pendingPos || this.#state !== "open" || this.#posTimer !== null) return;
    const now = this.#clock.now();
    const at = Math.max(this.#posSentAt + this.#trackEveryMs, this.#posBlockedUntil);
    if (now < at) {
      this.#posTimer = this.#clock.setTimeout(() => {
        this.#posTimer = null;
        this.#flushPosition();
      }, at - now);
      return;
    }
    const { lat, lng } = this.#pendingPos;
    if (this.#raw({ type: "location", lat, lng })) {
      this.#pendingPos = undefined;
      this.#posSentAt = now;
    }
  }

  // ---- incoming ---------------------------------------------------------

  #onFrame(data: unknown): void {
    this.#armPing();
    let m: ServerMessage;
    try {
      m = this.#codec!.decode(data) as ServerMessage;
      if (typeof m !== "object" || m === null || typeof m.type !== "string") throw new Error("not a message");
    } catch (e) {
      this.emit("error", new DispatchdError("bad_frame", `an unreadable frame: ${(e as Error).message}`));
      return;
    }
    if (isSequenced(m)) {
      if (!this.#fresh(m)) return;
      this.#replayed++;
    }
    this.emit("message", m);
    switch (m.type) {
      case "ack":
        if (typeof m.req_id === "number") this.#settle(m.req_id);
        return;
      case "error":
        this.#onError(m.code, m.message, m.req_id, m.retry_after_s);
        return;
      case "resumed": {
        const gap = m.gap === true;
        if (gap && this.#lastSeq !== undefined && m.seq < this.#lastSeq) {
          // The server's history is behind ours (a new data directory): start over from it.
          this.#lastSeq = m.seq;
          this.#atLastSeq.clear();
        }
        this.emit("resumed", { seq: m.seq, gap, replayed: gap ? 0 : this.#replayed });
        if (gap) this.emit("gap", { seq: m.seq });
        return;
      }
      case "offer":
        return this.emit("offer", m);
      case "offer_revoked":
        return this.emit("offer_revoked", m);
      case "job":
        return this.emit("job", m);
      case "tracking":
        return this.emit("tracking", m);
      case "maintenance":
        return this.emit("maintenance", m);
      case "fleet":
        return this.emit("fleet", m);
      case "pong":
        return;
    }
  }

  #onError(code: string, message: string, reqId: unknown, retryAfterS: number | undefined): void {
    const e = new DispatchdError(code, message, retryAfterS === undefined ? {} : { retryAfterS });
    if (typeof reqId === "number" && this.#pending.has(reqId)) {
      this.#settle(reqId, e);
      return;
    }
    if (reqId === undefined && code === "rate_limited") {
      // A position over budget (only positions go without req_id): hold them back.
      this.#posBlockedUntil = this.#clock.now() + (retryAfterS ?? 1) * 1000;
      if (!this.#pendingPos) this.#pendingPos = this.#lastPos;
      this.#posTimer = this.#cancel(this.#posTimer);
      this.#flushPosition();
    }
    if (reqId === undefined) this.emit("error", e);
  }

  /**
   * Whether a sequenced message is new: `seq` above the last one delivered,
   * or the same `seq` for a message not yet delivered at it (one change can
   * reach a user as several messages). Anything older is a repeat.
   */
  #fresh(m: SequencedMessage): boolean {
    const key = `${m.type}:${"job" in m ? m.job.id : "job_id" in m ? m.job_id : m.schedule_id}`;
    if (this.#lastSeq === undefined || m.seq > this.#lastSeq) {
      this.#lastSeq = m.seq;
      this.#atLastSeq = new Set([key]);
      return true;
    }
    if (m.seq === this.#lastSeq && !this.#atLastSeq.has(key)) {
      this.#atLastSeq.add(key);
      return true;
    }
    return false;
  }
}
