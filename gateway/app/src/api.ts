/**
 * The calls the generated REST types do not cover yet or need a little
 * help with: the profile (`/v1/me`, v1.2), raw-byte uploads, and
 * attachments fetched with the token and shown as `blob:` URLs (the page's
 * CSP allows no other origin, and an `<img src>` cannot send a header).
 * @module
 */
import { DispatchdError, unwrap, type User } from "@dispatchd/client";
import type { Session } from "./session.js";

/** `GET /v1/me` (v1.2 "Profile"). */
export type Me = User & { email: string | null; skills?: string[]; available?: boolean };

/** The types `POST /v1/attachments` takes. */
export const UPLOAD_TYPES = ["image/jpeg", "image/png", "image/webp", "application/pdf"] as const;

async function call<T>(s: Session, method: "GET" | "PATCH", path: string, body?: unknown): Promise<T> {
  const headers = new Headers({ authorization: `Bearer ${s.d.token ?? ""}` });
  if (body !== undefined) headers.set("content-type", "application/json");
  const req = new Request(new URL(path, location.origin), { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  let response: Response;
  try {
    response = await fetch(req);
    s.store.dispatch({ type: "reachable", reachable: true });
  } catch (e) {
    s.store.dispatch({ type: "reachable", reachable: false });
    throw e;
  }
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: unwrap reports the status
  }
  return unwrap<T>(response.ok ? { data: json as T, response } : { error: json, response });
}

/** The caller's profile. */
export function getMe(s: Session): Promise<Me> {
  return call<Me>(s, "GET", "/v1/me");
}

/** Changes the caller's name and (workers) skills. */
export function patchMe(s: Session, body: { name?: string; skills?: string[] }): Promise<Me> {
  return call<Me>(s, "PATCH", "/v1/me", body);
}

/** Uploads one file (`POST /v1/attachments`, raw bytes) → its id. */
export async function upload(s: Session, file: Blob): Promise<string> {
  const type = file.type;
  if (!(UPLOAD_TYPES as readonly string[]).includes(type)) {
    throw new DispatchdError("unsupported_media_type", `photos: ${type || "this file type"} cannot be sent; use JPEG, PNG, WebP or PDF`);
  }
  const r = await unwrap(
    s.d.rest.POST("/v1/attachments", {
      body: file as unknown as string,
      bodySerializer: (b: unknown) => b as Blob,
      headers: { "content-type": type },
    }),
  );
  return r.id;
}

/** An attachment as a `blob:` URL (revoke it with `URL.revokeObjectURL` when done). */
export async function attachmentUrl(s: Session, id: string): Promise<string> {
  const blob = await unwrap(s.d.rest.GET("/v1/attachments/{id}", { params: { path: { id } }, parseAs: "blob" }));
  return URL.createObjectURL(blob as Blob);
}
