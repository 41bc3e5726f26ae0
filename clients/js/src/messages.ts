/**
 * The WebSocket messages of API.md ("WebSocket: GET /v1/ws", "Resuming after
 * a reconnect", "Tracking the engineer on the way", the ops `watch`), as one
 * discriminated union per direction. `/openapi.json` describes HTTP only, so
 * these are written from the contract; the `Job` inside them is the
 * generated `JobView`.
 * @module
 */
import type { components } from "./schema.js";

/** The contract's `Job`, as the server's OpenAPI document describes it. */
export type Job = components["schemas"]["JobView"];

/** A client message, without `req_id` (the socket numbers them itself). */
export type ClientMessage =
  | { type: "location"; lat: number; lng: number }
  | { type: "availability"; available: boolean }
  | { type: "accept" | "decline" | "arrive" | "complete"; job_id: string }
  | { type: "subscribe" | "unsubscribe"; job_id: string }
  | { type: "watch" | "unwatch"; topics: Array<"fleet" | "jobs"> }
  | { type: "ping" };

/** A job offered to this worker; `expires_at` is RFC 3339. */
export interface OfferMessage {
  type: "offer";
  job_id: string;
  lat: number;
  lng: number;
  skill: string;
  description: string;
  distance_m: number;
  expires_at: string;
  seq: number;
}

/** An offer taken back from this worker. */
export interface OfferRevokedMessage {
  type: "offer_revoked";
  job_id: string;
  reason: "expired" | "cancelled" | "declined" | (string & {});
  seq: number;
}

/** A job this user may see changed; `job` is its state after the change. */
export interface JobMessage {
  type: "job";
  job: Job;
  seq: number;
}

/** The assigned worker's position while a job is `accepted` (v1.2). */
export interface TrackingMessage {
  type: "tracking";
  job_id: string;
  lat: number;
  lng: number;
  at: string;
  eta_s: number;
  seq: number;
}

/** A maintenance alert (extension: `maintenance.due` / `maintenance.overdue`). */
export interface MaintenanceMessage {
  type: "maintenance";
  event: string;
  schedule_id: string;
  property_id: string;
  title: string;
  due_at: string;
  seq: number;
}

/** Ops watching `fleet`: the snapshot (`full`), then the workers that changed. */
export interface FleetMessage {
  type: "fleet";
  workers: Array<{ id: string; lat: number; lng: number; state: string }>;
  full?: boolean;
}

/** After a `?since=` replay: the latest `seq`; `gap` when history was missed. */
export interface ResumedMessage {
  type: "resumed";
  seq: number;
  gap?: boolean;
}

/** A failure, answering the message with the same `req_id` if it had one. */
export interface ErrorMessage {
  type: "error";
  code: string;
  message: string;
  req_id?: string | number;
  /** Extension: with `rate_limited`, seconds until the budget allows another. */
  retry_after_s?: number;
}

/** The message with this `req_id` was carried out. */
export interface AckMessage {
  type: "ack";
  req_id: string | number;
}

/** The answer to `ping`. */
export interface PongMessage {
  type: "pong";
}

/** The messages that carry `seq`: replayed on resume, de-duplicated by the socket. */
export type SequencedMessage =
  | OfferMessage
  | OfferRevokedMessage
  | JobMessage
  | TrackingMessage
  | MaintenanceMessage;

/** Every message the server sends. */
export type ServerMessage =
  | SequencedMessage
  | FleetMessage
  | ResumedMessage
  | ErrorMessage
  | AckMessage
  | PongMessage;

const SEQUENCED: ReadonlySet<string> = new Set(["offer", "offer_revoked", "job", "tracking", "maintenance"]);

/** Whether `m` is one of the messages that carry `seq`. */
export function isSequenced(m: ServerMessage): m is SequencedMessage {
  return SEQUENCED.has(m.type) && typeof (m as { seq?: unknown }).seq === "number";
}
