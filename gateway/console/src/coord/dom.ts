/**
 * DOM helpers of the coordinator's screens: `h()` to build elements, and
 * `Form`, a form whose fields each have a label and an error slot, so a
 * server error (`invalid_input`, message "<field>: <reason>") is shown
 * beside the field it names.
 * @module
 */
import { DispatchdError } from "@dispatchd/client";
import { fieldOf } from "./logic.js";

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** `h("button", {type: "button", onclick: f}, "Save")`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "class") el.className = String(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** `<option>`s, the selected one marked. */
export function options(list: [string, string][], selected?: string): HTMLOptionElement[] {
  return list.map(([value, label]) => h("option", { value, selected: value === selected }, label));
}

/** A table: headers (with scope) and rows of cells. */
export function table(caption: string, head: string[], rows: Child[][], opts: { id?: string; rowAttrs?: (i: number) => Attrs } = {}): HTMLTableElement {
  return h("table", { id: opts.id },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r, i) => h("tr", opts.rowAttrs ? opts.rowAttrs(i) : {}, r.map((c) => h("td", {}, c))))));
}

/** The message of anything thrown. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

/** A form with labelled fields, an error slot per field and a status line. */
export class Form {
  readonly el: HTMLFormElement;
  readonly fields = new Map<string, { control: Control; error: HTMLElement; wrap: HTMLElement }>();
  readonly status: HTMLElement;
  readonly submit: HTMLButtonElement;
  readonly body: HTMLElement;

  constructor(readonly id: string, title: string | null, submitLabel: string) {
    this.body = h("div", { class: "fields" });
    this.status = h("p", { class: "status", id: `${id}-status`, role: "status" });
    this.submit = h("button", { class: "primary", type: "submit" }, submitLabel);
    this.el = h("form", { id, class: "form", novalidate: false, "aria-labelledby": title ? `${id}-title` : null },
      title ? h("h3", { id: `${id}-title` }, title) : null,
      this.body, h("div", { class: "actions" }, this.submit), this.status);
  }

  /** Adds a labelled control named `name` (the server's field name). */
  add<C extends Control>(name: string, label: string, control: C, hint?: string): C {
    const id = `${this.id}-${name.replace(/[^a-z0-9_-]/gi, "-")}`;
    control.id = id;
    control.name = name;
    const error = h("p", { class: "field-error", id: `${id}-error` });
    const describedBy = [`${id}-error`];
    const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
    if (hintEl) describedBy.push(`${id}-hint`);
    control.setAttribute("aria-describedby", describedBy.join(" "));
    const wrap = h("div", { class: "field", "data-field": name }, h("label", { for: id }, label), control, hintEl, error);
    this.body.append(wrap);
    this.fields.set(name, { control, error, wrap });
    return control;
  }

  /** The control named `name`. */
  get(name: string): Control {
    const f = this.fields.get(name);
    if (!f) throw new Error(`no field ${name}`);
    return f.control;
  }

  value(name: string): string {
    return this.get(name).value.trim();
  }

  clearErrors(): void {
    for (const f of this.fields.values()) {
      f.error.textContent = "";
      f.control.removeAttribute("aria-invalid");
    }
    this.status.textContent = "";
    this.status.classList.remove("error");
  }

  /** Shows `message` beside `name`'s control (or as the form's status when it names none). */
  fieldError(name: string | null, message: string): void {
    const f = name ? this.fields.get(name) : undefined;
    if (f) {
      f.error.textContent = message;
      f.control.setAttribute("aria-invalid", "true");
      f.control.focus();
    } else {
      this.status.textContent = message;
      this.status.classList.add("error");
    }
  }

  /** A server error beside the field its message names. */
  showError(e: unknown): void {
    const message = messageOf(e);
    const code = e instanceof DispatchdError ? e.code : "";
    const name = fieldOf(message, [...this.fields.keys()]);
    this.fieldError(name, code && code !== "invalid_input" && !name ? `${message} (${code})` : message);
  }

  /** Runs `fn` on submit: errors shown, the button busy meanwhile, a success message as status. */
  onSubmit(fn: () => Promise<string | void>): this {
    this.el.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      this.clearErrors();
      this.submit.disabled = true;
      this.el.setAttribute("aria-busy", "true");
      try {
        const ok = await fn();
        if (ok) this.status.textContent = ok;
      } catch (e) {
        this.showError(e);
      } finally {
        this.submit.disabled = false;
        this.el.removeAttribute("aria-busy");
      }
    });
    return this;
  }
}

/** An input. */
export function input(type: string, attrs: Attrs = {}): HTMLInputElement {
  return h("input", { type, ...attrs });
}

/** A select of `[value, label]` pairs. */
export function select(list: [string, string][], selected?: string, attrs: Attrs = {}): HTMLSelectElement {
  return h("select", attrs, options(list, selected));
}

/** A button that runs `fn`, disabled while it runs; its failure shown in `out`. */
export function action(label: string, fn: () => Promise<unknown>, attrs: Attrs = {}, out?: HTMLElement): HTMLButtonElement {
  const b = h("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await fn();
    } catch (e) {
      if (out) { out.textContent = messageOf(e); out.classList.add("error"); }
    } finally {
      b.disabled = false;
    }
  });
  return b;
}
