/**
 * The maintenance log table: filters in the hash (`#/logs?property=…`),
 * pages of `limit` rows walked back by `to` (the API's only cursor),
 * notes and photos in an expandable row (photos fetched with the token,
 * shown from blob: URLs), and a CSV export of exactly the filtered rows
 * from the server's own CSV (same filters, every page).
 * @module
 */
import { unwrap, rest, raw, properties, schedules, query, type Log, type Property, type Schedule } from "./api";
import { h, options, messageOf } from "./dom";
import { nextPage, takePage, routeHash, csvRecords, parseCsv, dayBound } from "./logic.js";
import { formatAt } from "./time.js";

let params: Record<string, string> = {};
let rows: Log[] = [];
let more = false;
let generation = 0;
const blobUrls: string[] = [];
const root = () => document.querySelector<HTMLElement>("#screen-logs")!;
const pageSize = () => Math.min(500, Math.max(1, Number(params.limit) || 50));

/** The API's filters from the hash's. */
function filters(): { schedule_id?: string; property_id?: string; from?: string; to?: string } {
  return query({ schedule_id: params.schedule, property_id: params.property, from: dayBound(params.from), to: dayBound(params.to, true) });
}

export async function showLogs(p: Record<string, string>): Promise<void> {
  params = p;
  const el = root();
  if (!el.firstChild) build(el);
  const [props, scheds] = await Promise.all([properties().catch(() => [] as Property[]), schedules().catch(() => [] as Schedule[])]);
  el.querySelector<HTMLSelectElement>("#logs-property")!.replaceChildren(
    ...options([["", "All properties"], ...props.map((x) => [x.id, x.name] as [string, string])], p.property));
  el.querySelector<HTMLSelectElement>("#logs-schedule")!.replaceChildren(
    ...options([["", "All schedules"], ...scheds.map((x) => [x.id, x.title] as [string, string])], p.schedule));
  el.querySelector<HTMLInputElement>("#logs-from")!.value = p.from ?? "";
  el.querySelector<HTMLInputElement>("#logs-to")!.value = p.to ?? "";
  el.querySelector<HTMLSelectElement>("#logs-limit")!.value = String(pageSize());
  await load(true);
}

function build(el: HTMLElement): void {
  const form = h("form", { id: "logs-filters", class: "toolbar", role: "search", "aria-label": "Log filters" },
    h("label", { for: "logs-property" }, "Property"), h("select", { id: "logs-property", name: "property" }),
    h("label", { for: "logs-schedule" }, "Schedule"), h("select", { id: "logs-schedule", name: "schedule" }),
    h("label", { for: "logs-from" }, "From"), h("input", { id: "logs-from", name: "from", type: "date" }),
    h("label", { for: "logs-to" }, "To"), h("input", { id: "logs-to", name: "to", type: "date" }),
    h("label", { for: "logs-limit" }, "Rows per page"),
    h("select", { id: "logs-limit", name: "limit" }, options([["25", "25"], ["50", "50"], ["100", "100"], ["500", "500"]])),
    h("button", { type: "submit", class: "primary" }, "Apply filters"),
    h("button", { type: "button", id: "logs-export", onclick: exportCsv }, "Export CSV"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const next: Record<string, string> = {};
    for (const [k, v] of fd) next[k] = String(v);
    if (next.limit === "50") delete next.limit;
    location.hash = routeHash("logs", next);
  });
  el.append(h("h2", {}, "Maintenance logs"), form,
    h("p", { id: "logs-status", class: "status", role: "status" }),
    h("div", { id: "logs-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "Log table" }),
    h("button", { type: "button", id: "logs-more", class: "hidden", onclick: () => load(false) }, "Load older logs"));
}

async function load(reset: boolean): Promise<void> {
  const gen = ++generation;
  const status = root().querySelector<HTMLElement>("#logs-status")!;
  status.classList.remove("error");
  status.textContent = "Loading…";
  try {
    if (reset) {
      for (const u of blobUrls.splice(0)) URL.revokeObjectURL(u);
      const v = await unwrap(rest().GET("/v1/logs", { params: { query: { ...filters(), limit: String(pageSize()) } } }));
      if (gen !== generation) return;
      rows = v.logs;
      more = v.logs.length >= pageSize();
    } else {
      const page = nextPage(rows, (r) => r.performed_at, (r) => r.id, pageSize());
      if (!page) return;
      const v = await unwrap(rest().GET("/v1/logs", { params: { query: { ...filters(), to: page.to, limit: String(page.limit) } } }));
      if (gen !== generation) return;
      const got = takePage(v.logs, page, (r) => r.id);
      rows = rows.concat(got.rows);
      more = got.more && got.rows.length > 0;
    }
    await render();
    status.textContent = `${rows.length} log${rows.length === 1 ? "" : "s"} shown${more ? "; older ones can be loaded" : ""}.`;
  } catch (e) {
    status.textContent = `Logs could not be loaded: ${messageOf(e)}`;
    status.classList.add("error");
  }
}

async function render(): Promise<void> {
  const [props, scheds] = await Promise.all([properties().catch(() => [] as Property[]), schedules().catch(() => [] as Schedule[])]);
  const propName = new Map(props.map((p) => [p.id, p.name]));
  const schedName = new Map(scheds.map((s) => [s.id, s.title]));
  const body = h("tbody", {});
  for (const l of rows) {
    const detailId = `log-detail-${l.id}`;
    const toggle = h("button", { type: "button", "aria-expanded": "false", "aria-controls": detailId,
      "aria-label": `Show notes and photos of log ${l.id}` }, "Show notes");
    const firstLine = (l.notes || "").split("\n")[0];
    const tr = h("tr", { "data-log": l.id },
      h("td", {}, formatAt(Date.parse(l.performed_at))),
      h("td", {}, schedName.get(l.schedule_id) ?? l.schedule_id),
      h("td", {}, propName.get(l.property_id) ?? l.property_id),
      h("td", {}, l.performed_by),
      h("td", {}, h("span", { class: `issues issues-${l.issues_found}` }, l.issues_found)),
      h("td", { class: "notes-cell" }, firstLine.length > 80 ? `${firstLine.slice(0, 80)}…` : firstLine),
      h("td", {}, String(l.attachments.length)),
      h("td", {}, toggle));
    const detail = h("tr", { id: detailId, class: "detail hidden" },
      h("td", { colspan: 8 }, h("div", { class: "notes" }, l.notes || "No notes."), h("div", { class: "photos" })));
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Hide notes" : "Show notes";
      toggle.setAttribute("aria-label", `${open ? "Hide" : "Show"} notes and photos of log ${l.id}`);
      detail.classList.toggle("hidden", !open);
      if (open) loadPhotos(l, detail.querySelector<HTMLElement>(".photos")!);
    });
    body.append(tr, detail);
  }
  const t = h("table", { id: "logs" },
    h("caption", { class: "visually-hidden" }, "Maintenance logs, newest first"),
    h("thead", {}, h("tr", {}, ["Performed", "Schedule", "Property", "By", "Issues", "Notes", "Photos", "Details"].map((x) => h("th", { scope: "col" }, x)))),
    body);
  const box = root().querySelector<HTMLElement>("#logs-table")!;
  box.replaceChildren(rows.length ? t : h("p", { class: "empty" }, "No logs match these filters."));
  root().querySelector<HTMLElement>("#logs-more")!.classList.toggle("hidden", !more);
}

