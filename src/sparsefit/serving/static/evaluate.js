/* #evaluate: evaluate base models and finished runs' models on judged queries, as `sparsefit evaluate` does
 * (POST /api/evaluations: a background job), the evaluations kept in the workspace (polled while one runs) and
 * the selected one (#evaluate/<id>): its state, progress, the CLI's report table and the log. */
import { api, enc } from "./api.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { fileOptions, files, loadFiles, uploadFile } from "./files.js";
import { basename, fmt, fmtDuration, fmtTime } from "./format.js";
import { loadRuns, state } from "./state.js";

const BASES = ["splade-tiny", "minilm-l6"]; // the offline base models
const POLL_MS = 1500;
const view = { list: [], selected: null, detail: null };
const active = (e) => e.status === "running" || e.status === "queued";

export function init() {
  $("#eval-form").addEventListener("submit", submit);
  $("#evals-refresh").addEventListener("click", () => refresh());
  $("#eval-new").addEventListener("click", () => { location.hash = "#evaluate"; });
  $("#eval-cancel").addEventListener("click", cancelEvaluation);
  $("#eval-delete").addEventListener("click", deleteEvaluation);
  $("#eval-split").addEventListener("change", updateHint);
  $("#eval-judgments").addEventListener("change", updateHint);
  for (const [input, select] of [["#eval-catalog-upload", "#eval-catalog"], ["#eval-judgments-upload", "#eval-judgments"]]) {
    $(input).addEventListener("change", async (ev) => {
      try {
        const saved = await uploadFile(ev.target);
        if (!saved) return;
        renderFiles();
        $(select).value = saved.path;
        updateHint();
      } catch (err) {
        showError(err);
      }
    });
  }
}

/** The tab is shown; #evaluate/<id> selects that evaluation, #evaluate alone shows the form. */
export function show(arg) {
  view.selected = arg ? decodeURIComponent(arg) : null;
  view.detail = null;
  $("#eval-form-card").classList.toggle("hidden", !!view.selected);
  $("#eval-detail").classList.toggle("hidden", !view.selected);
  if (!view.selected) loadForm();
  refresh();
}

async function loadForm() {
  try {
    await Promise.all([loadFiles(), loadRuns()]);
    renderFiles();
    renderModels();
  } catch (err) {
    showError(err);
  }
}

function renderFiles() {
  fileOptions($("#eval-catalog"), files.list.length ? "— choose a catalog —" : "— no data files found: upload one —");
  fileOptions($("#eval-judgments"), "— choose the judged queries —");
}

const finishedRuns = () => state.runs.filter((r) => r.status === "finished");

function renderModels() {
  const runsBox = $("#eval-runs");
  const ticked = new Set([...runsBox.querySelectorAll("input:checked")].map((i) => i.value));
  clear(runsBox);
  for (const run of finishedRuns()) {
    runsBox.append(h("label", { title: `${run.catalog || ""}${run.judgments ? `\n${run.judgments}` : ""}` },
      h("input", { type: "checkbox", value: run.name, "data-testid": "eval-run", "data-run": run.name, checked: ticked.has(run.name),
        onchange: (ev) => { if (ev.target.checked) suggestSplit(run); updateHint(); } }),
      h("span", { class: "nm" }, run.name), h("span", { class: "val", title: "its final nDCG@10" }, fmt(run.final_ndcg))));
  }
  if (!finishedRuns().length) runsBox.append(h("p", { class: "muted small" }, "No finished run yet."));
  const basesBox = $("#eval-bases");
  if (!basesBox.children.length) {
    for (const name of BASES) {
      basesBox.append(h("label", {}, h("input", { type: "checkbox", value: name, "data-testid": "eval-base", "data-model": name }),
        h("span", { class: "nm" }, name)));
    }
  }
  const split = $("#eval-split");
  const keep = split.value;
  clear(split).append(h("option", { value: "" }, "a random split (test fraction, seed)"));
  for (const run of finishedRuns()) split.append(h("option", { value: run.name }, `run ${run.name}'s held-out queries`));
  if ([...split.options].some((o) => o.value === keep)) split.value = keep;
  updateHint();
}

