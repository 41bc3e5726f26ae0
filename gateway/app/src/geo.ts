/**
 * Pure geometry: great-circle distance, and when a worker's device position
 * is worth sending (at most every 2 s, a move of 25 m, or a refresh before
 * the server counts it stale).
 * @module
 */

/** A point in degrees. */
export interface LatLng {
  lat: number;
  lng: number;
}

const R = 6_371_008.8; // mean Earth radius, metres

/** Great-circle distance in metres (haversine). */
export function haversine(a: LatLng, b: LatLng): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLng = (b.lng - a.lng) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The rules of {@link shouldSend}. */
export interface SendRule {
  /** Never two positions closer in time than this (ms). */
  minIntervalMs: number;
  /** A move at least this long (m) is sent once the interval allows. */
  minMoveM: number;
  /**
   * The same place is sent again after this long (ms), so the server keeps
   * the worker's position fresh (it goes stale after `[dispatch]
   * stale_after_s`, 30 s by default).
   */
  refreshMs: number;
}

/** The app's rule: 2 s, 25 m, and a refresh every 10 s while standing still. */
export const SEND_RULE: SendRule = { minIntervalMs: 2_000, minMoveM: 25, refreshMs: 10_000 };

/** The last position sent and when (ms). */
export interface Sent extends LatLng {
  at: number;
}

/** Whether `next` should be sent at `now` (ms), given the last one sent. */
export function shouldSend(last: Sent | null, next: LatLng, now: number, rule: SendRule = SEND_RULE): boolean {
  if (!last) return true;
  const elapsed = now - last.at;
  if (elapsed < rule.minIntervalMs) return false;
  return haversine(last, next) >= rule.minMoveM || elapsed >= rule.refreshMs;
}

/** `geo:` URI (opens the phone's navigation app) for a point. */
export function geoUri(p: LatLng): string {
  return `geo:${p.lat.toFixed(6)},${p.lng.toFixed(6)}`;
}

/** An OpenStreetMap link centred on a point (a link only: nothing is fetched from it). */
export function osmUrl(p: LatLng): string {
  const lat = p.lat.toFixed(6);
  const lng = p.lng.toFixed(6);
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lng}#map=17/${lat}/${lng}`;
}
