/* #search: search a finished run (query, limit, retrieval, payload filters and boosts from their builders,
 * paging), the run's exclusion rules and the rules that fired, each hit with score and calibrated confidence;
 * "Explain" opens the explanation panel (explain.js). Thumbs on the hits mark them clicked (1) or skipped (0)
 * for the (run, query) shown; "Re-search with feedback" sends the marks as relevance feedback. */
import { api, enc } from "./api.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { explain, isExplained } from "./explain.js";
import { fmt, isNum, pct } from "./format.js";
import { loadRuns, onRuns, state } from "./state.js";

// The search shown: paging repeats it (query, filter, retrieval, feedback, boost) at another offset.
const search = { query: "", offset: 0, limit: 10, run: null, hits: [], filter: null, retrieval: "sparse", feedback: null, boost: null };
let searchRun;
// Feedback marks (product id -> 1 clicked / 0 skipped) of one (run, query); another run or query drops them.
const marks = { run: null, query: null, items: new Map() };
const RETRIEVALS = { sparse: "tuned model", bm25: "Qdrant", dense: "dense model", hybrid: "model + BM25", "hybrid-dense": "model + BM25 + dense" }; // for the meta line
const NO_FEEDBACK = "feedback needs the model: choose retrieval “tuned model” or “hybrid”";
// Rules need the run's search service (a model load): fetched when the box is opened or after a search.
let rulesFor = null; // the run whose rules the box shows

export function init() {
searchRun = $("#search-run");
onRuns(renderSearchRuns);
searchRun.addEventListener("change", () => {
  search.run = searchRun.value || null;
  offerRetrievals();
  rulesFor = null;
  clearMarks();
  if ($("#rules-box").open) loadRules();
  if (search.query) doSearch(0);
});
$("#rules-box").addEventListener("toggle", () => { if ($("#rules-box").open && rulesFor !== search.run) loadRules(); });
$("#add-filter").addEventListener("click", () => addFilterRow().querySelector("input").focus());
$("#add-boost").addEventListener("click", () => addBoostRow().querySelector("input").focus());
$("#search-retrieval").addEventListener("change", updateFeedbackUi);
$("#search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  doSearch(0);
});
$("#prev-page").addEventListener("click", () => doSearch(Math.max(0, search.offset - search.limit), { page: true }));
$("#next-page").addEventListener("click", () => doSearch(search.offset + search.limit, { page: true }));
$("#feedback-search").addEventListener("click", () => doSearch(0, { feedback: true }));
$("#feedback-clear").addEventListener("click", clearMarks);
addFilterRow();
updateFeedbackUi();
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
  offerRetrievals();
  if (searchRun.value !== search.run) {
    search.run = searchRun.value || null;
    rulesFor = null;
    clearMarks();
    if ($("#rules-box").open) loadRules();
  }
}

