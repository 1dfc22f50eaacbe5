/* sparsefit studio: one page, eight hash routes (#train, #jobs, #compare, #search, #evaluate, #collections,
 * #publish, #settings).
 * Vanilla JS as ES modules, no build step, no external resources; the page's CSP (default-src 'self')
 * allows no inline script, no style attribute and no eval. This module wires the tabs to the router and
 * keeps the health badge fresh; each tab is a module with init() (listeners, once) and show(arg) (the tab
 * is shown; arg: what follows "#tab/" in the URL). */
import { showError } from "./errors.js"; // first: uncaught errors show in the page from here on
import { api } from "./api.js";
import * as collections from "./collections.js";
import * as compare from "./compare.js";
import { $, clear, h } from "./dom.js";
import * as evaluate from "./evaluate.js";
import { isNum } from "./format.js";
import * as jobs from "./jobs.js";
import * as publish from "./publish.js";
import * as search from "./search.js";
import * as settings from "./settings.js";
import { state } from "./state.js";
import * as train from "./train.js";

const TABS = { train, jobs, compare, search, evaluate, collections, publish, settings };
const HEALTH_MS = 15000;

function route() {
  const [tab, arg] = (location.hash || "#train").slice(1).split("/");
  state.tab = Object.hasOwn(TABS, tab) ? tab : "train";
  for (const view of document.querySelectorAll(".view")) view.hidden = view.dataset.view !== state.tab;
  for (const link of document.querySelectorAll(".tabs a")) {
    link.classList.toggle("active", link.dataset.tab === state.tab);
    link.setAttribute("aria-selected", String(link.dataset.tab === state.tab));
  }
  document.title = `sparsefit studio · ${state.tab}`;
  TABS[state.tab].show(arg);
}

async function refreshHealth() {
  const box = $("#health");
  try {
    const data = await api("/health");
    box.className = `health ${data.status === "ok" ? "ok" : "down"}`;
    clear(box).append(h("span", { class: "dot" }), `${data.status}${isNum(data.runs) ? ` · ${data.runs} run${data.runs === 1 ? "" : "s"}` : ""}`);
  } catch (err) {
    box.className = "health down";
    clear(box).append(h("span", { class: "dot" }), "offline");
    showError(err);
  }
}

// compare before search: after each load of the run list, the compare list is drawn first (as before the split)
for (const module of [train, jobs, compare, search, evaluate, collections, publish, settings]) module.init();
window.addEventListener("hashchange", route);
if (!location.hash) history.replaceState(null, "", `${location.pathname}${location.search}#train`);
route();
refreshHealth();
setInterval(refreshHealth, HEALTH_MS);
if (state.tab !== "jobs") jobs.refreshJobs(); // the running-jobs counter in the nav
