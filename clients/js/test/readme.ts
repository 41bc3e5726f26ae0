// The README's two examples, type-checked (never run): the build of the
// tests fails when they no longer match the library. Copied from README.md
// by hand; keep the two the same.
import { Dispatchd, unwrap, type DispatchdError } from "../src/index.js";

declare function showSignIn(): void;
declare function setBanner(s: string): void;
declare function askUser(description: string, distance_m: number, expires_at: string): Promise<boolean>;
declare function showError(code: string): void;
declare function renderActiveJob(job: unknown): void;
declare function render(job: unknown): void;
declare function moveMarker(lat: number, lng: number, eta_s: number): void;
declare const navigator: { geolocation: { watchPosition(f: (p: { coords: { latitude: number; longitude: number } }) => void): void } };

/** The worker. */
export async function worker() {
  const d = new Dispatchd({ url: "http://127.0.0.1:8080" });
  await d.login("pat@example.com", "Secret123");
  d.on("unauthorized", () => showSignIn());          // token expired: once, no retry loop

  const s = d.socket();                                // connects at once, reconnects by itself
  s.on("state", (st) => setBanner(st));                // connecting | open | closed
  s.on("offer", async (o) => {
    const yes = await askUser(o.description, o.distance_m, o.expires_at);
    s.send({ type: yes ? "accept" : "decline", job_id: o.job_id })   // resolves on its ack
      .catch((e: DispatchdError) => showError(e.code)); // offer_expired, timeout, disconnected …
  });
  s.on("job", (m) => renderActiveJob(m.job));          // accepted → arrived → completed
  await s.send({ type: "availability", available: true });
  navigator.geolocation.watchPosition((p) => s.track(p.coords.latitude, p.coords.longitude));
  // later: s.send({ type: "arrive", job_id }), s.send({ type: "complete", job_id })
}

/** The resident. */
export async function resident() {
  const d = new Dispatchd({ url: "http://127.0.0.1:8080" });
  await d.login("ria@example.com", "Secret123");
  const job = await unwrap(d.rest.POST("/v1/jobs", {
    body: { lat: 52.523, lng: 13.41, skill: "plumbing", description: "leaking tap" },
  }));

  const s = d.socket({ format: "msgpack" });           // or "json" (default)
  s.on("job", (m) => m.job.id === job.id && render(m.job));    // each change once, in order
  s.on("tracking", (t) => moveMarker(t.lat, t.lng, t.eta_s)); // the engineer on the way
  s.on("gap", async () =>                             // missed history: re-read over HTTP
    render(await unwrap(d.rest.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } }))));
}

/** Both WebSocket constructors fit the option without a cast: the browser's, and `ws`'s in Node 20. */
export function constructors(ws: typeof import("ws").WebSocket) {
  return [
    new Dispatchd({ url: "http://127.0.0.1:8080", WebSocket: globalThis.WebSocket }),
    new Dispatchd({ url: "http://127.0.0.1:8080", WebSocket: ws }),
  ];
}
