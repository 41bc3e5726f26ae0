/**
 * Hash routes (`/app/#/jobs/<id>`), so that the server serves one page and
 * needs no fallback. `parse` and `href` are pure.
 * @module
 */

/** Every screen of the app. */
export type Route =
  | { name: "home" }
  | { name: "new" }
  | { name: "properties" }
  | { name: "job"; id: string }
  | { name: "logs" }
  | { name: "profile" }
  | { name: "signup" };

/** `location.hash` → the route; anything unknown is `home`. */
export function parse(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [a, b] = parts;
  if (a === "jobs" && b) return { name: "job", id: b };
  if (a === "new" || a === "properties" || a === "logs" || a === "profile" || a === "signup") return { name: a };
  return { name: "home" };
}

/** The hash of a route: `{name: "job", id}` → `#/jobs/<id>`. */
export function href(r: Route): string {
  if (r.name === "home") return "#/";
  if (r.name === "job") return `#/jobs/${encodeURIComponent(r.id)}`;
  return `#/${r.name}`;
}
