/* #collections: every index the studio knows (GET /api/collections): the Qdrant Edge folders of the workspace's
 * runs and evaluations and, when Settings name one, a Qdrant server's collections: points, named vectors and
 * their modifier, dense vectors, size on disk, the model and the run that made it. Delete asks for the name to
 * be typed again, and the server checks it too ({"confirm": name}). */
import { api, enc } from "./api.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { fmtBytes, isNum } from "./format.js";

const view = { data: null, pending: null }; // pending: the index whose deletion waits for its typed name

export function init() {
  $("#collections-refresh").addEventListener("click", load);
  $("#delete-name").addEventListener("input", () => {
    $("#delete-go").disabled = !view.pending || $("#delete-name").value !== view.pending.name;
  });
  $("#delete-name").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !$("#delete-go").disabled) remove(); });
  $("#delete-go").addEventListener("click", remove);
  $("#delete-cancel").addEventListener("click", closeConfirm);
}

/** The tab is shown: list the indexes again. */
export function show() {
  load();
}

async function load() {
  const note = $("#server-note");
  try {
    view.data = await api("/api/collections");
  } catch (err) {
    showError(err);
    return;
  }
  render($("#edge-table"), view.data.edge || [], "edge", "No index yet: a finished run or evaluation has one.");
  const server = view.data.server || {};
  note.className = `muted small${server.error ? " down" : ""}`;
  note.textContent = server.error ? server.error
    : server.url ? `${server.url}: ${(server.collections || []).length} collection${(server.collections || []).length === 1 ? "" : "s"}` +
      (server.truncated ? " (the first 500)" : "") + "; the server does not report sizes on disk"
      : "No Qdrant server is set: give its URL in Settings to list its collections here.";
  render($("#server-table"), server.url && !server.error ? server.collections || [] : [], "server",
    server.url && !server.error ? "The server has no collection." : null);
}

/** The named vectors: sparse ones with their modifier (idf: the engine weighs terms), dense ones with size and distance. */
function vectors(c) {
  const line = (label, items) => (items.length ? h("div", {}, h("span", { class: "muted" }, `${label}: `), items.flatMap((x, i) => (i ? [" ", x] : [x]))) : null);
  const sparse = (c.sparse_vectors || []).map((v) => h("code", { title: `sparse vector ${v.name}, modifier ${v.modifier}` },
    `${v.name || "(default)"}${v.modifier && v.modifier !== "none" ? ` (${v.modifier})` : ""}`));
  const dense = (c.dense_vectors || []).map((v) => h("code", { title: `dense vector ${v.name}` },
    `${v.name || "(default)"} (${v.size}d, ${String(v.distance || "").toLowerCase()})`));
  return h("td", { class: "vectors wrap left", "data-testid": "collection-vectors" }, line("sparse", sparse), line("dense", dense));
}

function madeBy(c) {
  if (!c.owner) return h("td", { class: "muted left" }, "—");
  const words = { run: "run", evaluation: "evaluation", served: "served run" }[c.kind] || c.kind;
  const link = c.kind === "evaluation" ? "#evaluate" : "#compare";
  return h("td", { class: "left", "data-testid": "collection-owner" }, `${words} `, h("a", { href: link }, c.owner));
}

function render(table, items, engine, empty) {
  clear(table);
  if (!items.length) {
    if (empty) table.append(h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, empty))));
    return;
  }
  const left = new Set(["made by", "vectors", "model"]);
  table.append(h("thead", {}, h("tr", {}, ["index", "made by", "points", "vectors", "size on disk", "model", ""].map((t) => h("th", { class: left.has(t) ? "left" : null }, t)))));
  const body = h("tbody");
  for (const c of items) {
    const why = !c.deletable ? "a run served from outside the workspace: the studio deletes only its own" : c.in_use ? `in use by ${c.in_use}` : null;
    body.append(h("tr", { "data-testid": `${engine}-row`, "data-name": c.name },
      h("td", { class: "wrap" }, h("b", {}, c.name), c.in_use ? h("span", { class: "badge running", title: c.in_use, style: { marginLeft: "6px" } }, "in use") : null),
      madeBy(c),
      h("td", { class: "num", "data-testid": "collection-points", title: c.note || "" }, isNum(c.points) ? c.points.toLocaleString("en-US") : "—"),
      vectors(c),
      h("td", { class: "num", "data-testid": "collection-size" }, isNum(c.size_bytes) ? fmtBytes(c.size_bytes) : "—"),
      h("td", { class: "wrap left" }, c.model || "—"),
      h("td", {}, h("button", { type: "button", class: "btn danger small", "data-testid": "collection-delete", disabled: !!why, title: why || `delete ${c.name}`,
        onclick: () => askDelete(c, engine) }, "Delete"))));
  }
  table.append(body);
}

function askDelete(c, engine) {
  view.pending = { ...c, engine };
  $("#delete-title").textContent = engine === "edge" ? `Delete the index ${c.name}?` : `Delete the collection ${c.name} on ${view.data.server.url}?`;
  const points = isNum(c.points) ? `${c.points.toLocaleString("en-US")} points` : "its points";
  $("#delete-what").textContent = engine === "server" ? `The collection and ${points} are deleted from the server for good.`
    : c.kind === "evaluation" ? `Its folder (${fmtBytes(c.size_bytes)}, ${points}) is removed for good; the evaluation keeps its report.`
      : `Its folder (${fmtBytes(c.size_bytes)}, ${points}) is removed for good. The run keeps its model and report, but cannot be searched until its catalog is indexed again (sparsefit index CATALOG --model RUN --output RUN/index).`;
  $("#delete-name-shown").textContent = c.name;
  $("#delete-name").value = "";
  $("#delete-go").disabled = true;
  const box = $("#delete-confirm");
  box.classList.remove("hidden");
  box.scrollIntoView({ block: "nearest" });
  $("#delete-name").focus();
}

function closeConfirm() {
  view.pending = null;
  $("#delete-confirm").classList.add("hidden");
}

async function remove() {
  const target = view.pending;
  if (!target || $("#delete-name").value !== target.name) return;
  $("#delete-go").disabled = true;
  try {
    await api(`/api/collections/${target.engine}/${target.name.split("/").map(enc).join("/")}`, { method: "DELETE", body: { confirm: $("#delete-name").value } });
    closeConfirm();
  } catch (err) {
    showError(err);
    $("#delete-go").disabled = false;
    return;
  }
  load();
}
