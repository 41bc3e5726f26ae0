/**
 * Pure formatting for the screens: money, durations, distances, times, and
 * a job's status timeline. No DOM, no clock of its own (callers pass `now`),
 * so test/format.test.mjs covers it directly.
 * @module
 */
import type { Job } from "@dispatchd/client";

/** `1234` → `"$12.34"`. The server bills in cents of one currency. */
export function money(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const c = Math.abs(Math.round(cents));
  return `${sign}$${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")}`;
}

/** An estimate `{low, high}` → `"$40.00–$120.00"` (one amount when equal). */
export function moneyRange(r: { low: number; high: number }): string {
  return r.low === r.high ? money(r.low) : `${money(r.low)}–${money(r.high)}`;
}

/** Seconds to arrival → `"under a minute"`, `"4 min"`, `"1 h 05 min"`. */
export function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "unknown";
  if (seconds < 60) return "under a minute";
  const min = Math.ceil(seconds / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, "0")} min`;
}

/** Time left until `expiresAt` (RFC 3339) at `now` (ms), in whole seconds, never below 0. */
export function secondsLeft(expiresAt: string, now: number): number {
  const t = Date.parse(expiresAt);
  if (Number.isNaN(t)) return 0;
  return Math.max(0, Math.ceil((t - now) / 1000));
}

/** A countdown: `75` → `"1:15"`. */
export function countdown(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Metres → `"850 m"`, `"1.2 km"`, `"15 km"`. */
export function distance(m: number): string {
  if (!Number.isFinite(m) || m < 0) return "unknown";
  if (m < 1000) return `${Math.round(m)} m`;
  const km = m / 1000;
  return km < 10 ? `${km.toFixed(1)} km` : `${Math.round(km)} km`;
}

/** An RFC 3339 time → local `HH:MM` (with the date when not `today`'s). */
export function clock(iso: string, today: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  if (d.toDateString() === today.toDateString()) return hm;
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")} ${hm}`;
}

/** What a status means to the resident who asked. */
export const STATUS_TEXT: Record<Job["status"], string> = {
  searching: "Looking for an engineer",
  offered: "Offered to an engineer",
  accepted: "Engineer on the way",
  arrived: "Engineer on site",
  completed: "Done",
  cancelled: "Cancelled",
  unmatched: "No engineer found",
};

/** One step of the status timeline. */
export interface Step {
  key: string;
  label: string;
  at: string | null;
  state: "done" | "current" | "todo" | "failed";
}

/**
 * The timeline of a job: asked → offered → on the way → on site → done,
 * with the time of each step reached; a cancelled or unmatched job ends
 * where it stopped with that outcome.
 */
export function timeline(job: Pick<Job, "status" | "created_at"> & Partial<Job>): Step[] {
  const steps: Array<[string, string, string | null | undefined]> = [
    ["created", "Requested", job.created_at],
    ["offered", "Offered to an engineer", job.offered_at],
    ["accepted", "Engineer on the way", job.accepted_at],
    ["arrived", "Engineer on site", job.arrived_at],
    ["completed", "Done", job.completed_at],
  ];
  const order = ["searching", "offered", "accepted", "arrived", "completed"];
  let reached = order.indexOf(job.status);
  const ended = job.status === "cancelled" || job.status === "unmatched";
  if (ended) {
    // The last step with a time is where it stopped.
    reached = 0;
    steps.forEach(([, , at], i) => {
      if (at) reached = i;
    });
  }
  const out: Step[] = steps.map(([key, label, at], i) => ({
    key,
    label,
    at: at ?? null,
    state: i < reached || (i === reached && (job.status === "completed" || ended)) ? "done" : i === reached ? "current" : "todo",
  }));
  if (ended) {
    const cut = out.slice(0, reached + 1);
    cut.push({
      key: job.status,
      label: job.status === "cancelled" ? "Cancelled" : "No engineer found",
      at: (job.status === "cancelled" ? job.cancelled_at : job.unmatched_at) ?? null,
      state: "failed",
    });
    return cut;
  }
  // searching is the "Requested" step's current state; the next ones are to do.
  if (job.status === "searching") out[0] = { ...out[0]!, state: "done" };
  if (job.status === "searching") out[1] = { ...out[1]!, state: "current", label: "Looking for an engineer" };
  return out;
}

/** Whether a job can still change (not completed, cancelled or unmatched). */
export function isOpen(status: Job["status"]): boolean {
  return status !== "completed" && status !== "cancelled" && status !== "unmatched";
}
