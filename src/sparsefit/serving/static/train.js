/* #train: the form that starts a training run. Pick (or upload) a catalog and judgments under the allowed
 * roots, set rounds, base model and advanced options (empty: the server's Settings defaults), start. */
import { api } from "./api.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { fmtBytes, isNum } from "./format.js";
import { followNewJob } from "./jobs.js";

const train = {
  files: [],      // GET /api/files: data files under the allowed roots, plus this page's uploads
  roots: [],
  defaults: null, // GET /api/defaults: the training settings an empty field stands for
};

let catalogSelect;
let judgmentsSelect;

export function init() {
  catalogSelect = $("#catalog-select");
  judgmentsSelect = $("#judgments-select");
  catalogSelect.addEventListener("change", updateFileHints);
  judgmentsSelect.addEventListener("change", updateFileHints);
  $("#catalog-upload").addEventListener("change", (ev) => upload(ev.target, catalogSelect));
  $("#judgments-upload").addEventListener("change", (ev) => upload(ev.target, judgmentsSelect));
  $("#train-form").addEventListener("submit", submit);
}

/** The tab is shown: (re)load the file lists (and the defaults, once). */
export function show() {
  loadFiles();
}

// The form's defaults are the server's Settings defaults: fill them in once.
async function loadDefaults() {
  if (train.defaults) return;
  train.defaults = (await api("/api/defaults")).training || {};
  const base = $("#base-model");
  if (!base.value) base.value = train.defaults.base_model || "";
  const rounds = $("#rounds");
  if (!rounds.value && isNum(train.defaults.rounds)) rounds.value = String(train.defaults.rounds);
  for (const input of document.querySelectorAll("[data-opt]")) {
    const value = train.defaults[input.dataset.opt];
    if (value === null || value === undefined) continue;
    if (input.tagName === "SELECT") input.options[0].textContent = `default (${value})`;
    else input.placeholder = `default ${value}`;
  }
}

async function loadFiles() {
  try {
    await loadDefaults();
    const data = await api("/api/files");
    train.files = data.files || [];
    train.roots = data.roots || [];
    renderFileSelects();
  } catch (err) {
    showError(err);
  }
}

function fileOptions(select, placeholder) {
  const keep = select.value;
  clear(select).append(h("option", { value: "" }, placeholder));
  const byRoot = new Map();
  for (const f of train.files) {
    const root = (train.roots || []).find((r) => f.path.startsWith(r)) || f.path.slice(0, f.path.length - f.name.length);
    if (!byRoot.has(root)) byRoot.set(root, []);
    byRoot.get(root).push(f);
  }
  for (const [root, files] of byRoot) {
    const group = h("optgroup", { label: root });
    for (const f of files) {
      const rel = f.path.startsWith(root) ? f.path.slice(root.length).replace(/^[\\/]/, "") : f.name;
      group.append(h("option", { value: f.path, "data-name": f.name, title: f.path }, `${rel || f.name}  (${fmtBytes(f.size)})`));
    }
    select.append(group);
  }
  if (keep && [...select.options].some((o) => o.value === keep)) select.value = keep;
}

function renderFileSelects() {
  fileOptions(catalogSelect, train.files.length ? "— choose a catalog —" : "— no data files found: upload one —");
  fileOptions(judgmentsSelect, "(none: generate training queries from the catalog)");
  updateFileHints();
}

function updateFileHints() {
  for (const [select, hint] of [[catalogSelect, "#catalog-hint"], [judgmentsSelect, "#judgments-hint"]]) {
    $(hint).textContent = select.value || "";
  }
}

async function upload(input, select) {
  const file = input.files && input.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const status = $("#train-status");
  status.textContent = `uploading ${file.name}…`;
  try {
    const saved = await api("/api/uploads", { method: "POST", form });
    if (!train.files.some((f) => f.path === saved.path)) train.files.push(saved);
    renderFileSelects();
    select.value = saved.path;
    updateFileHints();
    status.textContent = `uploaded ${saved.name} (${fmtBytes(saved.size)})`;
  } catch (err) {
    status.textContent = "";
    showError(err);
  } finally {
    input.value = "";
  }
}

async function submit(ev) {
  ev.preventDefault();
  const button = $("#start-run");
  const catalog = catalogSelect.value;
  if (!catalog) {
    showError("Choose a catalog file (or upload one) before starting a run.");
    return;
  }
  const rounds = parseInt($("#rounds").value, 10);
  if (!Number.isInteger(rounds) || rounds < 1) {
    showError("Rounds must be a whole number ≥ 1.");
    return;
  }
  const options = { rounds };
  const baseModel = $("#base-model").value.trim();
  if (baseModel) options.base_model = baseModel;
  for (const input of document.querySelectorAll("[data-opt]")) {
    if (input.value.trim() !== "") options[input.dataset.opt] = input.type === "number" ? Number(input.value) : input.value;
  }
  const body = {
    catalog,
    judgments: judgmentsSelect.value || null,
    name: $("#run-name").value.trim() || null,
    options,
  };
  button.disabled = true;
  $("#train-status").textContent = "starting…";
  try {
    const job = await api("/api/jobs", { method: "POST", body });
    $("#train-status").textContent = `started job ${job.id}`;
    $("#run-name").value = "";
    followNewJob(job);
  } catch (err) {
    $("#train-status").textContent = "";
    showError(err);
  } finally {
    button.disabled = false;
  }
}
