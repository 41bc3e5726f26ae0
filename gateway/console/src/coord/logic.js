// @ts-check
// The coordinator's screens' pure logic, kept apart from the DOM so node
// tests it: occurrence colours, the hash route (filters a coordinator can
// share as a link), which field a server error names, keyset paging over
// lists that only take `to` and `limit`, CSV pages joined into one file,
// and which steps and location fields the stock forms offer.

/** What an occurrence on the calendar is, and its colour (white text on it reads at 4.5:1 or more). */
export const KINDS = {
  scheduled: { label: "scheduled", colour: "#1f5f99" },
  due: { label: "due", colour: "#8a4b00" },
  overdue: { label: "overdue", colour: "#b3261e" },
  done: { label: "done", colour: "#1a6b34" },
  paused: { label: "paused", colour: "#5b6570" },
};

/**
 * The kind of an occurrence: a log is done; a schedule's current due date
 * takes the schedule's status; later ones are scheduled.
 * @param {{log?: boolean, first?: boolean, status?: string}} o
 * @returns {keyof typeof KINDS}
 */
export function occurrenceKind(o) {
  if (o.log) return "done";
  if (!o.first) return "scheduled";
  if (o.status === "overdue" || o.status === "due" || o.status === "paused") return o.status;
  return "scheduled";
}

/** The screens, by the first part of the hash. */
export const SCREENS = ["map", "calendar", "logs", "stock", "webhooks", "triage"];

/**
 * `#/logs?property=p1&from=2025-01-01` → {screen: "logs", params: {property: "p1", from: …}}.
 * Unknown screens are the map; empty values are dropped.
 * @param {string} hash
 * @returns {{screen: string, params: Record<string, string>}}
 */
export function parseRoute(hash) {
  const raw = String(hash || "").replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const name = (q < 0 ? raw : raw.slice(0, q)).replace(/\/+$/, "");
  /** @type {Record<string, string>} */
  const params = {};
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(raw.slice(q + 1))) if (v !== "") params[k] = v;
  }
  return { screen: SCREENS.includes(name) ? name : "map", params };
}

/**
 * The hash for a screen and its filters (empty ones left out, keys sorted
 * so the same filters give the same link).
 * @param {string} screen @param {Record<string, string | number | boolean | null | undefined>} [params]
 */
