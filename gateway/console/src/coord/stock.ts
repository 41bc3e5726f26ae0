/**
 * Parts and stock: the catalogue and a new part, balances by location (low
 * stock marked), a stock movement, rules per location, reorder tasks with
 * their steps (ordered; received, optionally from a depot; cancel), the
 * movements ledger (filters in the hash, paged back by `to`) and the parts
 * analytics as a uPlot chart with the same numbers as a table.
 * @module
 */
import uPlot from "uplot";
import { unwrap, rest, parts, forget, query, type Part, type Schemas } from "./api";
import { Form, h, input, select, table, options, action } from "./dom";
import { MOVEMENT_FIELDS, centsOf, dollars, isLocation, nextPage, takePage, reorderSteps, routeHash, dayBound } from "./logic.js";
import { formatAt } from "./time.js";

type Movement = Schemas["MovementView"];
let params: Record<string, string> = {};
let movements: Movement[] = [];
let chart: uPlot | null = null;
const root = () => document.querySelector<HTMLElement>("#screen-stock")!;
const partLabel = (list: Part[], id: string) => { const p = list.find((x) => x.id === id); return p ? `${p.sku} ${p.name}` : id; };
const partOptions = (list: Part[], first = "Choose a part"): [string, string][] =>
  [["", first], ...list.map((p) => [p.id, `${p.sku} — ${p.name}`] as [string, string])];

export async function showStock(p: Record<string, string>): Promise<void> {
  params = p;
  const el = root();
  if (!el.firstChild) build(el);
  await refreshAll();
}

async function refreshAll(): Promise<void> {
  const list = await parts().catch(() => [] as Part[]);
  for (const sel of root().querySelectorAll<HTMLSelectElement>("select[data-parts]")) {
    const keep = sel.value || (sel.id === "mv-filter-part" ? params.part ?? "" : "");
    sel.replaceChildren(...options(partOptions(list, sel.dataset.parts), keep));
  }
  await Promise.allSettled([renderParts(list), renderBalances(list), renderTasks(list), loadMovements(true, list), renderAnalytics(list)]);
}

function panel(id: string, title: string, ...children: Node[]): HTMLElement {
  return h("section", { id, class: "panel", "aria-labelledby": `${id}-h` }, h("h3", { id: `${id}-h` }, title), ...children);
}

