/**
 * `@dispatchd/client`: typed REST from dispatchd's own `/openapi.json`, and a
 * WebSocket that acks, reconnects, resumes and streams positions.
 *
 * - {@link Dispatchd} (`client.ts`): the token, `login`, `rest`, `socket()`.
 * - {@link DispatchdSocket} (`socket.ts`): acks, backoff, resume, dedup, ping, `track`.
 * - `messages.ts`: the WebSocket messages; `schema.ts`: the generated REST types.
 * - {@link Emitter} (`emitter.ts`), {@link DispatchdError} (`errors.ts`), codecs (`codec.ts`).
 * @packageDocumentation
 */
export { Dispatchd, unwrap, type DispatchdEvents, type DispatchdOptions, type RestClient, type User } from "./client.js";
export {
  DispatchdSocket,
  backoffDelay,
  type Clock,
  type Handler,
  type ResumedEvent,
  type SocketDeps,
  type SocketEvents,
  type SocketOptions,
  type SocketState,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./socket.js";
export { DispatchdError, type ClientErrorCode } from "./errors.js";
export { Emitter, type Listener } from "./emitter.js";
export type { Codec, Format } from "./codec.js";
export * from "./messages.js";
export type { components, operations, paths } from "./schema.js";