export function routeHash(screen, params = {}) {
  const q = new URLSearchParams();
  for (const k of Object.keys(params).sort()) {
    const v = params[k];
    if (v !== undefined && v !== null && v !== "" && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return `#/${screen}${s ? `?${s}` : ""}`;
}

/**
 * The field a server error names: API.md's `invalid_input` messages read
 * "<field>: <reason>" (e.g. "every.interval: must be an integer 1 to 1000").
 * Returns the field when it is one of `fields` (or a parent of one: `every`
 * for `every.unit`), else null.
 * @param {string} message @param {string[]} fields
 * @returns {string | null}
 */
export function fieldOf(message, fields) {
  const m = /^([A-Za-z_][A-Za-z0-9_.[\]]*)\s*:/.exec(String(message || ""));
  const names = m ? [m[1]] : [];
  // serde's "missing field `title`" / "unknown field `x`".
  const q = /field `([^`]+)`/.exec(String(message || ""));
  if (q) names.push(q[1]);
  for (const name of names) {
    if (fields.includes(name)) return name;
    const parent = name.split(/[.[]/)[0];
    if (fields.includes(parent)) return parent;
    const child = fields.find((f) => f.startsWith(`${name}.`));
    if (child) return child;
  }
  return null;
}

/**
 * Keyset paging for lists that are newest first and take an inclusive
 * `to` (logs by `performed_at`, movements by `at`): the next page asks
 * for `to` = the oldest time seen, with the limit raised by the rows
 * already seen at that very time, which it then drops.
 * @template T
 * @param {T[]} rows what is shown so far, newest first
 * @param {(r: T) => string} timeOf @param {(r: T) => string} idOf
 * @param {number} pageSize
 * @returns {{to: string, limit: number, seen: Set<string>} | null} null when nothing is shown
 */
export function nextPage(rows, timeOf, idOf, pageSize) {
  if (rows.length === 0) return null;
  const to = timeOf(rows[rows.length - 1]);
  const seen = new Set(rows.filter((r) => timeOf(r) === to).map(idOf));
  return { to, limit: Math.min(500, pageSize + seen.size), seen };
}

/**
 * The rows of a next page that were not shown yet, and whether there may
 * be more after them (the server answered a full page).
 * @template T
 * @param {T[]} got @param {{limit: number, seen: Set<string>}} page @param {(r: T) => string} idOf
 */
export function takePage(got, page, idOf) {
  return { rows: got.filter((r) => !page.seen.has(idOf(r))), more: got.length >= page.limit };
}

/**
 * RFC 4180 CSV → rows of cells (quoted fields, doubled quotes, CRLF or LF).
 * @param {string} text @returns {string[][]}
 */
export function parseCsv(text) {
  /** @type {string[][]} */
  const rows = [];
  /** @type {string[]} */
  let row = [];
  let cell = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { cell += '"'; i += 2; continue; }
        quoted = false; i += 1; continue;
      }
      cell += c; i += 1; continue;
    }
    if (c === '"') { quoted = true; i += 1; continue; }
    if (c === ",") { row.push(cell); cell = ""; i += 1; continue; }
    if (c === "\r" || c === "\n") {
      row.push(cell); rows.push(row); row = []; cell = "";
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
      continue;
    }
    cell += c; i += 1;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

/**
 * The CSV lines of `text` (each record's raw text, quotes kept) without its
 * header, so pages join without re-quoting: [header, records].
 * @param {string} text @returns {[string, string[]]}
 */
export function csvRecords(text) {
  /** @type {string[]} */
  const lines = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === "\n" || c === "\r")) {
      lines.push(text.slice(start, i));
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      start = i + 1;
    }
  }
  if (start < text.length) lines.push(text.slice(start));
  return [lines[0] ?? "", lines.slice(1).filter((l) => l !== "")];
}

/** A money input ("12.50") in cents, or null. @param {string} v */
export function centsOf(v) {
  const m = /^\s*\$?(\d+)(?:\.(\d{1,2}))?\s*$/.exec(String(v));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
}

/** Cents as "$12.50". @param {number | null | undefined} c */
export const dollars = (c) => (typeof c === "number" ? `$${(c / 100).toFixed(2)}` : "–");

/** Which location fields a movement of `kind` takes (API.md: receive only `to`, consume only `from`, …). */
export const MOVEMENT_FIELDS = /** @type {const} */ ({
  receive: { from: "no", to: "yes" },
  consume: { from: "yes", to: "no" },
  transfer: { from: "yes", to: "yes" },
  return: { from: "yes", to: "yes" },
  adjust: { from: "either", to: "either" },
});

/** Is `v` a location ("depot:<name>" or "van:<worker id>")? @param {string} v */
export const isLocation = (v) => /^(depot|van):\S+$/.test(String(v || ""));

/**
 * The steps a reorder task in `status` can take next.
 * @param {string} status @returns {("ordered" | "received" | "cancel")[]}
 */
export function reorderSteps(status) {
  if (status === "open") return ["ordered", "received", "cancel"];
  if (status === "ordered") return ["received", "cancel"];
  return [];
}

/** The event names a webhook may subscribe to (API.md). */
export const EVENTS = [
  "job.created", "job.offered", "job.accepted", "job.arrived", "job.completed", "job.cancelled",
  "job.unmatched", "maintenance.due", "maintenance.overdue", "reorder.created", "payment.updated",
];

/** A date input ("2025-06-01") as the start (or, with `end`, the end) of that day in the viewer's zone, RFC 3339 UTC. */
export function dayBound(/** @type {string} */ v, /** @type {boolean} */ end = false) {
  const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(String(v || ""));
  if (!m) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), end ? 23 : 0, end ? 59 : 0, end ? 59 : 0, end ? 999 : 0);
  return d.toISOString();
}