/** The log's attachments, fetched with the token and shown from blob: URLs. */
async function loadPhotos(l: Log, box: HTMLElement): Promise<void> {
  if (box.dataset.loaded) return;
  box.dataset.loaded = "1";
  if (l.attachments.length === 0) { box.append(h("p", { class: "empty" }, "No photos.")); return; }
  for (const [i, id] of l.attachments.entries()) {
    try {
      const r = await raw(`/v1/attachments/${encodeURIComponent(id)}`, "*/*");
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      blobUrls.push(url);
      if (blob.type.startsWith("image/")) {
        box.append(h("a", { href: url, target: "_blank", rel: "noopener" },
          h("img", { src: url, alt: `Photo ${i + 1} of ${l.attachments.length}, log ${l.id}`, loading: "lazy" })));
      } else {
        box.append(h("a", { href: url, download: `${id}.pdf` }, `Attachment ${i + 1} (${blob.type || "file"})`));
      }
    } catch (e) {
      box.append(h("p", { class: "error" }, `Attachment ${id}: ${messageOf(e)}`));
    }
  }
}

/**
 * Every row matching the filters as the server's CSV: pages of 500 walked
 * back by `performed_at`, joined record by record (the server's quoting kept).
 */
async function exportCsv(): Promise<void> {
  const status = root().querySelector<HTMLElement>("#logs-status")!;
  const button = root().querySelector<HTMLButtonElement>("#logs-export")!;
  button.disabled = true;
  status.classList.remove("error");
  status.textContent = "Exporting…";
  try {
    const base = filters();
    let header = "";
    const records: string[] = [];
    let page: { to: string; limit: number; seen: Set<string> } | null = null;
    let shownRows: { id: string; at: string }[] = [];
    for (let guard = 0; guard < 10_000; guard += 1) {
      const q = new URLSearchParams({ ...base, ...(page ? { to: page.to } : {}), limit: String(page ? page.limit : 500) });
      const text = await (await raw(`/v1/logs?${q}`, "text/csv")).text();
      const [head, recs] = csvRecords(text);
      header = head;
      const cols = parseCsv(head)[0] ?? [];
      const iId = cols.indexOf("id");
      const iAt = cols.indexOf("performed_at");
      const parsed = recs.map((r) => ({ raw: r, cells: parseCsv(r)[0] ?? [] }));
      const fresh = parsed.filter((r) => !page || !page.seen.has(r.cells[iId]));
      records.push(...fresh.map((r) => r.raw));
      shownRows = shownRows.concat(fresh.map((r) => ({ id: r.cells[iId], at: r.cells[iAt] })));
      if (recs.length < (page ? page.limit : 500) || fresh.length === 0) break;
      page = nextPage(shownRows, (r) => r.at, (r) => r.id, 500);
    }
    const csv = `${header}\r\n${records.map((r) => `${r}\r\n`).join("")}`;
    const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    const a = h("a", { href: url, download: `maintenance-logs${params.property ? `-${params.property}` : ""}.csv`, class: "hidden" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    status.textContent = `Exported ${records.length} row${records.length === 1 ? "" : "s"} as CSV.`;
  } catch (e) {
    status.textContent = `Export failed: ${messageOf(e)}`;
    status.classList.add("error");
  } finally {
    button.disabled = false;
  }
}
