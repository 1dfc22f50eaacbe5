/* #train: the form that starts a training run. Pick (or upload) a catalog and judgments under the allowed
 * roots, set rounds, base model and advanced options (the LLM that writes training queries when there are no
 * judgments among them); an empty field stands for the studio's saved defaults (#settings), else sparsefit's. */
import { api } from "./api.js";
import { $ } from "./dom.js";
import { showError } from "./errors.js";
import { fileOptions, files, loadFiles as fetchFiles, uploadFile } from "./files.js";
import { fmtBytes, isNum } from "./format.js";
import { followNewJob } from "./jobs.js";

const train = {
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
  for (const input of [$("#base-model"), $("#rounds")]) input.addEventListener("input", () => { input.dataset.auto = "0"; });
}

/** The tab is shown: (re)load the defaults (Settings may have changed them) and the file lists. */
export function show() {
  loadFiles();
}

// Rounds and base model start as the defaults (and follow them while the user has not typed over them); the
// other fields stay empty and show the default they stand for.
async function loadDefaults() {
  train.defaults = (await api("/api/defaults")).training || {};
  const base = $("#base-model");
  if (!base.value || base.dataset.auto === "1") {
    base.value = train.defaults.base_model || "";
    base.dataset.auto = "1";
  }
  const rounds = $("#rounds");
  if ((!rounds.value || rounds.dataset.auto === "1") && isNum(train.defaults.rounds)) {
    rounds.value = String(train.defaults.rounds);
    rounds.dataset.auto = "1";
  }
  for (const input of document.querySelectorAll("[data-opt]")) {
    const value = train.defaults[input.dataset.opt];
    const unset = value === null || value === undefined;
    if (input.tagName === "SELECT") {
      input.options[0].textContent = unset ? "default" : `default (${value})`;
    } else {
      if (input.dataset.none === undefined) input.dataset.none = input.placeholder; // what an unset default says
      input.placeholder = unset ? input.dataset.none : `default ${value}`;
    }
  }
}

async function loadFiles() {
  try {
    await loadDefaults();
    await fetchFiles();
    renderFileSelects();
  } catch (err) {
    showError(err);
  }
}

function renderFileSelects() {
  fileOptions(catalogSelect, files.list.length ? "— choose a catalog —" : "— no data files found: upload one —");
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
  const status = $("#train-status");
  status.textContent = `uploading ${file.name}…`;
  try {
    const saved = await uploadFile(input);
    renderFileSelects();
    select.value = saved.path;
    updateFileHints();
    status.textContent = `uploaded ${saved.name} (${fmtBytes(saved.size)})`;
  } catch (err) {
    status.textContent = "";
    showError(err);
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
