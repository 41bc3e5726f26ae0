/**
 * A minimal store around the reducer of state.ts, and the Preact hook that
 * re-renders a component when the part of the state it reads changes.
 * @module
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { initial, reduce, type Action, type State } from "./state.js";

type Listener = (s: State) => void;

export class Store {
  #state: State;
  #listeners = new Set<Listener>();

  constructor(state: State = initial(typeof navigator === "undefined" ? true : navigator.onLine)) {
    this.#state = state;
  }

  get state(): State {
    return this.#state;
  }

  dispatch(a: Action): void {
    const next = reduce(this.#state, a);
    if (next === this.#state) return;
    this.#state = next;
    for (const l of [...this.#listeners]) l(next);
  }

  subscribe(l: Listener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
}

/** `pick(state)`, kept current: the component re-renders when it changes (by `===`). */
export function useStore<T>(store: Store, pick: (s: State) => T): T {
  const ref = useRef(pick);
  ref.current = pick;
  const value = pick(store.state);
  const last = useRef(value);
  last.current = value;
  const [, force] = useState(0);
  useEffect(
    () =>
      store.subscribe((s) => {
        if (ref.current(s) !== last.current) force((n) => n + 1);
      }),
    [store],
  );
  return value;
}