function build(el: HTMLElement): void {
  // New part.
  const np = new Form("part-form", null, "Add part");
  np.add("sku", "SKU", input("text", { required: true, autocomplete: "off" }));
  np.add("name", "Name", input("text", { required: true }));
  np.add("fits", "Fits (models, comma-separated)", input("text"));
  np.add("unit_cost_cents", "Unit cost ($)", input("text", { inputmode: "decimal", required: true, value: "0.00" }));
  np.add("supplier", "Supplier", input("text"));
  np.add("reorder_point", "Reorder point", input("number", { min: 0, step: 1, value: 0, required: true }));
  np.add("reorder_qty", "Reorder quantity", input("number", { min: 0, step: 1, value: 1, required: true }));
  np.onSubmit(async () => {
    const cents = centsOf(np.value("unit_cost_cents"));
    if (cents === null) { np.fieldError("unit_cost_cents", "unit_cost_cents: a price like 12.50"); return; }
    const p = await unwrap(rest().POST("/v1/parts", { body: {
      sku: np.value("sku"), name: np.value("name"), supplier: np.value("supplier"), unit_cost_cents: cents,
      fits: np.value("fits").split(",").map((x) => x.trim()).filter(Boolean),
      reorder_point: Number(np.value("reorder_point")), reorder_qty: Number(np.value("reorder_qty")) } }));
    forget("parts");
    np.el.reset();
    await refreshAll();
    return `Part ${p.sku} added.`;
  });
  const search = h("input", { id: "parts-q", type: "search", "aria-label": "Search parts by SKU or name" });
  search.addEventListener("input", async () => renderParts(await parts().catch(() => [] as Part[])));

  // Balances.
  const low = h("input", { id: "bal-low", type: "checkbox", checked: params.low === "true" });
  const loc = h("input", { id: "bal-location", type: "text", placeholder: "depot:main", value: params.location ?? "" });
  const balForm = h("form", { class: "toolbar", "aria-label": "Balance filters" },
    h("label", { for: "bal-location" }, "Location"), loc,
    h("span", { class: "check" }, low, h("label", { for: "bal-low" }, "Only low stock")), h("button", { type: "submit" }, "Show balances"));
  balForm.addEventListener("submit", (e) => { e.preventDefault(); setParams({ location: loc.value.trim(), low: low.checked ? "true" : "" }); });

  // A movement.
  const mv = new Form("movement-form", null, "Post movement");
  mv.add("part_id", "Part", select([], "", { required: true, "data-parts": "Choose a part" }));
  const kind = mv.add("kind", "Kind", select(Object.keys(MOVEMENT_FIELDS).map((k) => [k, k] as [string, string]), "receive"));
  const from = mv.add("from", "From (location)", input("text", { placeholder: "depot:main", list: "locations", autocomplete: "off" }));
  const to = mv.add("to", "To (location)", input("text", { placeholder: "van:worker-id", list: "locations", autocomplete: "off" }));
  mv.add("qty", "Quantity", input("number", { min: 1, step: 1, value: 1, required: true }));
  mv.add("note", "Note", input("text"));
  const syncKind = () => {
    const f = MOVEMENT_FIELDS[kind.value as keyof typeof MOVEMENT_FIELDS];
    mv.fields.get("from")!.wrap.classList.toggle("hidden", f.from === "no");
    mv.fields.get("to")!.wrap.classList.toggle("hidden", f.to === "no");
    from.required = f.from === "yes";
    to.required = f.to === "yes";
  };
  kind.addEventListener("change", syncKind);
  syncKind();
  mv.onSubmit(async () => {
    const f = MOVEMENT_FIELDS[kind.value as keyof typeof MOVEMENT_FIELDS];
    const body: Schemas["NewMovement"] = { part_id: mv.value("part_id"), kind: kind.value as "receive",
      qty: Number(mv.value("qty")), note: mv.value("note") };
    if (f.from !== "no" && from.value.trim()) body.from = from.value.trim();
    if (f.to !== "no" && to.value.trim()) body.to = to.value.trim();
    for (const k of ["from", "to"] as const) {
      if (body[k] && !isLocation(body[k]!)) { mv.fieldError(k, `${k}: a location is depot:<name> or van:<worker id>`); return; }
    }
    const m = await unwrap(rest().POST("/v1/stock/movements", { body }));
    await refreshAll();
    return `Movement posted: ${m.kind} ${m.qty}${m.from ? ` from ${m.from}` : ""}${m.to ? ` to ${m.to}` : ""}.`;
  });

  // Rules per location.
  const rule = new Form("rule-form", null, "Save rule");
  rule.add("part_id", "Part", select([], "", { required: true, "data-parts": "Choose a part" }));
  rule.add("location", "Location", input("text", { required: true, placeholder: "van:worker-id", list: "locations", autocomplete: "off" }));
  rule.add("reorder_point", "Reorder point", input("number", { min: 0, step: 1, required: true }));
  rule.add("reorder_qty", "Reorder quantity", input("number", { min: 0, step: 1, required: true }));
  rule.onSubmit(async () => {
    const r = await unwrap(rest().PUT("/v1/stock/rules", { body: { part_id: rule.value("part_id"), location: rule.value("location"),
      reorder_point: Number(rule.value("reorder_point")), reorder_qty: Number(rule.value("reorder_qty")) } }));
    await refreshAll();
    return `Rule saved: reorder at ${r.reorder_point}, ${r.reorder_qty} at a time, in ${r.location}.`;
  });

  // Reorder tasks.
  const ts = select([["", "all"], ["open", "open"], ["ordered", "ordered"], ["received", "received"], ["cancelled", "cancelled"]],
    params.tasks ?? "", { id: "tasks-status" });
  ts.addEventListener("change", () => setParams({ tasks: ts.value }));

  // Movements ledger.
  const mf = h("form", { id: "mv-filters", class: "toolbar", role: "search", "aria-label": "Movement filters" },
    h("label", { for: "mv-filter-part" }, "Part"), h("select", { id: "mv-filter-part", name: "part", "data-parts": "All parts" }),
    h("label", { for: "mv-filter-location" }, "Location"), h("input", { id: "mv-filter-location", name: "location", value: params.location ?? "", list: "locations" }),
    h("label", { for: "mv-filter-from" }, "From"), h("input", { id: "mv-filter-from", name: "mfrom", type: "date", value: params.mfrom ?? "" }),
    h("label", { for: "mv-filter-to" }, "To"), h("input", { id: "mv-filter-to", name: "mto", type: "date", value: params.mto ?? "" }),
    h("button", { type: "submit" }, "Show movements"));
  mf.addEventListener("submit", (e) => {
    e.preventDefault();
    const next: Record<string, string> = {};
    for (const [k, v] of new FormData(mf)) next[k] = String(v);
    setParams(next);
  });

  // Analytics.
  const days = select([["7", "last 7 days"], ["30", "last 30 days"], ["90", "last 90 days"]], params.days ?? "30", { id: "an-days" });
  days.addEventListener("change", () => setParams({ days: days.value }));
  const chartBox = h("div", { id: "parts-chart", role: "img", "aria-label": "Chart: parts consumed (bars) and days of cover (points) by part" });
  // The chart follows its box's width (a narrower window, a tablet turned), so it never overflows it.
  new ResizeObserver(() => {
    if (!chartBox.clientWidth) return; // the screen hidden
    const w = chartWidth(chartBox);
    if (chart && chart.width !== w) chart.setSize({ width: w, height: CHART_HEIGHT });
  }).observe(chartBox);

  el.append(h("h2", {}, "Parts and stock"), h("datalist", { id: "locations" }),
    h("div", { class: "panels stock-panels" },
      panel("parts-panel", "Catalogue", h("div", { class: "toolbar" }, search), h("div", { id: "parts-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "parts table" }),
        h("details", {}, h("summary", {}, "New part"), np.el)),
      panel("balances-panel", "Balances by location", balForm, h("div", { id: "balances-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "balances table" })),
      panel("movement-panel", "Stock movement", mv.el),
      panel("rules-panel", "Reorder rule for one location", rule.el),
      panel("tasks-panel", "Reorder tasks", h("div", { class: "toolbar" }, h("label", { for: "tasks-status" }, "Status"), ts),
        h("p", { id: "tasks-status-line", class: "status", role: "status" }), h("div", { id: "tasks-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "tasks table" })),
      panel("analytics-panel", "Parts analytics", h("div", { class: "toolbar" }, h("label", { for: "an-days" }, "Period"), days),
        chartBox,
        h("div", { id: "analytics-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "analytics table" })),
      panel("movements-panel", "Movements", mf, h("div", { id: "movements-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "movements table" }),
        h("button", { type: "button", id: "movements-more", class: "hidden", onclick: () => loadMovements(false) }, "Load older movements"))));
}

function setParams(next: Record<string, string>): void {
  location.hash = routeHash("stock", { ...params, ...next });
}

async function renderParts(list: Part[]): Promise<void> {
  const q = (root().querySelector<HTMLInputElement>("#parts-q")?.value ?? "").toLowerCase();
  const shown = list.filter((p) => !q || p.sku.toLowerCase().includes(q) || p.name.toLowerCase().includes(q));
  root().querySelector("#parts-table")!.replaceChildren(shown.length
    ? table("Parts", ["SKU", "Name", "Fits", "Unit cost", "Supplier", "Reorder at", "Reorder qty"],
      shown.map((p) => [p.sku, p.name, p.fits.join(", "), dollars(p.unit_cost_cents), p.supplier, p.reorder_point, p.reorder_qty]))
    : h("p", { class: "empty" }, "No parts."));
}

async function renderBalances(list: Part[]): Promise<void> {
  const v = await unwrap(rest().GET("/v1/stock", { params: { query: query({ location: params.location, low: params.low, limit: "500" }) } }));
  const lowIds = new Set((await unwrap(rest().GET("/v1/stock", { params: { query: { low: "true", limit: "500" } } }))).balances.map((b) => `${b.part_id}|${b.location}`));
  const locs = new Set(v.balances.map((b) => b.location));
  root().querySelector("#locations")!.replaceChildren(...[...locs].map((l) => h("option", { value: l })));
  root().querySelector("#balances-table")!.replaceChildren(v.balances.length
    ? table("Balances", ["Part", "Location", "On hand", "Reserved", "Available", ""], v.balances.map((b) => {
      const isLow = lowIds.has(`${b.part_id}|${b.location}`);
      return [partLabel(list, b.part_id), b.location, b.on_hand, b.reserved, b.available, isLow ? h("span", { class: "low" }, "low") : ""];
    }), { id: "balances" })
    : h("p", { class: "empty" }, "No stock here."));
}

async function renderTasks(list: Part[]): Promise<void> {
  const status = params.tasks || undefined;
  const v = await unwrap(rest().GET("/v1/ops/reorder/tasks", { params: { query: query({ status, limit: "500" }) } }));
  const out = root().querySelector<HTMLElement>("#tasks-status-line")!;
  const rows = v.tasks.map((t) => {
    const steps = reorderSteps(t.status);
    const depot = h("input", { type: "text", class: "depot", list: "locations", placeholder: "depot:main",
      "aria-label": `Fill task ${t.id} from a depot (optional)` });
    const buttons = steps.map((s) => action(
      s === "ordered" ? "Mark ordered" : s === "received" ? "Mark received" : "Cancel task",
      async () => {
        out.classList.remove("error");
        const fromDepot = s === "received" ? depot.value.trim() : "";
        if (fromDepot && !isLocation(fromDepot)) throw new Error("from: a location is depot:<name>");
        await unwrap(rest().POST("/v1/ops/reorder/tasks/{id}/{step}", {
          params: { path: { id: t.id, step: s } }, body: fromDepot ? { from: fromDepot } : {} }));
        out.textContent = `Task ${t.id} ${s === "cancel" ? "cancelled" : s}.`;
        await refreshAll();
      }, { "data-task": t.id, "data-step": s, "aria-label": `${s === "ordered" ? "Mark ordered" : s === "received" ? "Mark received" : "Cancel task"}: ${partLabel(list, t.part_id)} in ${t.location}` }, out));
    return [partLabel(list, t.part_id), t.location, t.qty, h("span", { class: `task task-${t.status}` }, t.status), formatAt(Date.parse(t.updated_at)),
      steps.includes("received") ? depot : "", h("span", { class: "buttons" }, buttons)];
  });
  root().querySelector("#tasks-table")!.replaceChildren(rows.length
    ? table("Reorder tasks", ["Part", "Location", "Qty", "Status", "Updated", "From a depot", "Steps"], rows, {
      id: "tasks", rowAttrs: (i) => ({ "data-task": v.tasks[i].id, "data-status": v.tasks[i].status }) })
    : h("p", { class: "empty" }, "No reorder tasks."));
}

function mvFilters(): { part_id?: string; location?: string; from?: string; to?: string } {
  return query({ part_id: params.part, location: params.location, from: dayBound(params.mfrom), to: dayBound(params.mto, true) });
}

async function loadMovements(reset: boolean, given?: Part[]): Promise<void> {
  const list = given ?? await parts().catch(() => [] as Part[]);
  const size = 50;
  let more: boolean;
  if (reset) {
    const v = await unwrap(rest().GET("/v1/stock/movements", { params: { query: { ...mvFilters(), limit: String(size) } } }));
    movements = v.movements;
    more = v.movements.length >= size;
  } else {
    const page = nextPage(movements, (m) => m.at, (m) => m.id, size);
    if (!page) return;
    const v = await unwrap(rest().GET("/v1/stock/movements", { params: { query: { ...mvFilters(), to: page.to, limit: String(page.limit) } } }));
    const got = takePage(v.movements, page, (m) => m.id);
    movements = movements.concat(got.rows);
    more = got.more && got.rows.length > 0;
  }
  root().querySelector("#movements-table")!.replaceChildren(movements.length
    ? table("Stock movements, newest first", ["At", "Part", "Kind", "Qty", "From", "To", "By", "Note"],
      movements.map((m) => [formatAt(Date.parse(m.at)), partLabel(list, m.part_id), m.kind, m.qty, m.from ?? "", m.to ?? "", m.by, m.note]),
      { id: "movements" })
    : h("p", { class: "empty" }, "No movements match."));
  root().querySelector("#movements-more")!.classList.toggle("hidden", !more);
}

const CHART_HEIGHT = 240;
const chartWidth = (box: HTMLElement): number => Math.max(280, Math.min(900, box.clientWidth || root().clientWidth - 48));

async function renderAnalytics(list: Part[]): Promise<void> {
  const days = Number(params.days) || 30;
  const now = Date.now();
  const v = await unwrap(rest().GET("/v1/ops/analytics/parts", { params: { query: {
    from: new Date(now - days * 86400e3).toISOString(), to: new Date(now).toISOString() } } }));
  const stats = v.parts.slice(0, 40);
  const box = root().querySelector<HTMLElement>("#parts-chart")!;
  chart?.destroy();
  chart = null;
  box.replaceChildren();
  root().querySelector("#analytics-table")!.replaceChildren(stats.length
    ? table("Parts analytics", ["Part", "Consumed", "Cost consumed", "Stock-outs", "On hand", "Value on hand", "Days of cover"],
      stats.map((s) => [`${s.sku} ${partLabel(list, s.part_id).replace(/^\S+ /, "")}`, s.consumed, dollars(s.consumed_cost_cents), s.stockouts, s.on_hand,
        dollars(s.value_on_hand_cents), s.days_of_cover == null ? "–" : s.days_of_cover.toFixed(1)]), { id: "analytics" })
    : h("p", { class: "empty" }, "No parts yet."));
  if (stats.length === 0) return;
  const xs = stats.map((_, i) => i);
  chart = new uPlot({
    width: chartWidth(box), height: CHART_HEIGHT,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false, range: [-0.5, stats.length - 0.5] }, units: {}, days: {} },
    axes: [
      { values: (_u, splits) => splits.map((i) => (Number.isInteger(i) ? stats[i]?.sku ?? "" : "")), incrs: [1] },
      { scale: "units", label: "consumed" },
      { scale: "days", side: 1, label: "days of cover", grid: { show: false } },
    ],
    series: [
      { label: "part", value: (_u, i) => (i == null ? "" : stats[i]?.sku ?? "") },
      { label: "consumed", scale: "units", fill: "#1f5f99", stroke: "#1f5f99", paths: uPlot.paths.bars!({ size: [0.6, 48] }), points: { show: false } },
      { label: "days of cover", scale: "days", stroke: "#8a4b00", width: 0, points: { show: true, size: 9, fill: "#8a4b00" } },
    ],
  }, [xs, stats.map((s) => s.consumed), stats.map((s) => s.days_of_cover ?? null)], box);
  box.dataset.parts = String(stats.length);
}
