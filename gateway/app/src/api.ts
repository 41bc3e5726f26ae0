/**
 * Small wrappers over the typed REST client (`session.d.rest`): the profile
 * (`/v1/me`, v1.2), raw-byte uploads, and attachments fetched with the
 * token and shown as `blob:` URLs (the page's CSP allows no other origin,
 * and an `<img src>` cannot send a header).
 * @module
 */
import { DispatchdError, unwrap, type components } from "@dispatchd/client";
import type { Session } from "./session.js";

/** `GET /v1/me` (v1.2 "Profile"), as the server's OpenAPI document describes it. */
export type Me = components["schemas"]["Me"];

/** What `PATCH /v1/me` may change: the name, and a worker's skills. */
export type MePatch = components["schemas"]["MePatch"];

/** The types `POST /v1/attachments` takes. */
export const UPLOAD_TYPES = ["image/jpeg", "image/png", "image/webp", "application/pdf"] as const;

/** The caller's profile. */
export function getMe(s: Session): Promise<Me> {
  return unwrap(s.d.rest.GET("/v1/me"));
}

/**
 * Changes the caller's name and (workers) skills.
 * @throws DispatchdError the server's `invalid_input`, whose message names the field
 */
export function patchMe(s: Session, body: MePatch): Promise<Me> {
  return unwrap(s.d.rest.PATCH("/v1/me", { body }));
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
