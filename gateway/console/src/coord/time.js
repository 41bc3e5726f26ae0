// @ts-check
// Calendar arithmetic in a schedule's IANA time zone, with nothing but
// Intl (no zone database bundled): the wall clock of an instant in a zone,
// the instant of a wall clock in a zone, and a schedule's occurrences as
// API.md says the server computes them (month steps keep the day of the
// month, clamped; the local time holds across DST).

/** @typedef {{y: number, mo: number, d: number, h: number, mi: number, s: number}} Wall */

/** @type {Map<string, Intl.DateTimeFormat>} */
const formatters = new Map();

/** @param {string} tz */
function formatter(tz) {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Is `tz` a zone this browser knows? @param {string} tz */
export function knownZone(tz) {
  try { formatter(tz); return true; } catch { return false; }
}

/** The wall clock of instant `ms` in `tz`. @param {number} ms @param {string} tz @returns {Wall} */
export function wallClock(ms, tz) {
  /** @type {Record<string, number>} */
  const p = {};
  for (const part of formatter(tz).formatToParts(new Date(ms))) {
    if (part.type !== "literal") p[part.type] = Number(part.value);
  }
  return { y: p.year, mo: p.month, d: p.day, h: p.hour % 24, mi: p.minute, s: p.second };
}

/** @param {Wall} w */
const asUtc = (w) => Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s);

/** Offset of `tz` from UTC at instant `ms`, in ms. @param {number} ms @param {string} tz */
export function offsetAt(ms, tz) {
  return asUtc(wallClock(Math.floor(ms / 1000) * 1000, tz)) - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant the wall clock `w` shows in `tz` (in a DST gap, the instant
 * after it; in an overlap, the earlier one).
 * @param {Wall} w @param {string} tz @returns {number}
 */
export function zonedToUtc(w, tz) {
  const guess = asUtc(w);
  const o1 = offsetAt(guess - 0, tz);
  let t = guess - o1;
  const o2 = offsetAt(t, tz);
  if (o2 !== o1) {
    const t2 = guess - o2;
    // In an overlap both are right: keep the earlier; in a gap neither is.
    if (asUtc(wallClock(t2, tz)) === guess) t = Math.min(t, t2);
    else t = Math.max(t, t2);
  }
  return t;
}

/** @param {number} y @param {number} mo 1..12 */
export const daysInMonth = (y, mo) => new Date(Date.UTC(y, mo, 0)).getUTCDate();

/**
 * `w` moved by `n` units; month and year steps land on `day` (the
 * series' day of the month), clamped to the month's length.
 * @param {Wall} w @param {"day"|"week"|"month"|"year"} unit @param {number} n @param {number} day
 * @returns {Wall}
 */
export function addSteps(w, unit, n, day) {
  if (unit === "day" || unit === "week") {
    const t = new Date(Date.UTC(w.y, w.mo - 1, w.d + (unit === "week" ? 7 * n : n)));
    return { ...w, y: t.getUTCFullYear(), mo: t.getUTCMonth() + 1, d: t.getUTCDate() };
  }
  const months = w.y * 12 + (w.mo - 1) + (unit === "year" ? 12 * n : n);
  const y = Math.floor(months / 12);
  const mo = (months % 12) + 1;
  return { ...w, y, mo, d: Math.min(day, daysInMonth(y, mo)) };
}

/**
 * @typedef {{id: string, title: string, status: string, timezone: string, start_at: string,
 *   next_due_at: string, anchor: string, every: {unit: string, interval: number}}} ScheduleLike
 * @typedef {{schedule_id: string, at: number, first: boolean, projected: boolean}} Occurrence
 */

/**
 * The occurrences of `s` in [from, to): its current due date (whatever it
 * is, so an overdue one shows once), then the following ones. With
 * `anchor: "completion"` the later ones are projected (they move when the
 * work is done). A paused schedule shows only its current due date.
 * @param {ScheduleLike} s @param {number} from @param {number} to @param {number} [max]
 * @returns {Occurrence[]}
 */
export function occurrences(s, from, to, max = 400) {
  const next = Date.parse(s.next_due_at);
  if (Number.isNaN(next)) return [];
  /** @type {Occurrence[]} */
  const out = [];
  if (next >= from && next < to) out.push({ schedule_id: s.id, at: next, first: true, projected: false });
  if (s.status === "paused") return out;
  const tz = knownZone(s.timezone) ? s.timezone : "UTC";
  const unit = /** @type {"day"|"week"|"month"|"year"} */ (s.every.unit);
  const interval = Math.max(1, Math.floor(s.every.interval) || 1);
  const baseAt = s.anchor === "due" ? Date.parse(s.start_at) : next;
  const base = wallClock(Number.isNaN(baseAt) ? next : baseAt, tz);
  // Skip ahead near `next` without walking every step of a long past.
  const approx = { day: 86400e3, week: 7 * 86400e3, month: 28 * 86400e3, year: 365 * 86400e3 }[unit] * interval;
  let k = Math.max(0, Math.floor((Math.max(next, from) - (Number.isNaN(baseAt) ? next : baseAt)) / approx) - 2);
  for (let guard = 0; guard < 5000 && out.length < max; guard += 1, k += 1) {
    const at = zonedToUtc(addSteps(base, unit, interval * k, base.d), tz);
    if (at >= to) break;
    if (at <= next || at < from) continue;
    out.push({ schedule_id: s.id, at, first: false, projected: s.anchor !== "due" });
  }
  return out;
}

/**
 * "Tue 3 Jun, 09:00" in `tz` (the viewer's zone when absent).
 * @param {number} ms @param {string} [tz]
 */
export function formatAt(ms, tz) {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(ms));
}

/** The viewer's zone. */
export const viewerZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/**
 * An instant in the schedule's zone and, when it differs, the viewer's:
 * "Tue 3 Jun 2025, 09:00 Europe/Berlin (08:00 your time)".
 * @param {number} ms @param {string} tz @param {string} [viewer]
 */
export function bothZones(ms, tz, viewer = viewerZone()) {
  const there = `${formatAt(ms, tz)} ${tz}`;
  if (offsetAt(ms, tz) === offsetAt(ms, viewer)) return there;
  return `${there} (${formatAt(ms, viewer)} your time)`;
}

/** `<input type="datetime-local">`'s value for `ms` in `tz`. @param {number} ms @param {string} tz */
export function toLocalInput(ms, tz) {
  const w = wallClock(ms, tz);
  const p = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${String(w.y).padStart(4, "0")}-${p(w.mo)}-${p(w.d)}T${p(w.h)}:${p(w.mi)}`;
}

/** The instant of a datetime-local value read in `tz`, or null. @param {string} v @param {string} tz */
export function fromLocalInput(v, tz) {
  const m = /^(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?$/.exec(v);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => Number(x || 0));
  return zonedToUtc({ y, mo, d, h, mi, s }, tz);
}
