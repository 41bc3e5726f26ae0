/**
 * The maintenance calendar (FullCalendar: month, week and list views) fed
 * by `GET /v1/schedules` and `GET /v1/logs`, and the schedule dialog:
 * create, edit, pause, resume, delete, and record work done. Occurrences
 * are computed here as the server computes them (time.js) and coloured
 * scheduled / due / overdue / done; nothing can be dragged, since the API
 * cannot move one occurrence. Filters (property, skill) and the view live
 * in the hash, so a link shows the same calendar.
 * @module
 */
import { Calendar, type EventInput, type EventSourceFuncArg } from "@fullcalendar/core";
import dayGridPlugin from "@fullcalendar/daygrid";
import timeGridPlugin from "@fullcalendar/timegrid";
import listPlugin from "@fullcalendar/list";
import { unwrap, rest, properties, skills, forget, query, type Schedule, type Property } from "./api";
import { Form, h, input, select, options, action, messageOf } from "./dom";
import { KINDS, occurrenceKind, routeHash } from "./logic.js";
import { occurrences, bothZones, viewerZone, toLocalInput, fromLocalInput, formatAt, offsetAt } from "./time.js";

const VIEWS: [string, string][] = [["dayGridMonth", "Month"], ["timeGridWeek", "Week"], ["listMonth", "List"]];
let calendar: Calendar | null = null;
let params: Record<string, string> = {};
let scheduleById = new Map<string, Schedule>();
const root = () => document.querySelector<HTMLElement>("#screen-calendar")!;

/** Shows the calendar with the hash's filters (`property`, `skill`, `view`, `date`). */
export async function showCalendar(p: Record<string, string>): Promise<void> {
  params = p;
  const el = root();
  if (!calendar) build(el);
  const props = await properties().catch(() => [] as Property[]);
  const sk = await skills().catch(() => [] as string[]);
  const fp = el.querySelector<HTMLSelectElement>("#cal-property")!;
  fp.replaceChildren(...options([["", "All properties"], ...props.map((x) => [x.id, x.name] as [string, string])], p.property));
  const fs = el.querySelector<HTMLSelectElement>("#cal-skill")!;
  fs.replaceChildren(...options([["", "All skills"], ...sk.map((x) => [x, x] as [string, string])], p.skill));
  const view = VIEWS.some(([v]) => v === p.view) ? p.view : "dayGridMonth";
  if (calendar!.view.type !== view) calendar!.changeView(view);
  if (p.date && /^\d{4}-\d\d-\d\d$/.test(p.date)) calendar!.gotoDate(p.date);
  calendar!.updateSize();
  calendar!.refetchEvents();
}

function setParams(next: Record<string, string>): void {
  params = { ...params, ...next };
  history.replaceState(null, "", routeHash("calendar", params));
}

function build(el: HTMLElement): void {
  const legend = h("ul", { class: "kinds", "aria-label": "Colours" },
    Object.entries(KINDS).map(([k, v]) => h("li", { style: `--c:${v.colour}`, "data-kind": k }, v.label)));
  const fp = h("select", { id: "cal-property" });
  const fs = h("select", { id: "cal-skill" });
  fp.addEventListener("change", () => { setParams({ property: fp.value }); calendar?.refetchEvents(); });
  fs.addEventListener("change", () => { setParams({ skill: fs.value }); calendar?.refetchEvents(); });
  const bar = h("div", { class: "toolbar" },
    h("label", { for: "cal-property" }, "Property"), fp,
    h("label", { for: "cal-skill" }, "Skill"), fs,
    h("button", { type: "button", class: "primary", onclick: () => openSchedule(null) }, "New schedule"),
    legend);
  const zone = h("p", { class: "hint" }, `Times in your zone (${viewerZone()}); a schedule in another zone also shows its own.`);
  const box = h("div", { id: "calendar" });
  el.append(h("h2", {}, "Maintenance calendar"), bar, zone, h("p", { id: "cal-status", class: "status", role: "status" }), box);
  calendar = new Calendar(box, {
    plugins: [dayGridPlugin, timeGridPlugin, listPlugin],
    initialView: "dayGridMonth",
    timeZone: "local",
    height: "auto",
    editable: false,
    eventStartEditable: false,
    eventDurationEditable: false,
    selectable: false,
    firstDay: 1,
    nowIndicator: true,
    dayMaxEvents: 4,
    eventDisplay: "block",
    eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    headerToolbar: { left: "prev,next today", center: "title", right: "dayGridMonth,timeGridWeek,listMonth" },
    // Text, not FullCalendar's icon fonts (a role="img" with no name).
    buttonIcons: false,
    buttonText: { today: "Today", month: "Month", week: "Week", list: "List", prev: "‹ Previous", next: "Next ›" },
    buttonHints: { prev: "Previous $0", next: "Next $0", today: "Go to today" },
    events: (info, ok, fail) => { loadEvents(info).then(ok, (e) => fail(e instanceof Error ? e : new Error(String(e)))); },
    eventClick: (arg) => {
      arg.jsEvent.preventDefault();
      const sid = arg.event.extendedProps.schedule_id as string;
      openSchedule(sid, arg.event.extendedProps.log as Record<string, string> | undefined);
    },
    // A day cell is labelled by its date number only, which its events
    // contradict (axe: label-content-name-mismatch); the grid's column
    // headers and the number itself already say the date.
    dayCellDidMount: (arg) => { arg.el.removeAttribute("aria-labelledby"); },
    eventDidMount: (arg) => {
      const x = arg.event.extendedProps;
      arg.el.dataset.kind = x.kind;
      arg.el.dataset.schedule = x.schedule_id;
      arg.el.setAttribute("title", x.tip);
      arg.el.setAttribute("aria-label", x.tip);
    },
    datesSet: (arg) => {
      const d = arg.view.currentStart;
      const date = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
      setParams({ view: arg.view.type, date });
    },
  });
  calendar.render();
}

