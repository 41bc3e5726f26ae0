// A fake clock and a fake WebSocket: the socket's logic driven without
// network or real time.
import { decode } from "@msgpack/msgpack";
import type { Clock, WebSocketLike } from "../../src/index.js";

/** Lets pending promise callbacks run (the socket's async steps). */
export const flush = () => new Promise<void>((r) => setImmediate(r));

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Time that moves only when told to. */
export class FakeClock implements Clock {
  t = 0;
  #timers = new Map<number, Timer>();
  #next = 1;

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number);
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, running what falls due in order (and what those schedule). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flush();
    for (;;) {
      let due: [number, Timer] | undefined;
      for (const e of this.#timers) {
        if (e[1].at <= end && (!due || e[1].at < due[1].at || (e[1].at === due[1].at && e[1].seq < due[1].seq))) due = e;
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** A WebSocket the test plays the server of. Every instance is kept in `FakeWS.all`. */
export class FakeWS implements WebSocketLike {
  static all: FakeWS[] = [];
  /** When each instance was made, by the test's clock (set `FakeWS.clock`). */
  static clock: FakeClock | undefined;

  static reset(clock?: FakeClock): void {
    FakeWS.all = [];
    FakeWS.clock = clock;
  }

  static get last(): FakeWS {
    const ws = FakeWS.all.at(-1);
    if (!ws) throw new Error("no socket was made");
    return ws;
  }

  readonly url: string;
  readonly madeAt: number;
  binaryType = "blob";
  /** Frames the client wrote, decoded. */
  sent: Array<Record<string, unknown>> = [];
  closedByClient: number | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    this.madeAt = FakeWS.clock?.now() ?? 0;
    FakeWS.all.push(this);
  }

  /** The URL's query parameters. */
  get query(): URLSearchParams {
    return new URL(this.url).searchParams;
  }

  send(data: string | Uint8Array): void {
    this.sent.push((typeof data === "string" ? JSON.parse(data) : decode(data)) as Record<string, unknown>);
  }

  close(code?: number): void {
    this.closedByClient = code ?? 1005;
  }

  // ---- the server's side ----

  open(): void {
    this.onopen?.({});
  }

  /** A server message (JSON text frame). */
  receive(msg: object): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }

  /** A raw frame. */
  frame(data: unknown): void {
    this.onmessage?.({ data });
  }

  /** The connection ends. */
  drop(code = 1006, reason = ""): void {
    this.onclose?.({ code, reason });
  }

  /** The connect fails before opening (`message`: what `ws` reports; browsers say nothing). */
  fail(message?: string): void {
    this.onerror?.(message === undefined ? {} : { message });
    this.onclose?.({ code: 1006, reason: "" });
  }

  /** Frames of this `type` the client sent. */
  of(type: string): Array<Record<string, unknown>> {
    return this.sent.filter((m) => m.type === type);
  }

  #acked = new Set<unknown>();

  /** Answers every unanswered request of the client with an ack. */
  ackAll(): void {
    for (const m of this.sent) {
      if (m.req_id !== undefined && !this.#acked.has(m.req_id)) {
        this.#acked.add(m.req_id);
        this.receive({ type: "ack", req_id: m.req_id });
      }
    }
  }
}
