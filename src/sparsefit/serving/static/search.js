/* #search: search a finished run (query, limit, payload filters from the filter builder, paging), the
 * run's exclusion rules and the rules that fired, each hit with score and calibrated confidence; "Explain"
 * opens the explanation panel (explain.js). */
import { api, enc } from "./api.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { explain, isExplained } from "./explain.js";
import { fmt, isNum, pct } from "./format.js";
import { loadRuns, onRuns, state } from "./state.js";

const search = { query: "", offset: 0, limit: 10, run: null, hits: [] }; // the search shown
let searchRun;
// Rules need the run's search service (a model load): fetched when the box is opened or after a search.
let rulesFor = null; // the run whose rules the box shows

export function init() {
searchRun = $("#search-run");
onRuns(renderSearchRuns);
searchRun.addEventListener("change", () => {
  search.run = searchRun.value || null;
  rulesFor = null;
  if ($("#rules-box").open) loadRules();
  if (search.query) doSearch(0);
});
$("#rules-box").addEventListener("toggle", () => { if ($("#rules-box").open && rulesFor !== search.run) loadRules(); });
$("#add-filter").addEventListener("click", () => addFilterRow().querySelector("input").focus());
$("#search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  doSearch(0);
});
$("#prev-page").addEventListener("click", () => doSearch(Math.max(0, search.offset - search.limit)));
$("#next-page").addEventListener("click", () => doSearch(search.offset + search.limit));
addFilterRow();
}

/** The tab is shown: reload the runs (the run picker offers the finished ones). */
export function show() {
loadRuns();
}

function renderSearchRuns() {
  const finished = state.runs.filter((r) => r.status === "finished");
  const keep = searchRun.value || search.run;
  clear(searchRun);
  if (!finished.length) searchRun.append(h("option", { value: "" }, "no finished run yet"));
  for (const run of finished) {
    searchRun.append(h("option", { value: run.name }, `${run.name}${isNum(run.final_ndcg) ? `  (nDCG@10 ${fmt(run.final_ndcg)})` : ""}`));
  }
  if (keep && finished.some((r) => r.name === keep)) searchRun.value = keep;
  if (searchRun.value !== search.run) {
    search.run = searchRun.value || null;
    rulesFor = null;
    if ($("#rules-box").open) loadRules();
  }
}

async function loadRules() {
  const list = clear($("#rules-list"));
  const count = $("#rules-count");
  count.textContent = "";
  rulesFor = search.run;
  if (!search.run) return;
  list.append(h("div", { class: "muted small" }, "loading…"));
  try {
    const data = await api(`/rules?run=${enc(search.run)}`);
    const rules = data.rules || [];
    clear(list);
    count.textContent = `(${rules.length})`;
    if (!rules.length) list.append(h("div", { class: "muted small" }, "No exclusion rules for this run."));
    for (const rule of rules) {
      const extra = Object.entries(rule).filter(([k]) => !["id", "when", "exclude"].includes(k)).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ");
      list.append(h("div", { class: "rule" }, h("code", {}, rule.id || ""), " when “", h("b", {}, rule.when || ""), "” exclude “", h("b", {}, rule.exclude || ""), "” ", h("span", { class: "muted small" }, extra)));
    }
  } catch (err) {
    rulesFor = null;
    clear(list).append(h("div", { class: "error-msg" }, h("span", { class: "text" }, err.message)));
  }
}

// -- filter builder
const OPS = { "=": null, "<": "lt", "<=": "lte", ">": "gt", ">=": "gte" };

function addFilterRow(field = "", op = "=", value = "") {
  const row = h("div", { class: "filter-row", "data-testid": "filter-row" },
    h("input", { class: "f-field", "data-testid": "filter-field", placeholder: "field, e.g. brand", list: "payload-fields", value: field, oninput: updateFilterPreview }),
    h("select", { class: "f-op", "data-testid": "filter-op", onchange: updateFilterPreview }, Object.keys(OPS).map((o) => h("option", { value: o, selected: o === op }, o))),
    h("input", { class: "f-value", "data-testid": "filter-value", placeholder: "value", value, oninput: updateFilterPreview }),
    h("button", { type: "button", class: "btn small secondary", title: "remove", "data-testid": "filter-remove", onclick: () => { row.remove(); updateFilterPreview(); } }, "×"));
  $("#filter-rows").append(row);
  updateFilterPreview();
  return row;
}

/** "12" → 12, "true" → true, '"00123"' → "00123" (quotes keep a string), else the text. */
function parseValue(text) {
  const t = text.trim();
  if (/^".*"$/.test(t) || /^'.*'$/.test(t)) return t.slice(1, -1);
  if (t === "true") return true;
  if (t === "false") return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;
}

/** The filter object of the builder's rows (null when empty); throws on a bad row. */
function buildFilter() {
  const filter = {};
  for (const row of document.querySelectorAll("#filter-rows .filter-row")) {
    const field = row.querySelector(".f-field").value.trim();
    const op = row.querySelector(".f-op").value;
    const raw = row.querySelector(".f-value").value;
    if (!field && !raw.trim()) continue;
    if (!field) throw new Error(`filter: a row has the value "${raw}" but no field`);
    if (!raw.trim()) throw new Error(`filter: "${field} ${op}" needs a value`);
    if (OPS[op] === null) {
      filter[field] = parseValue(raw);
    } else {
      const num = parseValue(raw);
      if (!isNum(num)) throw new Error(`filter: "${field} ${op} ${raw}": a range needs a number`);
      const prev = filter[field];
      filter[field] = Object.assign(prev && typeof prev === "object" ? prev : {}, { [OPS[op]]: num });
    }
  }
  return Object.keys(filter).length ? filter : null;
}

