/**
 * The one error type the library throws and rejects with: the server's
 * `{code, message}` (HTTP or WebSocket), or one of the library's own codes.
 * @module
 */

/**
 * Codes the library itself gives (the server's are API.md's: `invalid_input`,
 * `unauthorized`, `forbidden`, `not_found`, `conflict`, `rate_limited`, …).
 *
 * - `timeout`: no answer to a `send` within its time limit.
 * - `disconnected`: the connection dropped after the message was written and
 *   before its answer; the server may or may not have run it.
 * - `closed`: the socket was closed (by `close()`, or for good after
 *   `unauthorized`) before the message could be written.
 */
export type ClientErrorCode = "timeout" | "disconnected" | "closed";

/** An error from dispatchd or from the library. */
export class DispatchdError extends Error {
  /** The server's snake_case code, or a {@link ClientErrorCode}. */
  readonly code: string;
  /** The HTTP status, for errors of HTTP calls and refused upgrades. */
  readonly status: number | undefined;
  /** With `rate_limited`: seconds until the budget allows another. */
  readonly retryAfterS: number | undefined;

  /**
   * @param code the server's code or a {@link ClientErrorCode}
   * @param message human text (the server's, when it sent one)
   * @param extra the HTTP status and `Retry-After` seconds, when known
   */
  constructor(code: string, message: string, extra: { status?: number; retryAfterS?: number } = {}) {
    super(message);
    this.name = "DispatchdError";
    this.code = code;
    this.status = extra.status;
    this.retryAfterS = extra.retryAfterS;
  }
}
