// The coordinator's screens in a real browser (headless Chromium driven by
// playwright-core) against a dispatchd this script starts itself
// (TestServer, $DISPATCHD_BIN) and seeds over HTTP. At 1280×800, one
// screen also at tablet size (820×1180); a screenshot per step in $SHOTS:
//   1. a schedule created through the form shows in the month view in the
//      scheduled colour (and one overdue from the API in the overdue colour,
//      reached by a shared link; opened, paused and resumed); list and week
//      views;
//   2. a log posted over the API is in the table (notes and photo expand)
//      and in the CSV downloaded from the UI, which holds exactly the
//      filtered rows;
//   3. stock received through the form, a rule and a movement drop it
//      below the reorder point, the reorder task appears and is marked
//      ordered, then received;
//   4. the parts analytics chart renders; a registered webhook shows its
//      secret once and its deliveries; a triage example is taught;
//   5. a server validation error (a bad time zone) shows beside its field;
//   6. axe-core on every screen: no serious or critical violations.
// Any console error or failed request of the page, other than the one 400
// step 5 provokes, fails the run; so does running past 4 minutes.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import { TestServer, freePort } from "../../../clients/js/scripts/server.mjs";
import { parseCsv } from "../src/coord/logic.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const SHOTS = process.env.SHOTS || "/tmp/console-shots";
mkdirSync(SHOTS, { recursive: true });
const deadline = setTimeout(() => { console.error("coordinator e2e: over 4 minutes, giving up"); process.exit(2); }, 240_000);

// ------------------------------------------------------------ the server

const hookPort = await freePort();
const hooks = [];
const receiver = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => { body += c; });
  req.on("end", () => { hooks.push({ headers: req.headers, body }); res.writeHead(200).end("ok"); });
}).listen(hookPort, "127.0.0.1");

const server = new TestServer({ DISPATCHD_NOTIFY_ALLOW_PRIVATE_TARGETS: "true" });
await server.start();
const BASE = server.url;
const OPS = server.token("ops-seeder", "ops");

