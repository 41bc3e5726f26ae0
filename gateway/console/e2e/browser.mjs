// The console in a real browser (headless Chromium driven by
// playwright-core), against a live dispatchd that gateway/tests/console.rs
// started and seeded. Steps, each with a screenshot in $SHOTS:
//   1. sign in with the ops account;
//   2. the map shows $WORKERS worker markers, and $WORKER_ID is found
//      from the search box by keyboard;
//   3. a job created over the API appears on the map within 2 s;
//   4. the dead letter $DEAD_JOB is retried with its button and leaves the list.
// Any console error or failed request of the page fails the run.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env("BASE");
const SHOTS = env("SHOTS");
const WORKERS = Number(env("WORKERS"));
const DEAD_JOB = env("DEAD_JOB");
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
let step = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  const shot = async (name) => {
    step += 1;
    await page.screenshot({ path: `${SHOTS}/${step}-${name}.png` });
  };

  await page.goto(`${BASE}/ops`);
  await page.getByLabel("Email").fill(env("EMAIL"));
  await page.getByLabel("Password").fill(env("PASSWORD"));
  await shot("sign-in");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#console:not(.hidden)").waitFor({ timeout: 10_000 });
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: 10_000 });

  await page.waitForFunction(
    (n) => Number(document.querySelector("#map").dataset.workers) === n, WORKERS, { timeout: 10_000 });
  await shot("map-with-workers");

  // Keyboard only: find a worker by id from the search box.
  await page.getByLabel("Job or worker id").fill(env("WORKER_ID"));
  await page.keyboard.press("Enter");
  await page.locator("#details h2", { hasText: `Worker ${env("WORKER_ID")}` }).waitFor({ timeout: 5_000 });
  await shot("worker-found");

  const before = Number(await page.locator("#map").getAttribute("data-jobs"));
  const created = Date.now();
  const r = await fetch(`${BASE}/v1/jobs`, {
    method: "POST",
    headers: { authorization: `Bearer ${env("RESIDENT_TOKEN")}`, "content-type": "application/json" },
    body: JSON.stringify({ lat: 51.503, lng: -0.121, skill: "plumbing", description: "browser test" }),
  });
  if (r.status !== 201) throw new Error(`job create: ${r.status} ${await r.text()}`);
  await page.waitForFunction(
    (n) => Number(document.querySelector("#map").dataset.jobs) > n, before, { timeout: 2_000 });
  const took = Date.now() - created;
  await shot("new-job-on-map");
  console.log(`new job on the map after ${took} ms`);

  const retry = page.locator(`#dead button[data-id="${DEAD_JOB}"]`);
  await retry.waitFor({ timeout: 10_000 });
  await shot("dead-letter-listed");
  await retry.click();
  await page.locator(`#dead button[data-id="${DEAD_JOB}"]`).waitFor({ state: "detached", timeout: 5_000 });
  await shot("dead-letter-retried");

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#signin:not(.hidden)").waitFor({ timeout: 5_000 });
  await shot("signed-out");
} catch (e) {
  problems.push(`step ${step + 1}: ${e.message}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`ok: ${step} steps, screenshots in ${SHOTS}`);