/** Only the retrieval modes the chosen run's index has (BM25 in newer runs, dense with --dense) can be picked. */
function offerRetrievals() {
  const run = state.runs.find((r) => r.name === searchRun.value);
  const have = run && Array.isArray(run.retrievals) ? run.retrievals : null; // null: not known, offer all
  const select = $("#search-retrieval");
  for (const option of select.options) {
    option.disabled = have !== null && !have.includes(option.value);
    option.title = option.disabled ? "this run's index has no vectors for it" : "";
  }
  if (select.selectedOptions[0] && select.selectedOptions[0].disabled) select.value = "sparse";
  updateFeedbackUi();
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

// -- boost builder: payload field -> weight; the hits are rescored by score · (1 + Σ weight · field)
function addBoostRow(field = "", weight = "") {
  const row = h("div", { class: "filter-row boost-row", "data-testid": "boost-row" },
    h("input", { class: "b-field", "data-testid": "boost-field", placeholder: "field, e.g. in_stock", list: "payload-fields", value: field, oninput: updateBoostPreview }),
    h("span", { class: "muted small" }, "weight"),
    h("input", { class: "b-weight num", "data-testid": "boost-weight", type: "number", step: "any", placeholder: "weight", value: weight, oninput: updateBoostPreview }),
    h("button", { type: "button", class: "btn small secondary", title: "remove", "data-testid": "boost-remove", onclick: () => { row.remove(); updateBoostPreview(); } }, "×"));
  $("#boost-rows").append(row);
  updateBoostPreview();
  return row;
}

/** The boost object of the builder's rows (null when empty); throws on a bad row. */
function buildBoost() {
  const boost = {};
  for (const row of document.querySelectorAll("#boost-rows .boost-row")) {
    const field = row.querySelector(".b-field").value.trim();
    const input = row.querySelector(".b-weight");
    const raw = input.value.trim();
    const bad = input.validity.badInput; // text a number input cannot read: its value is ""
    if (!field && !raw && !bad) continue;
    if (!field) throw new Error(`boost: a row has a weight${raw ? ` (${raw})` : ""} but no field`);
    const weight = Number(raw);
    if (bad || !raw || !isNum(weight)) throw new Error(`boost: "${field}" needs a number as its weight`);
    if (Object.hasOwn(boost, field)) throw new Error(`boost: "${field}" has two rows`);
    boost[field] = weight;
  }
  return Object.keys(boost).length ? boost : null;
}

function updateBoostPreview() {
  const preview = $("#boost-preview");
  try {
    const b = buildBoost();
    preview.textContent = b ? `boost: ${JSON.stringify(b)}` : "";
    preview.style.color = "";
  } catch (err) {
    preview.textContent = err.message;
    preview.style.color = "var(--bad)";
  }
}

// -- feedback marks
function clearMarks() {
  marks.items.clear();
  updateFeedbackUi();
}

/** Mark a product clicked (1) or skipped (0); the same mark again clears it. */
function toggleMark(productId, score) {
  if (marks.items.get(productId) === score) marks.items.delete(productId);
  else {
    marks.items.delete(productId); // re-added last: the marks keep the order they were made in
    marks.items.set(productId, score);
  }
  updateFeedbackUi();
}

/** The thumbs' pressed and disabled states and the feedback buttons, from the marks and the retrieval chosen. */
function updateFeedbackUi() {
  const blocked = ["bm25", "dense"].includes($("#search-retrieval").value);
  for (const item of document.querySelectorAll("#results .result")) {
    const mark = marks.items.get(item.dataset.productId);
    for (const [testid, score] of [["thumb-up", 1], ["thumb-down", 0]]) {
      const button = item.querySelector(`[data-testid=${testid}]`);
      if (!button) continue;
      button.setAttribute("aria-pressed", String(mark === score));
      button.disabled = blocked;
      button.title = blocked ? NO_FEEDBACK : score ? "clicked: relevant (feedback score 1)" : "skipped: not relevant (feedback score 0)";
    }
  }
  const n = marks.items.size;
  $("#feedback-bar").classList.toggle("hidden", !n);
  const again = $("#feedback-search");
  again.textContent = `Re-search with feedback (${n})`;
  again.disabled = blocked;
  again.title = blocked ? NO_FEEDBACK : `“${marks.query ?? ""}” again, with the ${n} mark(s) as relevance feedback`;
}

// -- search
/** Search from offset: the form's query, filter, boost and retrieval; { page: true } repeats the search shown
 * (its feedback included) at another offset; { feedback: true } runs the marked query again with the marks. */
async function doSearch(offset, { page = false, feedback = false } = {}) {
  let query, limit, run, filter, boost, retrieval, items;
  if (page) {
    ({ query, limit, run, filter, boost, retrieval } = search);
    items = search.feedback;
  } else {
    query = feedback ? marks.query : $("#search-input").value.trim();
    if (!query) {
      showError("Type a query first.");
      return;
    }
    try {
      filter = buildFilter();
      boost = buildBoost();
    } catch (err) {
      showError(err);
      return;
    }
    limit = Math.max(1, Math.min(100, parseInt($("#search-limit").value, 10) || 10));
    run = searchRun.value || null;
    retrieval = $("#search-retrieval").value || "sparse";
    items = feedback ? [...marks.items].map(([product_id, score]) => ({ product_id, score })) : null;
    if (feedback) $("#search-input").value = query;
  }
  const button = $("#search-button");
  button.disabled = true;
  $("#search-meta").textContent = "searching…";
  try {
    const body = { query, limit, offset, filter, run, retrieval };
    if (items && items.length) body.feedback = items;
    if (boost) body.boost = boost;
    const data = await api("/search", { method: "POST", body });
    if (marks.run !== run || marks.query !== query) {
      Object.assign(marks, { run, query });
      marks.items.clear();
    }
    Object.assign(search, { query, offset, limit, run, hits: data.hits || [], filter, boost, retrieval, feedback: items && items.length ? items : null });
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
  const retrieval = data.retrieval || search.retrieval;
  const how = ` · retrieval ${retrieval}${RETRIEVALS[retrieval] ? ` (${RETRIEVALS[retrieval]})` : ""}${data.fusion ? `, fusion ${data.fusion}` : ""}`;
  const fb = isNum(data.feedback) && data.feedback > 0 ? ` · feedback: ${data.feedback} item${data.feedback === 1 ? "" : "s"}` : "";
  const boost = data.boost && Object.keys(data.boost).length ? ` · boost ${JSON.stringify(data.boost)}` : "";
  const first = search.offset + 1;
  $("#search-meta").textContent = `${hits.length ? `results ${first}–${first + hits.length - 1}` : "no results"} for “${search.query}” in ${search.run || "the default run"}${isNum(data.took_ms) ? ` · ${data.took_ms.toFixed(1)} ms` : ""}${how}${fb}${filt}${boost}`;

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
    const thumbs = h("div", { class: "thumbs", role: "group", "aria-label": "feedback" },
      h("button", { type: "button", class: "thumb up", "data-testid": "thumb-up", "aria-label": "clicked (relevant)", "aria-pressed": "false", onclick: () => toggleMark(hit.product_id, 1) }, "▲"),
      h("button", { type: "button", class: "thumb down", "data-testid": "thumb-down", "aria-label": "skipped (not relevant)", "aria-pressed": "false", onclick: () => toggleMark(hit.product_id, 0) }, "▼"));
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
        h("div", { class: "actions-row" }, thumbs, explainBtn))));
  }
  updateFeedbackUi();
  const dl = clear($("#payload-fields"));
  for (const f of fields) dl.append(h("option", { value: f }));
  $("#pager").classList.toggle("hidden", !(search.offset > 0 || hits.length === search.limit));
  $("#prev-page").disabled = search.offset === 0;
  $("#next-page").disabled = hits.length < search.limit;
}