async function call(method, path, body, token = OPS, type = "application/json") {
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": type } : {}) },
    body: body === undefined ? undefined : type === "application/json" ? JSON.stringify(body) : body,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A 2×2 PNG (a real one: the server reads its header back). */
function png() {
  const crc = (buf) => {
    let c = ~0;
    for (const b of buf) { c ^= b; for (let k = 0; k < 8; k += 1) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
    return ~c >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0); ihdr.writeUInt32BE(2, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.from([0, 200, 30, 30, 30, 200, 30, 0, 30, 30, 200, 200, 200, 30]);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

const EMAIL = "coordinator@example.com";
const PASSWORD = "Coordinate42";
await call("POST", "/v1/auth/register", { email: EMAIL, password: PASSWORD, name: "Cora Coordinator", role: "ops" });
const owner = await call("POST", "/v1/auth/register", { email: "owner@example.com", password: "Owner1234", name: "Olive Owner", role: "resident" }, undefined);
const harbour = await call("POST", "/v1/properties", { name: "Harbour View", address: "1 Quay St", lat: 52.52, lng: 13.405, owner_id: owner.id });
const hill = await call("POST", "/v1/properties", { name: "Hill House", address: "9 Hill Rd", lat: 52.5, lng: 13.3, owner_id: owner.id });
const DAY = 86400e3;
// Overdue: due three days ago (Harbour View); another on Hill House for a log outside the filter.
const overdue = await call("POST", "/v1/schedules", { property_id: harbour.id, title: "Gutter clearing", skill: "roofing",
  every: { unit: "month", interval: 3 }, timezone: "Europe/Berlin", start_at: new Date(Date.now() - 3 * DAY).toISOString() });
const hillSchedule = await call("POST", "/v1/schedules", { property_id: hill.id, title: "Smoke alarm test", skill: "electrical",
  every: { unit: "month", interval: 6 }, timezone: "Europe/Berlin", start_at: new Date(Date.now() + 40 * DAY).toISOString() });
const photo = await call("POST", "/v1/attachments", png(), OPS, "image/png");

// ------------------------------------------------------------ the browser

const problems = [];
let allowed = []; // [status, url part] a step expects
let step = 0;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const axeSource = readFileSync(join(HERE, "../../../node_modules/axe-core/axe.min.js"), "utf8");
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 }, timezoneId: "America/New_York", acceptDownloads: true,
    permissions: ["clipboard-read", "clipboard-write"],
  });
  const page = await context.newPage();
  const expected = (status, url) => allowed.some(([s, part]) => s === status && url.includes(part));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const status = Number(/status of (\d+)/.exec(m.text())?.[1]);
    if (status && expected(status, m.location()?.url ?? "")) return;
    problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400 && !expected(r.status(), r.url())) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  page.on("requestfailed", (r) => {
    if (r.url().startsWith("blob:")) return; // a revoked download URL
    problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  const shot = async (name) => {
    step += 1;
    await page.screenshot({ path: `${SHOTS}/${String(step).padStart(2, "0")}-${name}.png`, fullPage: true });
  };
  const axe = async (screen) => {
    // Through DevTools rather than page.addScriptTag: the console's CSP
    // (script-src 'self') rightly refuses an inline <script>.
    if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
    const v = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations.filter((x) => x.impact === "serious" || x.impact === "critical")
        .map((x) => `${x.id} (${x.impact}): ${x.nodes.slice(0, 3).map((n) => `${n.target.join(" ")} ${n.html.slice(0, 140)}`).join(" | ")}`);
    });
    for (const x of v) problems.push(`axe on ${screen}: ${x}`);
  };
  /** Waits until an occurrence of `kind` titled `text` is painted `rgb`. */
  const colourOf = async (kind, text, rgb) => {
    const ok = await page.waitForFunction(([k, t, c]) => [...document.querySelectorAll(`#calendar .fc-event[data-kind="${k}"]`)]
      .some((el) => el.textContent.includes(t) && getComputedStyle(el).backgroundColor === c), [kind, text, rgb], { timeout: 5_000 })
      .then(() => true, () => false);
    if (!ok) problems.push(`no ${kind} occurrence of ${text} in ${rgb}`);
  };
  const go = async (hash) => { await page.evaluate((h) => { location.hash = h; }, hash); };

  // Sign in straight into a shared calendar link.
  await page.goto(`${BASE}/ops#/calendar`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#screen-calendar:not([hidden]) .fc-daygrid-body").waitFor({ timeout: 10_000 });
  await page.locator("#calendar .fc-event").first().waitFor({ timeout: 10_000 }).catch(() => {});

  // 1. A schedule through the form, in the scheduled colour.
  const berlinDay = new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Berlin", year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date(Date.now() + 2 * DAY));
  await page.getByRole("button", { name: "New schedule" }).click();
  const dialog = page.locator("#schedule-dialog");
  await dialog.getByLabel("Title", { exact: true }).fill("Boiler service");
  await dialog.getByLabel("Property", { exact: true }).selectOption(harbour.id);
  await dialog.getByLabel("Skill", { exact: true }).selectOption("plumbing");
  await dialog.getByLabel("Time zone", { exact: true }).fill("Europe/Berlin");
  await dialog.getByLabel("Starts (in the schedule's time zone)").fill(`${berlinDay}T09:00`);
  await dialog.getByLabel("Repeat every").fill("1");
  await dialog.getByLabel("Unit").selectOption("month");
  await shot("schedule-form");
  await axe("schedule form");
  await dialog.getByRole("button", { name: "Create schedule" }).click();
  await dialog.waitFor({ state: "hidden", timeout: 5_000 });
  const created = page.locator('#calendar .fc-event[data-kind="scheduled"]', { hasText: "Boiler service" }).first();
  await created.waitFor({ timeout: 5_000 });
  await colourOf("scheduled", "Boiler service", "rgb(31, 95, 153)");
  if (!/09:00 Europe\/Berlin/.test(await created.getAttribute("title"))) problems.push(`no Berlin time in ${await created.getAttribute("title")}`);
  await shot("calendar-month-scheduled");
  // The overdue one, by a shared link to its month.
  await go(`#/calendar?date=${overdue.next_due_at.slice(0, 10)}&view=dayGridMonth`);
  const late = page.locator('#calendar .fc-event[data-kind="overdue"]', { hasText: "Gutter clearing" });
  await late.waitFor({ timeout: 5_000 });
  await colourOf("overdue", "Gutter clearing", "rgb(179, 38, 30)");
  await axe("calendar month");
  await late.click();
  await dialog.locator("dd", { hasText: "overdue" }).first().waitFor({ timeout: 5_000 });
  await shot("schedule-opened");
  // Pause and resume it from the dialog.
  await dialog.getByRole("button", { name: "Pause schedule" }).click();
  await dialog.getByRole("button", { name: "Resume schedule" }).waitFor({ timeout: 5_000 });
  await dialog.locator("dd", { hasText: "paused" }).first().waitFor({ timeout: 5_000 });
  await dialog.getByRole("button", { name: "Resume schedule" }).click();
  await dialog.getByRole("button", { name: "Pause schedule" }).waitFor({ timeout: 5_000 });
  await dialog.getByRole("button", { name: "Close" }).click();
  await page.getByRole("button", { name: "List" }).click();
  await page.locator("#calendar .fc-list-event").first().waitFor({ timeout: 5_000 });
  await shot("calendar-list");
  await axe("calendar list");
  await page.getByRole("button", { name: "Week" }).click();
  await page.locator("#calendar .fc-timegrid").waitFor({ timeout: 5_000 });
  await axe("calendar week");
  // The tablet pass.
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.getByRole("button", { name: "Month" }).click();
  await page.locator("#calendar .fc-daygrid-body").waitFor();
  await shot("calendar-tablet");
  await axe("calendar at tablet size");
  await page.setViewportSize({ width: 1280, height: 800 });

  // 5. A server validation error beside its field.
  await page.getByRole("button", { name: "New schedule" }).click();
  await dialog.getByLabel("Title", { exact: true }).fill("Bad zone");
  await dialog.getByLabel("Property", { exact: true }).selectOption(harbour.id);
  await dialog.getByLabel("Skill", { exact: true }).selectOption("plumbing");
  await dialog.getByLabel("Time zone", { exact: true }).fill("Mars/Olympus_Mons");
  await dialog.getByLabel("Starts (in the schedule's time zone)").fill(`${berlinDay}T09:00`);
  allowed = [[400, "/v1/schedules"]];
  await dialog.getByRole("button", { name: "Create schedule" }).click();
  const zoneError = page.locator("#schedule-form-timezone-error");
  await zoneError.filter({ hasText: /timezone/ }).waitFor({ timeout: 5_000 });
  if ((await page.locator("#schedule-form-timezone").getAttribute("aria-invalid")) !== "true") problems.push("time zone not marked invalid");
  await shot("validation-error-beside-field");
  await axe("schedule form with an error");
  allowed = [];
  await dialog.getByRole("button", { name: "Close" }).click();

  // 2. A log over the API: in the table, notes and photo; in the CSV.
  const log = await call("POST", "/v1/logs", { schedule_id: overdue.id, notes: "Cleared both gutters.\nDownpipe cracked: =replace soon", issues_found: "minor", attachments: [photo.id] });
  const otherLog = await call("POST", "/v1/logs", { schedule_id: hillSchedule.id, notes: "Alarm ok", issues_found: "none" });
  await go(`#/logs?property=${encodeURIComponent(harbour.id)}`);
  const row = page.locator(`#logs tr[data-log="${log.id}"]`);
  await row.waitFor({ timeout: 5_000 });
  if (await page.locator(`#logs tr[data-log="${otherLog.id}"]`).count()) problems.push("the property filter let another property's log through");
  await row.getByRole("button", { name: `Show notes and photos of log ${log.id}` }).click();
  const img = page.locator(`#log-detail-${log.id} img`);
  await img.waitFor({ timeout: 5_000 });
  if (!(await img.getAttribute("src")).startsWith("blob:")) problems.push("photo not from a blob: URL");
  await page.waitForFunction((id) => { const i = document.querySelector(`#log-detail-${id} img`); return i && i.complete && i.naturalWidth === 2; }, log.id, { timeout: 5_000 });
  await shot("logs-expanded");
  await axe("logs");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  const csv = parseCsv(readFileSync(await download.path(), "utf8"));
  const ids = csv.slice(1).map((r) => r[0]);
  if (csv[0][0] !== "id" || ids.length !== 1 || ids[0] !== log.id) problems.push(`CSV rows ${JSON.stringify(ids)}, wanted [${log.id}]`);
  const notesCol = csv[0].indexOf("notes");
  if (!csv[1] || !csv[1][notesCol].includes("Downpipe cracked")) problems.push("CSV notes missing");
  await page.locator("#logs-status", { hasText: "Exported 1 row" }).waitFor({ timeout: 5_000 });
  await shot("logs-exported");

  // 3. Stock: a part, received, a rule, a movement below it, the task's steps.
  await go("#/stock");
  await page.locator("#parts-panel summary", { hasText: "New part" }).click();
  const pf = page.locator("#part-form");
  await pf.getByLabel("SKU").fill("VALVE-15");
  await pf.getByLabel("Name", { exact: true }).fill("15 mm ball valve");
  await pf.getByLabel("Fits (models, comma-separated)").fill("combi-24, combi-30");
  await pf.getByLabel("Unit cost ($)").fill("7.25");
  await pf.getByLabel("Reorder point").fill("1");
  await pf.getByLabel("Reorder quantity").fill("5");
  await pf.getByRole("button", { name: "Add part" }).click();
  await page.locator("#part-form-status", { hasText: "VALVE-15 added" }).waitFor({ timeout: 5_000 });
  const parts = (await call("GET", "/v1/parts?q=VALVE-15")).parts;
  const part = parts[0];
  const mv = page.locator("#movement-form");
  await mv.getByLabel("Part").selectOption(part.id);
  await mv.getByLabel("Kind").selectOption("receive");
  await mv.getByLabel("To (location)").fill("depot:main");
  await mv.getByLabel("Quantity").fill("8");
  await mv.getByRole("button", { name: "Post movement" }).click();
  await page.locator("#movement-form-status", { hasText: "receive 8" }).waitFor({ timeout: 5_000 });
  const rule = page.locator("#rule-form");
  await rule.getByLabel("Part").selectOption(part.id);
  await rule.getByLabel("Location").fill("depot:main");
  await rule.getByLabel("Reorder point").fill("4");
  await rule.getByLabel("Reorder quantity").fill("6");
  await rule.getByRole("button", { name: "Save rule" }).click();
  await page.locator("#rule-form-status", { hasText: "Rule saved" }).waitFor({ timeout: 5_000 });
  await mv.getByLabel("Kind").selectOption("consume");
  await mv.getByLabel("From (location)").fill("depot:main");
  await mv.getByLabel("Quantity").fill("5");
  await mv.getByRole("button", { name: "Post movement" }).click();
  await page.locator("#movement-form-status", { hasText: "consume 5" }).waitFor({ timeout: 5_000 });
  const task = page.locator('#tasks tr[data-status="open"]').first();
  await task.waitFor({ timeout: 5_000 });
  const taskId = await task.getAttribute("data-task");
  await page.locator(`#balances tr`, { hasText: "depot:main" }).locator(".low").waitFor({ timeout: 5_000 });
  await shot("reorder-task-open");
  await page.locator(`#tasks button[data-task="${taskId}"][data-step="ordered"]`).click();
  await page.locator(`#tasks tr[data-task="${taskId}"][data-status="ordered"]`).waitFor({ timeout: 5_000 });
  await page.locator(`#tasks button[data-task="${taskId}"][data-step="received"]`).click();
  await page.locator(`#tasks tr[data-task="${taskId}"][data-status="received"]`).waitFor({ timeout: 5_000 });
  const bal = (await call("GET", `/v1/stock?part_id=${part.id}&location=depot:main`)).balances[0];
  if (bal.available !== 3 + 6) problems.push(`after receiving the task: available ${bal.available}, wanted 9`);
  await page.locator("#movements tr", { hasText: "receive" }).first().waitFor();

  // 4. The analytics chart.
  await page.locator("#parts-chart canvas").waitFor({ timeout: 5_000 });
  await page.locator("#analytics tr", { hasText: "VALVE-15" }).waitFor({ timeout: 5_000 });
  await page.locator("#analytics-panel").scrollIntoViewIfNeeded();
  await shot("stock-received-and-chart");
  await axe("parts and stock");
  // The same screen at tablet size (its shot numbered with this step's, so the later ones keep theirs).
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.screenshot({ path: `${SHOTS}/${String(step).padStart(2, "0")}b-stock-tablet.png`, fullPage: true });
  await axe("parts and stock at tablet size");
  await page.setViewportSize({ width: 1280, height: 800 });

  // 4. A webhook: the secret once; deliveries.
  await go("#/webhooks");
  const wf = page.locator("#webhook-form");
  await wf.getByLabel("Endpoint URL").fill(`http://127.0.0.1:${hookPort}/hooks`);
  await wf.getByRole("button", { name: "Register webhook" }).click();
  const secret = page.locator("#webhook-secret-value");
  await secret.waitFor({ timeout: 5_000 });
  const secretValue = await secret.inputValue();
  if (!/^whsec_[A-Za-z0-9+/=]+$/.test(secretValue)) problems.push(`secret ${secretValue}`);
  await page.getByRole("button", { name: "Copy secret" }).click();
  await page.locator("#webhook-secret", { hasText: "Copied." }).waitFor({ timeout: 5_000 });
  const copied = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  if (copied !== null && copied !== secretValue) problems.push("the copy button did not copy the secret");
  await shot("webhook-secret-once");
  await axe("webhooks");
  await page.getByRole("button", { name: "I have stored it" }).click();
  await page.reload();
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#webhooks tr", { hasText: `127.0.0.1:${hookPort}` }).waitFor({ timeout: 10_000 });
  if ((await page.content()).includes(secretValue)) problems.push("the secret is shown again");
  // An event after registering: a resident's job.
  await call("POST", "/v1/jobs", { lat: 52.52, lng: 13.4, skill: "plumbing", description: "dripping tap" }, server.token(owner.id, "resident"));
  const deadlineDl = Date.now() + 15_000;
  for (;;) {
    await page.getByRole("button", { name: "Refresh" }).click();
    if (await page.locator("#deliveries-list td", { hasText: "delivered" }).count()) break;
    if (Date.now() > deadlineDl) { problems.push("no delivered delivery within 15 s"); break; }
    await page.waitForTimeout(500);
  }
  if (!hooks.length) problems.push("the receiver got no webhook");
  await shot("webhook-deliveries");

  // 4. Teach triage an example.
  await go("#/triage");
  const teach = page.locator("#triage-teach");
  await teach.getByLabel("Description").fill("the garden gate hinge squeaks and the latch sticks");
  await teach.getByLabel("Skill").selectOption("carpentry");
  await teach.getByLabel("Urgency").selectOption("low");
  await teach.getByRole("button", { name: "Teach this example" }).click();
  await page.locator("#triage-teach-status", { hasText: "Example taught" }).waitFor({ timeout: 5_000 });
  const tr = page.locator("#triage-try");
  await tr.getByLabel("Description").fill("garden gate latch sticks");
  await tr.getByRole("button", { name: "Triage it" }).click();
  await page.locator("#triage-table").waitFor({ timeout: 5_000 });
  await shot("triage-taught");
  await axe("triage");

  // The live map still works beside them.
  await go("#/map");
  await page.locator("#screen-map:not([hidden]) #map").waitFor();
  await axe("map");
  await shot("map");
} catch (e) {
  problems.push(`step ${step + 1}: ${e.stack || e.message}`);
} finally {
  await browser.close();
  await server.stop();
  receiver.close();
  clearTimeout(deadline);
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`ok: ${step} steps, screenshots in ${SHOTS}`);
