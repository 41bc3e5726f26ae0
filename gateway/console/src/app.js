// The ops console (GET /ops): sign-in, the live map from the ops `watch`
// WebSocket, and the panels an operator acts on. The token lives in this
// module's memory only (no cookie, no storage): a reload signs out.
import L from "leaflet";
import { feature } from "topojson-client";
import land from "world-atlas/land-50m.json";
import { Fleet, COLOURS, WORKER_STATES, OPEN_STATUSES, age, money, jobIdFrom } from "./state.js";
import { startCoordinator, stopCoordinator } from "./coord/index.ts";

const $ = (s) => document.querySelector(s);
const PANEL_REFRESH_MS = 10_000;
// Map changes are applied in batches at most this often: a fleet of
// 10 000 moving every second redraws five times a second, not per message.
const PAINT_EVERY_MS = 200;
let lastPaint = 0;

let token = null;
let socket = null;
let reconnectTimer = null;
let panelTimer = null;
let fleet = new Fleet();
let map = null;
let renderer = null;
let fitted = false;
const workerMarkers = new Map();
const jobMarkers = new Map();
let analyticsById = new Map();

// ---------------------------------------------------------------- HTTP

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && token) {
    signOut("Your session ended; sign in again.");
    throw new Error("signed out");
  }
  const text = await r.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { v = null; }
  if (!r.ok) throw new Error((v && v.error && v.error.message) || `${r.status} ${r.statusText}`);
  return v;
}

// ------------------------------------------------------------- sign-in

$("#signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("#signin-error");
  err.textContent = "";
  try {
    const r = await fetch("/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: $("#email").value, password: $("#password").value }),
    });
    const v = await r.json().catch(() => null);
    if (!r.ok) throw new Error((v && v.error && v.error.message) || "sign-in failed");
    if (!v.user || v.user.role !== "ops") throw new Error("this console is for ops accounts");
    token = v.token;
    $("#password").value = "";
    start();
  } catch (x) {
    err.textContent = x.message;
  }
});

$("#signout").addEventListener("click", () => signOut(""));

function signOut(message) {
  token = null;
  stopCoordinator();
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  clearTimeout(reconnectTimer);
  clearInterval(panelTimer);
  $("#console").classList.add("hidden");
  $("#signin").classList.remove("hidden");
  $("#signin-error").textContent = message;
  $("#email").focus();
}

function start() {
  $("#signin").classList.add("hidden");
  $("#console").classList.remove("hidden");
  fleet = new Fleet();
  if (!map) initMap();
  for (const m of workerMarkers.values()) m.remove();
  for (const m of jobMarkers.values()) m.remove();
  workerMarkers.clear();
  jobMarkers.clear();
  fitted = false;
  map.invalidateSize();
  connect();
  loadOpenJobs();
  refreshPanels();
  panelTimer = setInterval(refreshPanels, PANEL_REFRESH_MS);
  startCoordinator(token, {
    onUnauthorized: () => signOut("Your session ended; sign in again."),
    onShowMap: () => map && map.invalidateSize(),
  });
}

// ----------------------------------------------------------------- map

function initMap() {
  map = L.map("map", { worldCopyJump: true, minZoom: 2, zoomSnap: 0.5, keyboard: true });
  renderer = L.canvas({ padding: 0.5 });
  // The land under everything else (there are no tiles offline).
  map.createPane("land").style.zIndex = "250";
  L.geoJSON(feature(land, land.objects.land), {
    pane: "land",
    style: { color: "#7a8b99", weight: 1, fillColor: "#ffffff", fillOpacity: 1 },
    interactive: false,
  }).addTo(map);
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution("Land outline: Natural Earth");
  map.setView([30, 0], 2);
  const legend = $("#legend");
  for (const s of [...WORKER_STATES, "searching", "accepted"]) {
    const span = document.createElement("span");
    span.style.setProperty("--c", COLOURS[s]);
    span.dataset.state = s;
    span.textContent = s === "searching" ? "job searching" : s === "accepted" ? "job in progress" : s;
    legend.append(span);
  }
  requestAnimationFrame(paint);
}

function workerStyle(state) {
  return { renderer, radius: 5, weight: 1, color: "#222", fillColor: COLOURS[state] || "#999", fillOpacity: 0.9 };
}

function jobStyle(status) {
  return { renderer, radius: 8, weight: 3, color: COLOURS[status] || "#d73027", fill: false };
}