/** The events of the visible range: schedule occurrences and logs. */
async function loadEvents(info: EventSourceFuncArg): Promise<EventInput[]> {
  const from = info.start.getTime();
  const to = info.end.getTime();
  const [sv, lv] = await Promise.all([
    unwrap(rest().GET("/v1/schedules", { params: { query: query({ property_id: params.property, limit: "500" }) } })),
    unwrap(rest().GET("/v1/logs", { params: { query: query({
      property_id: params.property, from: info.start.toISOString(), to: info.end.toISOString(), limit: "500" }) } })),
  ]);
  scheduleById = new Map(sv.schedules.map((s) => [s.id, s]));
  const shown = sv.schedules.filter((s) => !params.skill || s.skill === params.skill);
  const viewer = viewerZone();
  const events: EventInput[] = [];
  for (const s of shown) {
    for (const o of occurrences(s, from, to)) {
      const kind = occurrenceKind({ first: o.first, status: s.status });
      const other = offsetAt(o.at, s.timezone) !== offsetAt(o.at, viewer);
      const there = other ? ` · ${formatAt(o.at, s.timezone).slice(-5)} ${s.timezone}` : "";
      events.push({
        id: `${s.id}@${o.at}`, title: `${s.title}${o.projected ? " (projected)" : ""}${there}`, start: o.at,
        backgroundColor: KINDS[kind].colour, borderColor: KINDS[kind].colour, textColor: "#ffffff",
        classNames: [`occ-${kind}`],
        extendedProps: { kind, schedule_id: s.id, tip: `${s.title}: ${KINDS[kind].label}, ${bothZones(o.at, s.timezone, viewer)}` },
      });
    }
  }
  for (const l of lv.logs) {
    const s = scheduleById.get(l.schedule_id);
    if (params.skill && s?.skill !== params.skill) continue;
    const at = Date.parse(l.performed_at);
    const title = s ? s.title : `schedule ${l.schedule_id}`;
    events.push({
      id: `log:${l.id}`, title: `✓ ${title}`, start: at,
      backgroundColor: KINDS.done.colour, borderColor: KINDS.done.colour, textColor: "#ffffff", classNames: ["occ-done"],
      extendedProps: { kind: "done", schedule_id: l.schedule_id, log: l,
        tip: `${title}: done, ${bothZones(at, s?.timezone ?? viewer, viewer)}` },
    });
  }
  return events;
}

// ------------------------------------------------------------ the dialog

const dialog = (): HTMLDialogElement => document.querySelector<HTMLDialogElement>("#schedule-dialog")!;

function closeDialog(): void {
  dialog().close();
}