// A run's model is measured honestly only on queries it never trained on: its own split holds them out.
function suggestSplit(run) {
  const split = $("#eval-split");
  if (!split.value) split.value = run.name;
  const judgments = $("#eval-judgments");
  if (!judgments.value && run.judgments && [...judgments.options].some((o) => o.value === run.judgments)) judgments.value = run.judgments;
  const catalog = $("#eval-catalog");
  if (!catalog.value && run.catalog && [...catalog.options].some((o) => o.value === run.catalog)) catalog.value = run.catalog;
}

function updateHint() {
  const runs = [...document.querySelectorAll("[data-testid=eval-run]:checked")].map((i) => i.value);
  const split = $("#eval-split").value;
  let hint = "";
  if (runs.length && !split) hint = "A random split may hold out queries that a run trained on: pick a run's held-out queries to compare fairly.";
  else if (split) {
    const run = state.runs.find((r) => r.name === split);
    const judgments = $("#eval-judgments").value;
    if (run && run.judgments && judgments && run.judgments !== judgments) hint = `Run ${split} was split on ${basename(run.judgments)}: its split fits those judgments.`;
  }
  $("#eval-hint").textContent = hint;
}

async function submit(ev) {
  ev.preventDefault();
  const catalog = $("#eval-catalog").value;
  const judgments = $("#eval-judgments").value;
  if (!catalog || !judgments) {
    showError("Choose a catalog and a judgments file (or upload them) before starting an evaluation.");
    return;
  }
  const runs = [...document.querySelectorAll("[data-testid=eval-run]:checked")].map((i) => i.value);
  const models = [...document.querySelectorAll("[data-testid=eval-base]:checked")].map((i) => i.value);
  const folder = $("#eval-model-folder").value.trim();
  if (folder) models.push(folder);
  if (!runs.length && !models.length) {
    showError("Tick at least one run or base model to evaluate.");
    return;
  }
  const options = { bm25: $("#eval-bm25").checked, retrieval: $("#eval-retrieval").value };
  const fraction = $("#eval-test-fraction").value.trim();
  const seed = $("#eval-seed").value.trim();
  if (fraction) options.test_fraction = Number(fraction);
  if (seed) options.seed = Number(seed);
  const body = { catalog, judgments, runs, models, options, name: $("#eval-name").value.trim() || null,
    split_run: $("#eval-split").value || null };
  const button = $("#eval-start");
  button.disabled = true;
  $("#eval-status").textContent = "starting…";
  try {
    const job = await api("/api/evaluations", { method: "POST", body });
    $("#eval-status").textContent = "";
    $("#eval-name").value = "";
    location.hash = `#evaluate/${job.id}`;
  } catch (err) {
    $("#eval-status").textContent = "";
    showError(err);
  } finally {
    button.disabled = false;
  }
}

let timer = null;
let busy = false;
let again = false;

/** Reload the list (and the selected evaluation); polls again while any evaluation is queued or running. */
export async function refresh() {
  if (busy) {
    again = true; // e.g. another evaluation was selected while a poll was in flight
    return;
  }
  busy = true;
  again = false;
  clearTimeout(timer);
  try {
    view.list = (await api("/api/evaluations")).evaluations || [];
    renderList();
    if (view.selected) {
      try {
        view.detail = await api(`/api/evaluations/${enc(view.selected)}`);
      } catch (err) {
        if (err.status === 404) location.hash = "#evaluate";
        throw err;
      }
      renderDetail();
    }
  } catch (err) {
    showError(err);
  } finally {
    busy = false;
    if (again) refresh();
    else if (state.tab === "evaluate" && view.list.some(active)) timer = setTimeout(refresh, POLL_MS);
  }
}

function renderList() {
  const list = clear($("#eval-list"));
  $("#eval-empty").classList.toggle("hidden", view.list.length > 0);
  for (const e of view.list) {
    const best = e.report && e.report.best ? `best ${e.report.best} ${fmt(e.report.best_ndcg)}` : basename(e.judgments);
    list.append(h("li", {
      class: e.id === view.selected ? "selected" : null, tabindex: 0, "data-testid": "eval-item", "data-eval-id": e.id, "data-name": e.run,
      onclick: () => { location.hash = `#evaluate/${e.id}`; },
      onkeydown: (ev) => { if (ev.key === "Enter") location.hash = `#evaluate/${e.id}`; },
    }, h("span", { class: "name", title: e.run }, e.run), h("span", { class: `badge ${e.status}`, "data-testid": "eval-badge" }, e.status),
    h("span", { class: "sub" }, `${fmtTime(e.started || e.created)} · ${e.models.length} model${e.models.length === 1 ? "" : "s"} · ${best}`)));
  }
}

