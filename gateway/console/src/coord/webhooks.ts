/**
 * Ops webhooks: register one (its secret shown once, with a copy button),
 * list and delete them, and see their deliveries (status and endpoint
 * filters in the hash; failed ones retried).
 * @module
 */
import { unwrap, rest, query } from "./api";
import { Form, h, input, table, select, action } from "./dom";
import { EVENTS, routeHash } from "./logic.js";
import { formatAt } from "./time.js";

let params: Record<string, string> = {};
const root = () => document.querySelector<HTMLElement>("#screen-webhooks")!;

export async function showWebhooks(p: Record<string, string>): Promise<void> {
  params = p;
  const el = root();
  if (!el.firstChild) build(el);
  el.querySelector<HTMLSelectElement>("#dl-status")!.value = p.status ?? "";
  await Promise.allSettled([renderHooks(), renderDeliveries()]);
}

function build(el: HTMLElement): void {
  const f = new Form("webhook-form", null, "Register webhook");
  f.add("url", "Endpoint URL", input("url", { required: true, placeholder: "https://example.com/hooks/dispatchd" }));
  const boxes = [["*", "All events"], ...EVENTS.map((e) => [e, e])].map(([v, l]) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "event", value: v, checked: v === "*" }), ` ${l}`));
  const events = h("fieldset", { id: "webhook-form-events", class: "events" }, h("legend", {}, "Events"), boxes);
  const evError = h("p", { class: "field-error", id: "webhook-form-events-error" });
  f.body.append(events, evError);
  // The server names `events` in its errors: show them beside the checkboxes.
  f.fields.set("events", { control: events.querySelector("input")!, error: evError, wrap: events });
  const secret = h("div", { id: "webhook-secret", class: "secret hidden", role: "region", "aria-label": "New webhook secret" });
  f.onSubmit(async () => {
    const chosen = [...events.querySelectorAll<HTMLInputElement>("input:checked")].map((x) => x.value);
    const w = await unwrap(rest().POST("/v1/ops/webhooks", { body: { url: f.value("url"), events: chosen.includes("*") ? ["*"] : chosen } }));
    showSecret(secret, w.id, w.secret);
    f.el.reset();
    await renderHooks();
    return `Webhook ${w.id} registered.`;
  });
  const st = select([["", "all"], ["pending", "pending"], ["delivered", "delivered"], ["failed", "failed"]], params.status ?? "", { id: "dl-status" });
  const ep = h("select", { id: "dl-endpoint" });
  const go = () => { location.hash = routeHash("webhooks", { status: st.value, endpoint: ep.value }); };
  st.addEventListener("change", go);
  ep.addEventListener("change", go);
  el.append(h("h2", {}, "Ops webhooks"),
    h("div", { class: "panels" },
      h("section", { class: "panel", "aria-labelledby": "wh-new-h" }, h("h3", { id: "wh-new-h" }, "Register a webhook"), f.el, secret),
      h("section", { class: "panel", "aria-labelledby": "wh-list-h" }, h("h3", { id: "wh-list-h" }, "Webhooks"),
        h("p", { id: "wh-status", class: "status", role: "status" }), h("div", { id: "webhooks-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "webhooks table" })),
      h("section", { class: "panel wide", "aria-labelledby": "wh-dl-h" }, h("h3", { id: "wh-dl-h" }, "Deliveries"),
        h("div", { class: "toolbar" }, h("label", { for: "dl-status" }, "Status"), st, h("label", { for: "dl-endpoint" }, "Endpoint"), ep,
          action("Refresh", renderDeliveries)),
        h("p", { id: "dl-status-line", class: "status", role: "status" }), h("div", { id: "deliveries-table", class: "scroll", tabindex: 0, role: "region", "aria-label": "deliveries table" }))));
}

/** The secret, once: with a copy button and a button to put it away. */
function showSecret(box: HTMLElement, id: string, secret: string): void {
  const field = h("input", { id: "webhook-secret-value", type: "text", readonly: true, value: secret, "aria-label": `Secret of webhook ${id}` });
  const done = h("p", { class: "status", role: "status" });
  box.replaceChildren(
    h("p", {}, h("strong", {}, "Copy this secret now: "), "it is shown only once. Deliveries are signed with it (Standard Webhooks)."),
    field,
    h("div", { class: "actions" },
      action("Copy secret", async () => {
        try {
          await navigator.clipboard.writeText(secret);
        } catch {
          field.select();
          document.execCommand("copy");
        }
        done.textContent = "Copied.";
      }),
      h("button", { type: "button", onclick: () => { box.replaceChildren(); box.classList.add("hidden"); } }, "I have stored it")),
    done);
  box.classList.remove("hidden");
  field.focus();
  field.select();
}

async function renderHooks(): Promise<void> {
  const v = await unwrap(rest().GET("/v1/ops/webhooks", { params: { query: { limit: "500" } } }));
  const out = root().querySelector<HTMLElement>("#wh-status")!;
  const ep = root().querySelector<HTMLSelectElement>("#dl-endpoint")!;
  ep.replaceChildren(h("option", { value: "" }, "all"), ...v.webhooks.map((w) => h("option", { value: w.id, selected: w.id === params.endpoint }, w.url)));
  root().querySelector("#webhooks-table")!.replaceChildren(v.webhooks.length
    ? table("Webhooks", ["Id", "URL", "Events", "State", ""], v.webhooks.map((w) => [w.id, w.url, w.events.join(", "),
      w.disabled ? "disabled" : "active",
      action("Delete", async () => {
        await unwrap(rest().DELETE("/v1/ops/webhooks/{id}", { params: { path: { id: w.id } } }));
        out.textContent = `Webhook ${w.id} deleted.`;
        await renderHooks();
      }, { "aria-label": `Delete webhook ${w.url}` }, out)]), { id: "webhooks" })
    : h("p", { class: "empty" }, "No webhooks."));
}

async function renderDeliveries(): Promise<void> {
  const out = root().querySelector<HTMLElement>("#dl-status-line")!;
  const v = await unwrap(rest().GET("/v1/ops/deliveries", { params: { query: query({
    status: params.status as "failed" | undefined, endpoint: params.endpoint, limit: "200" }) } }));
  root().querySelector("#deliveries-table")!.replaceChildren(v.deliveries.length
    ? table("Deliveries", ["Event", "Channel", "Target", "Status", "Attempts", "Last answer", "Next try", ""], v.deliveries.map((d) => [
      `${d.type} (${d.event_id})`, d.channel, d.target, d.status, d.attempts, d.last_error ?? (d.last_status == null ? "" : String(d.last_status)),
      d.next_at ? formatAt(Date.parse(d.next_at)) : "",
      d.status === "failed" ? action("Retry", async () => {
        await unwrap(rest().POST("/v1/ops/deliveries/{id}/retry", { params: { path: { id: d.id } } }));
        out.textContent = `Delivery ${d.id} queued again.`;
        await renderDeliveries();
      }, { "aria-label": `Retry delivery ${d.id}` }, out) : ""]), { id: "deliveries-list" })
    : h("p", { class: "empty" }, "No deliveries."));
}