/** Applies what changed since the last batch, in one go. */
function paint(now) {
  requestAnimationFrame(paint);
  if (now - lastPaint < PAINT_EVERY_MS) return;
  lastPaint = now;
  const dirty = fleet.takeDirty();
  if (dirty.workers.length === 0 && dirty.jobs.length === 0) return;
  for (const id of dirty.workers) {
    const w = fleet.workers.get(id);
    let m = workerMarkers.get(id);
    if (!w || typeof w.lat !== "number") {
      if (m) { m.remove(); workerMarkers.delete(id); }
      continue;
    }
    if (!m) {
      m = L.circleMarker([w.lat, w.lng], workerStyle(w.state)).addTo(map);
      m.on("click", () => showWorker(id));
      m.drawn = w.state;
      workerMarkers.set(id, m);
    } else {
      const at = m.getLatLng();
      if (at.lat !== w.lat || at.lng !== w.lng) m.setLatLng([w.lat, w.lng]);
      if (m.drawn !== w.state) {
        m.setStyle(workerStyle(w.state));
        m.drawn = w.state;
      }
    }
  }
  for (const id of dirty.jobs) {
    const j = fleet.jobs.get(id);
    let m = jobMarkers.get(id);
    if (!j) {
      if (m) { m.remove(); jobMarkers.delete(id); }
      continue;
    }
    if (!m) {
      m = L.circleMarker([j.lat, j.lng], jobStyle(j.status)).addTo(map);
      m.on("click", () => showJob(id));
      jobMarkers.set(id, m);
    } else {
      m.setStyle(jobStyle(j.status));
    }
  }
  const el = $("#map");
  el.dataset.workers = String(workerMarkers.size);
  el.dataset.jobs = String(jobMarkers.size);
  const counts = fleet.counts();
  for (const span of document.querySelectorAll("#legend span")) {
    const s = span.dataset.state;
    if (s in counts) span.textContent = `${s} ${counts[s]}`;
  }
  if (!fitted && (workerMarkers.size || jobMarkers.size)) {
    const pts = [...workerMarkers.values(), ...jobMarkers.values()].map((m) => m.getLatLng());
    map.fitBounds(L.latLngBounds(pts).pad(0.2), { maxZoom: 14 });
    fitted = true;
  }
}

// ------------------------------------------------------------ the socket

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/v1/ws?token=${encodeURIComponent(token)}`);
  socket = ws;
  ws.onopen = () => {
    $("#live").textContent = "live";
    ws.send(JSON.stringify({ type: "watch", topics: ["fleet", "jobs"], req_id: "watch" }));
  };
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    if (m.type === "fleet") {
      fleet.applyFleet(m, m.full === true);
    } else if (m.type === "job" && m.job) {
      fleet.applyJob(m.job);
      if (m.job.status === "unmatched") refreshDeadLetters();
    } else if (m.type === "error") {
      $("#live").textContent = `error: ${m.error && m.error.message}`;
    }
  };
  ws.onclose = () => {
    if (socket !== ws || !token) return;
    $("#live").textContent = "reconnecting…";
    reconnectTimer = setTimeout(() => { if (token) { connect(); loadOpenJobs(); } }, 2000);
  };
}

async function loadOpenJobs() {
  for (const status of OPEN_STATUSES) {
    try {
      const v = await api("GET", `/v1/jobs?status=${status}&limit=500`);
      for (const j of v.jobs) fleet.applyJob(j);
    } catch { /* shown by the socket state */ }
  }
}

// -------------------------------------------------------------- details

function detail(title, rows, extra) {
  const box = $("#details");
  box.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = title;
  box.append(h, table(["", ""], rows, true));
  if (extra) box.append(extra);
}

function showWorker(id) {
  const w = fleet.workers.get(id);
  if (!w) return;
  const job = [...fleet.jobs.values()].find((j) => j.worker_id === id);
  const a = analyticsById.get(id);
  const rows = [
    ["id", id], ["state", w.state], ["position", `${w.lat.toFixed(5)}, ${w.lng.toFixed(5)}`],
    ["job", job ? `${job.id} (${job.status})` : "none"],
  ];
  if (a) {
    rows.push(["offered / accepted (7 d)", `${a.offered} / ${a.accepted}`],
      ["completed (7 d)", String(a.completed)], ["mean stars", a.mean_stars == null ? "–" : a.mean_stars.toFixed(2)],
      ["revenue (7 d)", money(a.revenue_cents)]);
  }
  detail(`Worker ${id}`, rows);
}

async function showJob(id) {
  try {
    const j = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
    fleet.applyJob(j);
    const now = Date.now();
    const stamp = (t) => (t ? `${t} (${age(t, now)})` : "–");
    const rows = [
      ["status", j.status], ["skill", j.skill], ["urgency", j.urgency || "normal"],
      ["description", j.description || ""], ["resident", j.resident_id], ["worker", j.worker_id || "–"],
      ["attempts", String(j.attempts)], ["created", stamp(j.created_at)], ["offered", stamp(j.offered_at)],
      ["accepted", stamp(j.accepted_at)], ["arrived", stamp(j.arrived_at)], ["completed", stamp(j.completed_at)],
      ["fare", j.fare_cents == null ? "–" : money(j.fare_cents)],
    ];
    let extra = null;
    if (j.status === "unmatched") extra = retryButton(j.id, "Retry", () => retryJob(j.id));
    detail(`Job ${j.id}`, rows, extra);
    if (typeof j.lat === "number") map.setView([j.lat, j.lng], Math.max(map.getZoom(), 13));
  } catch (x) {
    detail("Job not found", [["id", id], ["error", x.message]]);
  }
}

// A worker's id shows the worker (and centres the map on it), else a job.
$("#search").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = jobIdFrom($("#job-id").value);
  if (!id) return;
  const w = fleet.workers.get(id);
  if (w) {
    showWorker(id);
    map.setView([w.lat, w.lng], Math.max(map.getZoom(), 13));
  } else {
    showJob(id);
  }
});

// --------------------------------------------------------------- panels

function table(head, rows, noHead) {
  const t = document.createElement("table");
  if (!noHead) {
    const tr = document.createElement("tr");
    for (const h of head) { const th = document.createElement("th"); th.textContent = h; th.scope = "col"; tr.append(th); }
    t.append(tr);
  }
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const c of r) {
      const td = document.createElement("td");
      if (c instanceof Node) td.append(c); else td.textContent = c == null ? "" : String(c);
      tr.append(td);
    }
    t.append(tr);
  }
  return t;
}

function panel(id, head, rows) {
  const s = $(`#${id}`);
  s.querySelector(".n").textContent = String(rows.length);
  const body = s.querySelector("div");
  if (rows.length === 0) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "none";
    body.replaceChildren(p);
  } else {
    body.replaceChildren(table(head, rows));
  }
}

