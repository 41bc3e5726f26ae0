// The console's state, kept apart from the page so node can test it:
// the fleet (workers by id) and the open jobs, folded from the ops
// `watch` messages and HTTP listings; what changed since the last
// paint is collected so the map redraws once per frame, not per message.

export const WORKER_STATES = ["available", "offered", "busy", "stale", "offline"];
export const OPEN_STATUSES = ["searching", "offered", "accepted", "arrived"];
export const COLOURS = {
  available: "#1a9850",
  offered: "#fdae61",
  busy: "#2c7bb6",
  stale: "#999999",
  offline: "#d7d7d7",
  searching: "#d73027",
  accepted: "#7b3294",
  arrived: "#542788",
  unmatched: "#000000",
};

export class Fleet {
  constructor() {
    this.workers = new Map();
    this.jobs = new Map();
    this.dirtyWorkers = new Set();
    this.dirtyJobs = new Set();
  }

  /** A `fleet` message: the full snapshot (`full`) or the workers that changed. */
  applyFleet(msg, full) {
    if (full) {
      for (const id of this.workers.keys()) this.dirtyWorkers.add(id);
      this.workers.clear();
    }
    for (const w of msg.workers || []) {
      if (typeof w.id !== "string") continue;
      this.workers.set(w.id, { id: w.id, lat: w.lat, lng: w.lng, state: w.state });
      this.dirtyWorkers.add(w.id);
    }
  }

  /** A `job` message or a job from a listing: kept while open, dropped once it ends. */
  applyJob(job) {
    if (!job || typeof job.id !== "string") return;
    const prev = this.jobs.get(job.id);
    if (prev && typeof prev.version === "number" && typeof job.version === "number"
        && job.version < prev.version) {
      return; // an older view arriving late
    }
    if (OPEN_STATUSES.includes(job.status)) {
      this.jobs.set(job.id, job);
    } else {
      this.jobs.delete(job.id);
    }
    this.dirtyJobs.add(job.id);
  }

  /** Worker counts by state, for the legend. */
  counts() {
    const c = Object.fromEntries(WORKER_STATES.map((s) => [s, 0]));
    for (const w of this.workers.values()) c[w.state] = (c[w.state] || 0) + 1;
    return c;
  }

  /** What changed since the last call: ids of workers and jobs to redraw. */
  takeDirty() {
    const out = { workers: [...this.dirtyWorkers], jobs: [...this.dirtyJobs] };
    this.dirtyWorkers.clear();
    this.dirtyJobs.clear();
    return out;
  }
}

/** "3 min ago"-style age of an RFC 3339 time, from `now` (ms). */
export function age(rfc3339, now) {
  const t = Date.parse(rfc3339);
  if (Number.isNaN(t)) return "";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Cents as money. */
export function money(cents) {
  if (typeof cents !== "number") return "";
  return `$${(cents / 100).toFixed(2)}`;
}

/** A job id someone typed: trimmed, or null when it cannot be one. */
export function jobIdFrom(input) {
  const id = String(input || "").trim();
  return /^[\x21-\x7e]{1,128}$/.test(id) ? id : null;
}