/** Opens a schedule (or, with null, the form for a new one). */
export async function openSchedule(id: string | null, log?: Record<string, string>): Promise<void> {
  const d = dialog();
  const body = d.querySelector<HTMLElement>(".dialog-body")!;
  const title = d.querySelector<HTMLElement>("#schedule-dialog-title")!;
  body.replaceChildren(h("p", { class: "empty" }, "Loading…"));
  title.textContent = id ? "Schedule" : "New schedule";
  if (!d.open) d.showModal();
  const [props, sk] = await Promise.all([properties().catch(() => [] as Property[]), skills().catch(() => [] as string[])]);
  let s: Schedule | null = null;
  if (id) {
    try {
      s = await unwrap(rest().GET("/v1/schedules/{id}", { params: { path: { id } } }));
    } catch (e) {
      body.replaceChildren(h("p", { class: "error" }, `This schedule cannot be shown: ${messageOf(e)}`),
        log ? logSummary(log) : "");
      return;
    }
    title.textContent = s.title;
  }
  const parts: Node[] = [];
  if (log) parts.push(logSummary(log));
  if (s) parts.push(summary(s, props));
  parts.push(scheduleForm(s, props, sk));
  if (s) parts.push(recordForm(s));
  body.replaceChildren(...parts);
  (body.querySelector("input, select, textarea") as HTMLElement | null)?.focus();
}

function logSummary(l: Record<string, string>): HTMLElement {
  return h("section", { class: "summary", "aria-label": "Work done" },
    h("h3", {}, "Work done"),
    h("dl", {}, h("dt", {}, "Performed"), h("dd", {}, formatAt(Date.parse(l.performed_at))),
      h("dt", {}, "By"), h("dd", {}, l.performed_by), h("dt", {}, "Issues found"), h("dd", {}, l.issues_found),
      h("dt", {}, "Notes"), h("dd", { class: "notes" }, l.notes || "–")));
}

function summary(s: Schedule, props: Property[]): HTMLElement {
  const next = Date.parse(s.next_due_at);
  const prop = props.find((p) => p.id === s.property_id);
  const row = (k: string, v: string) => [h("dt", {}, k), h("dd", {}, v)];
  const out = h("p", { class: "status", role: "status" });
  const dl = h("dl", {},
    row("Status", s.status), row("Next due", bothZones(next, s.timezone)),
    row("Property", prop ? `${prop.name} (${s.property_id})` : s.property_id),
    row("Repeats", `every ${s.every.interval} ${s.every.unit}${s.every.interval > 1 ? "s" : ""}, counted from the ${s.anchor === "due" ? "due date" : "completion"}`),
    row("Missed", String(s.missed)), row("Open job", s.open_job_id ?? "none"));
  const paused = s.status === "paused";
  let armed = false;
  const del = h("button", { type: "button", class: "danger" }, "Delete schedule");
  del.addEventListener("click", async () => {
    if (!armed) { armed = true; del.textContent = "Confirm delete"; out.textContent = "Press again to delete it; its logs stay."; return; }
    del.disabled = true;
    try {
      await unwrap(rest().DELETE("/v1/schedules/{id}", { params: { path: { id: s.id } } }));
      forget("schedules");
      closeDialog();
      calendar?.refetchEvents();
    } catch (e) { out.textContent = messageOf(e); out.classList.add("error"); del.disabled = false; }
  });
  return h("section", { class: "summary", "aria-label": "Schedule summary" }, dl,
    h("div", { class: "actions" },
      action(paused ? "Resume schedule" : "Pause schedule", async () => {
        await unwrap(rest().PATCH("/v1/schedules/{id}", { params: { path: { id: s.id } }, body: { paused: !paused } }));
        forget("schedules");
        calendar?.refetchEvents();
        await openSchedule(s.id);
      }, {}, out),
      del),
    out);
}