function renderDetail() {
  const e = view.detail;
  if (!e) return;
  $("#eval-title").textContent = e.run;
  const end = e.finished || (e.status === "running" ? Date.now() / 1000 : null);
  const split = e.split ? `held-out queries of run ${basename(e.split.replace(/[\\/]split\.json$/, ""))}` : "random split";
  $("#eval-meta").textContent = [`job ${e.id}`, `started ${fmtTime(e.started)}`, `elapsed ${fmtDuration(end && e.started ? end - e.started : null)}`,
    `catalog ${basename(e.catalog)}`, `judgments ${basename(e.judgments)}`, split, `models: ${e.models.map((m) => m.label).join(", ")}`,
    e.options && e.options.retrieval !== "sparse" ? `retrieval ${e.options.retrieval}` : ""].filter(Boolean).join(" · ");
  const badge = $("#eval-state");
  badge.textContent = e.status;
  badge.className = `badge ${e.status}`;
  $("#eval-cancel").classList.toggle("hidden", !active(e));
  $("#eval-delete").classList.toggle("hidden", active(e));
  const p = e.progress || {};
  const stages = clear($("#eval-stages"));
  const stage = (done, current, text, testid) => h("span", { class: `stage ${done ? "done" : current ? "current" : "pending"}`, "data-testid": testid },
    done ? "✓ " : current ? "▸ " : "", text);
  const running = e.status === "running";
  stages.append(stage(p.inputs, running && !p.inputs, "inputs and split", "eval-stage"),
    stage(p.indexed === p.models, running && p.inputs && p.indexed < p.models, `models indexed ${p.indexed} / ${p.models}`, "eval-stage"),
    stage(p.report, running && p.indexed === p.models && !p.report, "report", "eval-stage"));
  $("#eval-reason").textContent = e.reason || e.problem || (e.status === "queued" ? "queued: starts when the running training or evaluation ends" : "");
  renderReport(e.report);
  const log = $("#eval-log");
  const text = (e.log || []).join("\n") || "(no output yet)";
  if (log.textContent !== text) {
    log.textContent = text;
    log.scrollTop = log.scrollHeight;
  }
}

function renderReport(report) {
  const table = clear($("#eval-table"));
  $("#eval-report-title").textContent = report ? report.title : "Report";
  $("#eval-scheme").textContent = report && report.label_scheme ? `labels: ${report.label_scheme}` : "";
  if (!report) {
    table.append(h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, view.detail && active(view.detail) ? "The report appears when the evaluation has finished." : "No report."))));
    return;
  }
  table.append(h("thead", {}, h("tr", {}, report.columns.map((c) => h("th", {}, c)))));
  const body = h("tbody");
  for (const row of report.rows) {
    const label = (report.labels || {})[row[0]];
    body.append(h("tr", { "data-testid": "eval-row", "data-system": row[0], class: row[0] === report.best ? "final" : null },
      h("td", {}, row[0], label ? h("span", { class: "muted small" }, `  ${label}`) : null),
      row.slice(1).map((cell) => h("td", { class: "num" }, cell))));
  }
  table.append(body);
}

async function cancelEvaluation() {
  const e = view.detail;
  if (!e || !window.confirm(`Cancel the evaluation "${e.run}"?`)) return;
  try {
    await api(`/api/evaluations/${enc(e.id)}/cancel`, { method: "POST" });
  } catch (err) {
    showError(err);
  }
  refresh();
}

async function deleteEvaluation() {
  const e = view.detail;
  if (!e || !window.confirm(`Delete the evaluation "${e.run}": its report and indexes?`)) return;
  try {
    await api(`/api/evaluations/${enc(e.id)}`, { method: "DELETE" });
    location.hash = "#evaluate";
  } catch (err) {
    showError(err);
  }
}
