/* #settings: defaults for new runs, the LLM that writes training queries when a run has no judgments, and the
 * Qdrant server the Collections page lists, saved in the workspace (PUT /api/settings). Keys are write-only:
 * the page learns only whether each is set; an empty key field keeps the stored key, "remove the stored key"
 * clears it, and a typed key leaves the page's fields once saved. */
import { api } from "./api.js";
import { $ } from "./dom.js";
import { showError } from "./errors.js";

const unset = (v) => v === null || v === undefined || v === "";

export function init() {
  $("#settings-form").addEventListener("submit", save);
  for (const box of document.querySelectorAll("[data-clear]")) {
    box.addEventListener("change", () => {
      const input = $(`[data-secret=${box.dataset.clear}]`);
      input.disabled = box.checked;
      if (box.checked) input.value = "";
    });
  }
}

/** The tab is shown: read the saved settings again. */
export function show() {
  $("#settings-status").textContent = "";
  load();
}

async function load() {
  try {
    render(await api("/api/settings"));
  } catch (err) {
    showError(err);
  }
}

/** A field's placeholder: the default an empty field stands for, else what the page says for "none". */
function placeholder(input, value) {
  if (input.dataset.none === undefined) input.dataset.none = input.placeholder;
  input.placeholder = unset(value) ? input.dataset.none || "none" : `default ${value}`;
}

function render(data) {
  const defaults = data.defaults || {};
  for (const input of document.querySelectorAll("[data-setting]")) {
    const key = input.dataset.setting;
    const value = (data.training || {})[key];
    input.value = unset(value) ? "" : String(value);
    const fallback = (defaults.training || {})[key];
    if (input.tagName === "SELECT") input.options[0].textContent = unset(fallback) ? "default" : `default (${fallback})`;
    else placeholder(input, fallback);
  }
  for (const input of document.querySelectorAll("[data-top]")) {
    input.value = data[input.dataset.top] || "";
    placeholder(input, defaults[input.dataset.top]);
  }
  for (const input of document.querySelectorAll("[data-secret]")) {
    const set = !!(data[input.dataset.secret] || {}).set;
    input.value = "";
    input.disabled = false;
    input.placeholder = set ? "stored: leave empty to keep it, or type a new key" : "not set";
    const badge = $(`#${input.dataset.secret === "llm_api_key" ? "llm" : "qdrant"}-key-state`);
    badge.textContent = set ? "set" : "not set";
    badge.className = `badge ${set ? "finished" : "queued"}`;
  }
  for (const box of document.querySelectorAll("[data-clear]")) box.checked = false;
  $("#settings-problem").textContent = data.problem || "";
}

async function save(ev) {
  ev.preventDefault();
  const training = {};
  for (const input of document.querySelectorAll("[data-setting]")) {
    const text = input.value.trim();
    if (text !== "") training[input.dataset.setting] = input.type === "number" ? Number(text) : text;
  }
  const body = { training, clear: [] };
  for (const input of document.querySelectorAll("[data-top]")) body[input.dataset.top] = input.value.trim() || null;
  for (const input of document.querySelectorAll("[data-secret]")) {
    if (input.value.trim()) body[input.dataset.secret] = input.value.trim(); // empty: the stored key stays
  }
  for (const box of document.querySelectorAll("[data-clear]")) if (box.checked) body.clear.push(box.dataset.clear);
  const button = $("#settings-save");
  const status = $("#settings-status");
  button.disabled = true;
  status.textContent = "saving…";
  try {
    render(await api("/api/settings", { method: "PUT", body }));
    status.textContent = "saved: new runs start from these settings";
  } catch (err) {
    status.textContent = "";
    showError(err);
  } finally {
    button.disabled = false;
  }
}
