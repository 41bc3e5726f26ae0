/**
 * A tiny typed event emitter (no dependency): `on` returns the function that
 * removes the listener. A listener that throws does not stop the others.
 * @module
 */

/** A listener for an event whose payload is `T`. */
export type Listener<T> = (payload: T) => void;

/**
 * Emits the events of the map `E` (event name → payload type).
 *
 * @example
 * ```ts
 * const e = new Emitter<{ state: "open" | "closed" }>();
 * const off = e.on("state", (s) => console.log(s));
 * off();
 * ```
 */
export class Emitter<E extends object> {
  #listeners = new Map<keyof E, Set<Listener<never>>>();

  /**
   * Calls `fn` on every `event` until the returned function is called.
   * @returns a function that removes this listener
   */
  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  /** Calls `fn` on the next `event` only. */
  once<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    const off = this.on(event, (p) => {
      off();
      fn(p);
    });
    return off;
  }

  /** Removes a listener added with {@link Emitter.on}. */
  off<K extends keyof E>(event: K, fn: Listener<E[K]>): void {
    this.#listeners.get(event)?.delete(fn as Listener<never>);
  }

  /**
   * Calls every listener of `event` with `payload`, in the order they were
   * added. A listener's exception is reported (`reportError` where the
   * platform has it) and the others still run.
   */
  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<E[K]>)(payload);
      } catch (e) {
        report(e);
      }
    }
  }
}

function report(e: unknown): void {
  const g = globalThis as { reportError?: (e: unknown) => void };
  if (typeof g.reportError === "function") g.reportError(e);
  else queueMicrotask(() => {
    throw e;
  });
}