/** Creates (`s` null) or edits a schedule; start and property are fixed once created. */
function scheduleForm(s: Schedule | null, props: Property[], sk: string[]): HTMLElement {
  const f = new Form("schedule-form", s ? "Edit" : null, s ? "Save changes" : "Create schedule");
  const tz = s?.timezone ?? viewerZone();
  f.add("title", "Title", input("text", { required: true, maxlength: 200, value: s?.title ?? "" }));
  const prop = f.add("property_id", "Property", select([["", "Choose a property"], ...props.map((p) => [p.id, p.name] as [string, string])], s?.property_id ?? params.property, { required: true, disabled: !!s }));
  prop.disabled = !!s;
  f.add("skill", "Skill", select([["", "Choose a skill"], ...[...new Set([...(s ? [s.skill] : []), ...sk])].map((x) => [x, x] as [string, string])], s?.skill ?? params.skill, { required: true }));
  f.add("description", "Description", h("textarea", { rows: 2 }, s?.description ?? ""));
  const zoneList = h("datalist", { id: "zones" }, (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.("timeZone").map((z) => h("option", { value: z })) ?? []);
  f.add("timezone", "Time zone", input("text", { required: true, list: "zones", value: tz, autocomplete: "off" }), "An IANA name, e.g. Europe/Berlin");
  f.body.append(zoneList);
  const start = f.add("start_at", "Starts (in the schedule's time zone)", input("datetime-local", { required: !s, disabled: !!s,
    value: s ? toLocalInput(Date.parse(s.start_at), s.timezone) : "" }));
  f.add("every.interval", "Repeat every", input("number", { min: 1, max: 1000, step: 1, required: true, value: s?.every.interval ?? 1 }));
  f.add("every.unit", "Unit", select([["day", "days"], ["week", "weeks"], ["month", "months"], ["year", "years"]], s?.every.unit ?? "month"));
  f.add("anchor", "Next due counted from", select([["due", "the due date"], ["completion", "the completion"]], s?.anchor ?? "due"));
  f.add("lead_s", "Create the job this many hours before", input("number", { min: 0, step: "any", value: s ? s.lead_s / 3600 : 0 }));
  f.add("assigned_to", "Assigned worker id (optional)", input("text", { value: s?.assigned_to ?? "", autocomplete: "off" }));
  f.onSubmit(async () => {
    const zone = f.value("timezone");
    const lead = Number(f.value("lead_s") || "0");
    const common = {
      title: f.value("title"), skill: f.value("skill"), description: f.value("description"), timezone: zone,
      every: { unit: f.value("every.unit") as "day", interval: Number(f.value("every.interval")) },
      anchor: f.value("anchor") as "due", lead_s: Math.round(lead * 3600),
      assigned_to: f.value("assigned_to") || null,
    };
    if (!Number.isFinite(lead) || lead < 0) { f.fieldError("lead_s", "lead_s: must be 0 or more hours"); return; }
    let saved: Schedule;
    if (s) {
      saved = await unwrap(rest().PATCH("/v1/schedules/{id}", { params: { path: { id: s.id } }, body: common }));
    } else {
      if (!f.value("property_id")) { f.fieldError("property_id", "property_id: choose a property"); return; }
      let at: number | null = null;
      try { at = fromLocalInput(start.value, zone); } catch { at = fromLocalInput(start.value, "UTC"); }
      if (at === null) { f.fieldError("start_at", "start_at: give a date and time"); return; }
      saved = await unwrap(rest().POST("/v1/schedules", { body: { ...common, property_id: f.value("property_id"),
        start_at: new Date(at).toISOString() } }));
    }
    forget("schedules");
    closeDialog();
    if (calendar) {
      if (!s) calendar.gotoDate(new Date(Date.parse(saved.next_due_at)));
      calendar.refetchEvents();
    }
    announce(`Schedule “${saved.title}” ${s ? "saved" : "created"}; next due ${bothZones(Date.parse(saved.next_due_at), saved.timezone)}.`);
  });
  return f.el;
}

/** `POST /v1/logs`: work done on this schedule (rolls it on). */
function recordForm(s: Schedule): HTMLElement {
  const f = new Form("log-form", "Record work done", "Record");
  f.add("notes", "Notes", h("textarea", { rows: 2, maxlength: 10000 }));
  f.add("issues_found", "Issues found", select([["none", "none"], ["minor", "minor"], ["major", "major"]], "none"));
  f.onSubmit(async () => {
    await unwrap(rest().POST("/v1/logs", { body: { schedule_id: s.id, notes: f.value("notes"),
      issues_found: f.value("issues_found") as "none" } }));
    forget("schedules");
    closeDialog();
    calendar?.refetchEvents();
    announce(`Work on “${s.title}” recorded.`);
  });
  const det = h("details", {}, h("summary", {}, "Record work done"), f.el);
  return det;
}

function announce(text: string): void {
  const el = document.querySelector<HTMLElement>("#cal-status");
  if (el) el.textContent = text;
}

/** Wires the dialog's close button (once). */
export function initCalendarDialog(): void {
  const d = dialog();
  d.querySelector(".close")!.addEventListener("click", closeDialog);
}