function updateFilterPreview() {
  const preview = $("#filter-preview");
  try {
    const f = buildFilter();
    preview.textContent = f ? `filter: ${JSON.stringify(f)}` : "";
    preview.style.color = "";
  } catch (err) {
    preview.textContent = err.message;
    preview.style.color = "var(--bad)";
  }
}

// -- search
async function doSearch(offset) {
  const query = $("#search-input").value.trim();
  if (!query) {
    showError("Type a query first.");
    return;
  }
  let filter;
  try {
    filter = buildFilter();
  } catch (err) {
    showError(err);
    return;
  }
  const limit = Math.max(1, Math.min(100, parseInt($("#search-limit").value, 10) || 10));
  const run = searchRun.value || null;
  const button = $("#search-button");
  button.disabled = true;
  $("#search-meta").textContent = "searching…";
  try {
    const data = await api("/search", { method: "POST", body: { query, limit, offset, filter, run } });
    Object.assign(search, { query, offset, limit, run, hits: data.hits || [] });
    renderResults(data, filter);
    if (rulesFor !== run) loadRules();
  } catch (err) {
    $("#search-meta").textContent = "";
    showError(err);
  } finally {
    button.disabled = false;
  }
}

const TITLE_FIELDS = ["title", "name", "product_title"];

function titleField(payload, productId) {
  const keys = Object.keys(payload || {});
  for (const want of TITLE_FIELDS) {
    const key = keys.find((k) => k.toLowerCase() === want && typeof payload[k] === "string" && payload[k]);
    if (key) return key;
  }
  return keys.find((k) => typeof payload[k] === "string" && payload[k] && payload[k] !== productId) || null;
}

function confidenceColor(p) {
  return `hsl(${Math.round(Math.max(0, Math.min(1, p)) * 120)}, 62%, 45%)`;
}

function renderResults(data, filter) {
  const list = clear($("#results"));
  const hits = data.hits || [];
  const filt = filter ? ` · filter ${JSON.stringify(filter)}` : "";
  const first = search.offset + 1;
  $("#search-meta").textContent = `${hits.length ? `results ${first}–${first + hits.length - 1}` : "no results"} for “${search.query}” in ${search.run || "the default run"}${isNum(data.took_ms) ? ` · ${data.took_ms.toFixed(1)} ms` : ""}${filt}`;

  const fired = data.rules_fired || [];
  const firedBox = clear($("#rules-fired"));
  firedBox.classList.toggle("hidden", !fired.length);
  if (fired.length) {
    firedBox.append(h("b", {}, `Rules fired (${fired.length}): `));
    for (const r of fired) {
      firedBox.append(h("div", { "data-testid": "rule-fired" }, h("code", {}, r.id), ` when “${r.when}” exclude “${r.exclude}” · similarity ${fmt(r.similarity)} · ${r.excluded_products ?? "?"} product(s) removed`));
    }
  }

  const fields = new Set();
  for (const hit of hits) {
    const payload = hit.payload || {};
    Object.keys(payload).forEach((k) => fields.add(k));
    const tkey = titleField(payload, hit.product_id);
    const title = tkey ? String(payload[tkey]) : hit.product_id;
    const rest = Object.entries(payload).filter(([k]) => k !== tkey);
    const conf = hit.confidence;
    const explainBtn = h("button", { type: "button", class: "btn small secondary", "data-testid": "explain-button", onclick: () => explain(hit, title, { query: search.query, run: search.run }) }, "Explain");
    list.append(h("li", { class: `result${isExplained(hit.product_id) ? " explained" : ""}`, "data-testid": "result", "data-product-id": hit.product_id },
      h("div", { class: "rank", "data-testid": "result-rank" }, hit.rank),
      h("div", {},
        h("div", { class: "title", "data-testid": "result-title" }, title),
        h("div", { class: "pid", "data-testid": "result-id" }, hit.product_id),
        h("div", { class: "fields" }, rest.map(([k, v]) => {
          const text = v !== null && typeof v === "object" ? JSON.stringify(v) : String(v);
          return h("span", { class: text.length > 60 ? "long" : null, title: text, "data-testid": "result-field", "data-field": k }, h("b", {}, `${k}: `), text);
        }))),
      h("div", { class: "side" },
        h("div", { class: "score", "data-testid": "result-score" }, `score ${fmt(hit.score, 3)}`),
        h("div", { class: "confidence", "data-testid": "confidence", title: isNum(conf) ? "estimated probability that this result is relevant" : (data.confidence_note || "no confidence for this result") },
          h("div", { class: "bar" }, h("div", { style: { width: `${isNum(conf) ? Math.round(conf * 100) : 0}%`, background: isNum(conf) ? confidenceColor(conf) : "transparent" } })),
          h("span", { class: "pct" }, pct(conf))),
        explainBtn)));
  }
  const dl = clear($("#payload-fields"));
  for (const f of fields) dl.append(h("option", { value: f }));
  $("#pager").classList.toggle("hidden", !(search.offset > 0 || hits.length === search.limit));
  $("#prev-page").disabled = search.offset === 0;
  $("#next-page").disabled = hits.length < search.limit;
}

