/**
 * The app's live state and its one reducer: jobs merged by `version`, the
 * engineer's position per job (`tracking` messages and `worker_position`),
 * the worker's open offer, and what the app knows of the network. Pure, so
 * test/state.test.mjs drives it with plain messages.
 * @module
 */
import type { components, Job, OfferMessage, OfferRevokedMessage, SocketState, TrackingMessage } from "@dispatchd/client";

/**
 * Where the assigned engineer is (v1.2): a `tracking` message or a job's
 * `worker_position`. `at` is when the engineer reported it (RFC 3339), not
 * when it reached the app: the server may hold a report until its
 * tracking interval ends.
 */
export type Track = components["schemas"]["WorkerPosition"];

/** The worker's current offer, and why it went away if it did. */
export interface Offer extends OfferMessage {
  /** `offer_revoked`'s reason (`expired`, `cancelled`, `declined`), or set by the app. */
  revoked?: string;
}

/** Everything the screens show that changes on its own. */
export interface State {
  jobs: Record<string, Job>;
  tracks: Record<string, Track>;
  offer: Offer | null;
  socket: SocketState;
  /** `navigator.onLine`. */
  online: boolean;
  /** The last HTTP call reached the server (false: a fetch failed). */
  reachable: boolean;
  /** How many times the socket has opened: screens whose read failed try again when it grows. */
  opens: number;
}

export type Action =
  | { type: "jobs"; jobs: Job[] }
  | { type: "job"; job: Job }
  | { type: "tracking"; m: TrackingMessage }
  | { type: "offer"; m: OfferMessage }
  | { type: "offer_revoked"; m: OfferRevokedMessage }
  | { type: "offer_done"; job_id: string; why: string }
  | { type: "socket"; state: SocketState }
  | { type: "online"; online: boolean }
  | { type: "reachable"; reachable: boolean };

export function initial(online = true): State {
  return { jobs: {}, tracks: {}, offer: null, socket: "connecting", online, reachable: true, opens: 0 };
}

/** The newer of two tracks (by `at`); equal times keep the incoming one. */
function newer(a: Track | undefined, b: Track): Track {
  if (!a) return b;
  return Date.parse(b.at) >= Date.parse(a.at) ? b : a;
}

function mergeJob(s: State, job: Job): State {
  const old = s.jobs[job.id];
  if (old && old.version > job.version) return s; // a stale copy (a list read before a message)
  // A message may leave out what a read had (worker_name, worker_position).
  const merged: Job = old ? { ...old, ...job } : job;
  if (job.worker_position === undefined && old?.worker_position !== undefined) merged.worker_position = old.worker_position;
  const jobs = { ...s.jobs, [job.id]: merged };
  let tracks = s.tracks;
  if (merged.status !== "accepted") {
    if (tracks[job.id]) {
      tracks = { ...tracks };
      delete tracks[job.id];
    }
  } else if (job.worker_position) {
    tracks = { ...tracks, [job.id]: newer(tracks[job.id], job.worker_position) };
  }
  let offer = s.offer;
  if (offer && offer.job_id === job.id && !offer.revoked && job.status !== "offered") {
    // Taken (by this worker: it is now their active job) or gone.
    offer = { ...offer, revoked: job.status === "accepted" ? "accepted" : job.status === "cancelled" ? "cancelled" : "ended" };
  }
  return { ...s, jobs, tracks, offer };
}

export function reduce(s: State, a: Action): State {
  switch (a.type) {
    case "jobs":
      return a.jobs.reduce(mergeJob, s);
    case "job":
      return mergeJob(s, a.job);
    case "tracking": {
      const job = s.jobs[a.m.job_id];
      if (job && job.status !== "accepted") return s; // late: the engineer has arrived
      const t: Track = { lat: a.m.lat, lng: a.m.lng, at: a.m.at, eta_s: a.m.eta_s };
      return { ...s, tracks: { ...s.tracks, [a.m.job_id]: newer(s.tracks[a.m.job_id], t) } };
    }
    case "offer":
      return { ...s, offer: { ...a.m } };
    case "offer_revoked":
      if (!s.offer || s.offer.job_id !== a.m.job_id) return s;
      return { ...s, offer: { ...s.offer, revoked: a.m.reason } };
    case "offer_done":
      if (!s.offer || s.offer.job_id !== a.job_id) return s;
      return { ...s, offer: { ...s.offer, revoked: a.why } };
    case "socket":
      return s.socket === a.state ? s : { ...s, socket: a.state, opens: a.state === "open" ? s.opens + 1 : s.opens };
    case "online":
      return s.online === a.online ? s : { ...s, online: a.online };
    case "reachable":
      return s.reachable === a.reachable ? s : { ...s, reachable: a.reachable };
  }
}

/** What the connection banner says, or null when all is well. */
export function connection(s: Pick<State, "online" | "reachable" | "socket">): { kind: "offline" | "unreachable" | "reconnecting"; text: string } | null {
  if (!s.online) return { kind: "offline", text: "You are offline. The app reconnects by itself when the network is back." };
  if (!s.reachable) return { kind: "unreachable", text: "Offline: cannot reach dispatchd. Retrying…" };
  if (s.socket !== "open") return { kind: "reconnecting", text: "Reconnecting to live updates…" };
  return null;
}

/** The worker's active job (accepted or arrived), if any. */
export function activeJob(s: Pick<State, "jobs">, workerId: string): Job | undefined {
  return Object.values(s.jobs).find((j) => j.worker_id === workerId && (j.status === "accepted" || j.status === "arrived"));
}

/** Jobs newest first. */
export function newestFirst(jobs: Record<string, Job>): Job[] {
  return Object.values(jobs).sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
}

/**
 * Which form field a server error names: the contract's `invalid_input`
 * message starts with the field (`"password: must be …"`). Returns the
 * field when it is one of `fields`, else null (shown at the form's foot).
 */
export function fieldOf(message: string, fields: readonly string[]): string | null {
  const m = /^\s*([A-Za-z_][\w.\[\]]*)\s*:/.exec(message);
  if (!m) {
    // "invalid email", "email is taken" …: the first field named as a word.
    const words = message.toLowerCase();
    return fields.find((f) => new RegExp(`\\b${f}\\b`).test(words)) ?? null;
  }
  const name = m[1]!.replace(/\[\d*\]$/, "").split(".")[0]!;
  return fields.includes(name) ? name : null;
}
