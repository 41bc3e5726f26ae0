/**
 * The coordinator's screens beside the live map: a hash router
 * (`#/calendar`, `#/logs?…`, `#/stock?…`, `#/webhooks`, `#/triage`; anything
 * else is the map) started once the console has signed in.
 * @module
 */
import { connect, disconnect, forget } from "./api";
import { parseRoute } from "./logic.js";
import { showCalendar, initCalendarDialog } from "./calendar";
import { showLogs } from "./logs";
import { showStock } from "./stock";
import { showWebhooks } from "./webhooks";
import { showTriage } from "./triage";
import { messageOf } from "./dom";

type Show = (params: Record<string, string>) => Promise<void>;
const SHOW: Record<string, Show> = {
  calendar: showCalendar, logs: showLogs, stock: showStock, webhooks: showWebhooks, triage: () => showTriage(),
};

let started = false;
let onMap: () => void = () => {};

/** Routes the current hash: shows its screen with its filters. */
async function route(): Promise<void> {
  if (!started) return;
  const { screen, params } = parseRoute(location.hash);
  for (const el of document.querySelectorAll<HTMLElement>(".screen")) el.hidden = el.id !== `screen-${screen}`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>("#screens-nav a")) {
    if (a.dataset.screen === screen) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (screen === "map") { onMap(); return; }
  try {
    await SHOW[screen](params);
  } catch (e) {
    const el = document.querySelector<HTMLElement>(`#screen-${screen}`);
    el?.prepend(Object.assign(document.createElement("p"), { className: "error", role: "alert", textContent: messageOf(e) }));
  }
}

/** After sign-in: the token for REST, and what to do when the map shows again. */
export function startCoordinator(token: string, opts: { onUnauthorized: () => void; onShowMap: () => void }): void {
  connect(token, opts.onUnauthorized);
  onMap = opts.onShowMap;
  started = true;
  forget();
  void route();
}

/** At sign-out. */
export function stopCoordinator(): void {
  started = false;
  disconnect();
}

window.addEventListener("hashchange", () => { void route(); });
initCalendarDialog();
