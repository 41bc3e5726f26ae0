/**
 * Triage: try a description (`POST /v1/triage`) and teach an example
 * (`POST /v1/ops/triage/examples`), so dispatch learns from the dispatcher.
 * @module
 */
import { unwrap, rest, skills } from "./api";
import { Form, h, select, table } from "./dom";
import { dollars } from "./logic.js";

const root = () => document.querySelector<HTMLElement>("#screen-triage")!;
const URGENCIES: [string, string][] = [["emergency", "emergency"], ["high", "high"], ["normal", "normal"], ["low", "low"]];

export async function showTriage(): Promise<void> {
  const el = root();
  if (el.firstChild) return;
  const sk = await skills().catch(() => [] as string[]);
  const result = h("div", { id: "triage-result", "aria-live": "polite" });
  const tryForm = new Form("triage-try", null, "Triage it");
  tryForm.add("description", "Description", h("textarea", { rows: 3, maxlength: 2000, required: true }));
  tryForm.onSubmit(async () => {
    const t = await unwrap(rest().POST("/v1/triage", { body: { description: tryForm.value("description") } }));
    result.replaceChildren(table("Triage result", ["Skill", "Urgency", "Confidence", "Matched", "Estimate"], [[
      t.skill, t.urgency, `${Math.round(t.confidence * 100)} %`, t.matched.join(", ") || "–",
      `${dollars(t.estimate_cents.low)}–${dollars(t.estimate_cents.high)}`]], { id: "triage-table" }),
    t.alternatives.length ? h("p", { class: "hint" }, `Alternatives: ${t.alternatives.map((a) => `${a.skill} ${Math.round(a.confidence * 100)} %`).join(", ")}`) : "");
  });
  const teach = new Form("triage-teach", null, "Teach this example");
  teach.add("description", "Description", h("textarea", { rows: 3, maxlength: 2000, required: true }), "At most 2 000 characters.");
  teach.add("skill", "Skill", select([["", "Choose a skill"], ...sk.map((s) => [s, s] as [string, string])], "", { required: true }));
  teach.add("urgency", "Urgency", select(URGENCIES, "normal"));
  const taught = h("ul", { id: "taught" });
  teach.onSubmit(async () => {
    const body = { description: teach.value("description"), skill: teach.value("skill"), urgency: teach.value("urgency") as "normal" };
    await unwrap(rest().POST("/v1/ops/triage/examples", { body }));
    taught.prepend(h("li", {}, `${body.skill}, ${body.urgency}: “${body.description.slice(0, 120)}”`));
    teach.el.reset();
    return `Example taught: from now on it counts in triage (${body.skill}, ${body.urgency}).`;
  });
  el.append(h("h2", {}, "Triage"), h("div", { class: "panels" },
    h("section", { class: "panel", "aria-labelledby": "tr-try-h" }, h("h3", { id: "tr-try-h" }, "Try a description"), tryForm.el, result),
    h("section", { class: "panel", "aria-labelledby": "tr-teach-h" }, h("h3", { id: "tr-teach-h" }, "Teach an example"), teach.el,
      h("h4", {}, "Taught in this session"), taught)));
}
