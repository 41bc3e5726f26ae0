/**
 * `Dispatchd`: one object per server and signed-in user. It holds the token,
 * gives the typed REST client (openapi-fetch over the generated schema, the
 * bearer token added to every call) and makes sockets.
 * @module
 */
import createClient, { type Client } from "openapi-fetch";
import { Emitter } from "./emitter.js";
import { DispatchdError } from "./errors.js";
import type { components, paths } from "./schema.js";
import { DispatchdSocket, type SocketDeps, type SocketOptions, type WebSocketConstructor } from "./socket.js";

/** The signed-in user, as `POST /v1/auth/login` describes them. */
export type User = components["schemas"]["UserOut"];

/** The typed REST client: `d.rest.GET("/v1/jobs/{id}", { params: { path: { id } } })`. */
export type RestClient = Client<paths>;

/** Options of {@link Dispatchd}. */
export interface DispatchdOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  url: string;
  /** A token to use from the start (else call {@link Dispatchd.login}). */
  token?: string;
  /** The WebSocket constructor; defaults to the global `WebSocket` (pass `ws`'s in Node 20). */
  WebSocket?: WebSocketConstructor;
  /** The fetch function for REST; defaults to the global `fetch`. */
  fetch?: (input: Request) => Promise<Response>;
}

/** Events of a {@link Dispatchd}, by name. */
export interface DispatchdEvents {
  /**
   * The token was refused (expired or revoked), by a REST call or a socket:
   * sign in again. Once per token, however many calls or sockets found out.
   */
  unauthorized: DispatchdError;
}

/**
 * A dispatchd server, as one user sees it.
 *
 * @example
 * ```ts
 * const d = new Dispatchd({ url: "http://127.0.0.1:8080" });
 * await d.login("ria@example.com", "Secret123");
 * const { data } = await d.rest.POST("/v1/jobs", { body: { lat: 52.52, lng: 13.4, skill: "plumbing" } });
 * ```
 */
export class Dispatchd extends Emitter<DispatchdEvents> {
  /** The server's base URL, as given. */
  readonly url: string;
  /** The typed REST client (openapi-fetch); every call carries the token. */
  readonly rest: RestClient;
  /** Who signed in with {@link Dispatchd.login}; undefined for a token given directly. */
  user: User | undefined;

  #token: string | undefined;
  /** The token an `unauthorized` event was emitted for (once per token). */
  #refusedToken: string | undefined | null = null;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #sockets = new Set<DispatchdSocket>();

  /** @param options the server's URL, and optionally a token and platform objects */
  constructor(options: DispatchdOptions) {
    super();
    this.url = options.url;
    this.#token = options.token;
    this.#WebSocket = options.WebSocket;
    this.rest = createClient<paths>({
      baseUrl: options.url.replace(/\/+$/, ""),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.rest.use({
      onRequest: ({ request }) => {
        if (this.#token && !request.headers.has("authorization")) {
          request.headers.set("authorization", `Bearer ${this.#token}`);
        }
        return request;
      },
      onResponse: ({ request, response, schemaPath }) => {
        // A wrong password at login is not an expired session.
        if (response.status !== 401 || schemaPath.startsWith("/v1/auth/")) return;
        const sent = request.headers.get("authorization");
        if (sent === `Bearer ${this.#token}` || (!sent && !this.#token)) {
          this.#refused(new DispatchdError("unauthorized", `${request.method} ${schemaPath}: 401`, { status: 401 }));
        }
      },
    });
  }

  /** The bearer token in use (set by {@link Dispatchd.login}). Setting it revives sockets stopped by `unauthorized`. */
  get token(): string | undefined {
    return this.#token;
  }

  set token(token: string | undefined) {
    this.#token = token;
    this.#refusedToken = null;
    for (const s of this.#sockets) s.tokenChanged();
  }

  /**
   * Signs in (`POST /v1/auth/login`): stores the token and {@link Dispatchd.user}.
   * @returns the user
   * @throws DispatchdError `unauthorized` for a wrong email or password, or the server's error
   */
  async login(email: string, password: string): Promise<User> {
    const r = await this.rest.POST("/v1/auth/login", { body: { email, password } });
    const data = await unwrap(r);
    this.user = data.user;
    this.token = data.token;
    return data.user;
  }

  /**
   * Opens a socket (`GET /v1/ws`); it connects at once and stays connected
   * until {@link DispatchdSocket.close}.
   * @throws Error when there is no WebSocket (Node 20: pass `WebSocket` from the `ws` package)
   */
  socket(options: SocketOptions = {}): DispatchdSocket {
    const WS = this.#WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error("no WebSocket in this runtime: pass one as `new Dispatchd({ url, WebSocket })`");
    const deps: SocketDeps = {
      WebSocket: WS,
      url: ({ format, since }) => {
        const u = new URL("v1/ws", this.url.replace(/\/*$/, "/"));
        u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
        if (this.#token) u.searchParams.set("token", this.#token);
        if (format !== "json") u.searchParams.set("format", format);
        if (since !== undefined) u.searchParams.set("since", String(since));
        return u.toString();
      },
      tokenRefused: (failure) => this.#tokenRefused(failure.message),
      onUnauthorized: (e) => this.#refused(e),
      onClosed: () => this.#sockets.delete(socket),
    };
    const socket = new DispatchdSocket(deps, options);
    this.#sockets.add(socket);
    return socket;
  }

  /** After a failed upgrade: is it the token? Browsers hide the status, so ask over HTTP. */
  async #tokenRefused(failure: string | undefined): Promise<boolean> {
    const status = failure?.match(/\b([1-5]\d\d)\b/)?.[1];
    if (status) return status === "401";
    if (!this.#token) return true;
    try {
      const r = await this.rest.GET("/v1/me/notifications", { signal: AbortSignal.timeout(5_000) });
      return r.response.status === 401;
    } catch {
      return false; // the server is away: not a token problem
    }
  }

  #refused(e: DispatchdError): void {
    if (this.#refusedToken === (this.#token ?? undefined)) return;
    this.#refusedToken = this.#token;
    this.emit("unauthorized", e);
  }
}

/**
 * The data of an openapi-fetch result, or its error as a {@link DispatchdError}
 * (the server's `{error: {code, message}}`, the status, `Retry-After`).
 *
 * @example
 * ```ts
 * const job = await unwrap(d.rest.GET("/v1/jobs/{id}", { params: { path: { id } } }));
 * ```
 */
export async function unwrap<T>(result: { data?: T; error?: unknown; response: Response } | Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await result;
  if (response.ok) return data as T;
  const body = (error as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const retry = Number(response.headers.get("retry-after"));
  return Promise.reject(
    new DispatchdError(
      typeof body?.code === "string" ? body.code : `http_${response.status}`,
      typeof body?.message === "string" ? body.message : response.statusText,
      { status: response.status, ...(Number.isFinite(retry) && retry > 0 ? { retryAfterS: retry } : {}) },
    ),
  );
}
