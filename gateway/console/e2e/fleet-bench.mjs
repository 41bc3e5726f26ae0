// How the console holds up with a large live fleet (BENCHMARKS.md, "The
// ops console at 10 000 workers"). Against a running dispatchd that a load
// generator fills (see there for the commands): signs in as $EMAIL, waits
// until $WORKERS worker markers are drawn, then records for $SECONDS
// (default 10) the gaps between animation frames and the long tasks
// (> 50 ms) of the page's main thread, and prints them as JSON.
import { chromium } from "playwright-core";

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const WORKERS = Number(env("WORKERS"));
const SECONDS = Number(env("SECONDS", "10"));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const started = Date.now();
await page.goto(`${env("BASE")}/ops`);
await page.getByLabel("Email").fill(env("EMAIL"));
await page.getByLabel("Password").fill(env("PASSWORD"));
await page.getByRole("button", { name: "Sign in" }).click();
await page.waitForFunction(
  (n) => Number(document.querySelector("#map").dataset.workers) >= n, WORKERS, { timeout: 120_000 });
const drawnAfterMs = Date.now() - started;
const r = await page.evaluate((seconds) => new Promise((resolve) => {
  const gaps = [];
  const long = [];
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) long.push(e.duration); })
      .observe({ type: "longtask" });
  } catch { /* not supported */ }
  let last = performance.now();
  const end = last + seconds * 1000;
  const frame = (t) => {
    gaps.push(t - last);
    last = t;
    if (t < end) requestAnimationFrame(frame); else resolve({ gaps, long });
  };
  requestAnimationFrame(frame);
}), SECONDS);
const markers = await page.locator("#map").getAttribute("data-workers");
await browser.close();
const sorted = [...r.gaps].sort((a, b) => a - b);
const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
console.log(JSON.stringify({
  workers_drawn: Number(markers),
  first_full_map_ms: drawnAfterMs,
  frames: sorted.length,
  frame_gap_ms: { p50: +q(0.5).toFixed(1), p99: +q(0.99).toFixed(1), max: +sorted[sorted.length - 1].toFixed(1) },
  long_tasks: r.long.length,
  longest_task_ms: r.long.length ? +Math.max(...r.long).toFixed(1) : 0,
}));
