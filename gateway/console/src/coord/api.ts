/**
 * The console's connection to dispatchd: the client library's typed REST
 * (`@dispatchd/client`, types generated from the server's /openapi.json),
 * plus raw fetches for what is not JSON (CSV, attachments).
 * @module
 */
import { Dispatchd, DispatchdError, unwrap, type components } from "@dispatchd/client";

export type Schemas = components["schemas"];
export type Schedule = Schemas["ScheduleView"];
export type Property = Schemas["PropertyView"];
export type Log = Schemas["LogView"];
export type Part = Schemas["PartView"];

let client: Dispatchd | null = null;

/** Starts using `token` (after sign-in); `onUnauthorized` when it is refused. */
export function connect(token: string, onUnauthorized: () => void): void {
  client = new Dispatchd({ url: location.origin, token });
  client.on("unauthorized", () => onUnauthorized());
}

export function disconnect(): void {
  client = null;
}

/** The typed REST client. */
export function rest(): Dispatchd["rest"] {
  if (!client) throw new DispatchdError("unauthorized", "signed out");
  return client.rest;
}

export { unwrap };

/** A GET with the bearer token, for bodies that are not JSON; an error status as a DispatchdError. */
export async function raw(path: string, accept: string): Promise<Response> {
  if (!client) throw new DispatchdError("unauthorized", "signed out");
  const r = await fetch(path, { headers: { authorization: `Bearer ${client.token}`, accept } });
  if (!r.ok) {
    const v = await r.json().catch(() => null) as { error?: { code?: string; message?: string } } | null;
    throw new DispatchdError(v?.error?.code ?? `http_${r.status}`, v?.error?.message ?? r.statusText, { status: r.status });
  }
  return r;
}

/** A query without its empty values (openapi-fetch would send `x=`). */
export function query<T extends Record<string, string | undefined>>(q: T): T {
  return Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined && v !== "")) as T;
}

/** Lists that every screen names things from, cached for a minute. */
const cache = new Map<string, { at: number; value: Promise<unknown> }>();
function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
  const c = cache.get(key);
  if (c && Date.now() - c.at < 60_000) return c.value as Promise<T>;
  const value = load();
  cache.set(key, { at: Date.now(), value });
  value.catch(() => cache.delete(key));
  return value;
}

export function forget(key?: string): void {
  if (key) cache.delete(key); else cache.clear();
}

export const properties = () => cached("properties", async () =>
  (await unwrap(rest().GET("/v1/properties", { params: { query: { limit: "500" } } }))).properties);
export const skills = () => cached("skills", async () =>
  (await unwrap(rest().GET("/v1/triage/skills"))).skills);
export const parts = () => cached("parts", async () =>
  (await unwrap(rest().GET("/v1/parts", { params: { query: { limit: "500" } } }))).parts);
export const schedules = () => cached("schedules", async () =>
  (await unwrap(rest().GET("/v1/schedules", { params: { query: { limit: "500" } } }))).schedules);