function retryButton(id, label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.id = id;
  b.setAttribute("aria-label", `${label} ${id}`);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await action(); } catch (x) { b.disabled = false; b.textContent = `${label} (${x.message})`; }
  });
  return b;
}

async function retryJob(id) {
  const j = await api("POST", `/v1/ops/unmatched/${encodeURIComponent(id)}/retry`, {});
  fleet.applyJob(j);
  await refreshDeadLetters();
}

async function refreshDeadLetters() {
  const v = await api("GET", "/v1/ops/unmatched?limit=100");
  const now = Date.now();
  panel("dead", ["job", "skill", "unmatched", ""], v.jobs.map((j) => [
    jobLink(j.id), j.skill, age(j.unmatched_at || j.created_at, now), retryButton(j.id, "Retry", () => retryJob(j.id)),
  ]));
}

function jobLink(id) {
  const a = document.createElement("a");
  a.href = "#";
  a.textContent = id;
  a.addEventListener("click", (e) => { e.preventDefault(); showJob(id); });
  return a;
}

async function refreshPanels() {
  if (!token) return;
  const now = Date.now();
  const tasks = [
    refreshDeadLetters(),
    Promise.all([api("GET", "/v1/schedules?status=overdue"), api("GET", "/v1/schedules?status=due")]).then(([o, d]) =>
      panel("maintenance", ["schedule", "property", "status", "due"], [...o.schedules, ...d.schedules].map((s) => [
        s.title, s.property_id, s.status, age(s.next_due_at, now)]))),
    api("GET", "/v1/stock?low=true").then((v) =>
      panel("stock", ["part", "location", "available", "reserved"], v.balances.map((b) => [
        b.part_id, b.location, b.available, b.reserved]))),
    api("GET", "/v1/ops/reorder/tasks?status=open").then((v) =>
      panel("reorder", ["part", "location", "qty", "opened"], v.tasks.map((t) => [
        t.part_id, t.location, t.qty, age(t.created_at, now)]))),
    api("GET", "/v1/ops/deliveries?status=failed").then((v) =>
      panel("deliveries", ["channel", "target", "error", ""], v.deliveries.map((d) => [
        d.channel, d.target, d.last_error || d.last_status || "",
        retryButton(d.id, "Retry", async () => {
          await api("POST", `/v1/ops/deliveries/${encodeURIComponent(d.id)}/retry`, {});
          await refreshPanels();
        })]))),
    api("GET", `/v1/ops/analytics/workers?from=${new Date(now - 7 * 86400e3).toISOString()}`).then((v) => {
      analyticsById = new Map(v.workers.map((w) => [w.id, w]));
      panel("analytics", ["worker", "done", "accept %", "stars"], v.workers.slice(0, 50).map((w) => [
        w.id, w.completed, w.acceptance_rate == null ? "–" : Math.round(w.acceptance_rate * 100),
        w.mean_stars == null ? "–" : w.mean_stars.toFixed(1)]));
    }),
  ];
  const results = await Promise.allSettled(tasks);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length && token) $("#live").textContent = `panels: ${failed[0].reason.message}`;
}

window.addEventListener("DOMContentLoaded", () => $("#email").focus());
