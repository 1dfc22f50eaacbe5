/* #publish: push a finished run's model and card to a model hub (POST /api/publish: `sparsefit publish --repo`
 * in a background job), or pack it as a .tar.gz and download it (`--to`). The token field is sent with that one
 * request and emptied once it is accepted; the server never stores it nor sends it back. */
import { api, enc } from "./api.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { basename, fmtBytes, fmtTime } from "./format.js";
import { loadRuns, state } from "./state.js";

const POLL_MS = 1500;
const view = { jobs: [], download: new Set(), last: null }; // download: archive jobs started here, fetched once written; last: the job started here last
const active = (j) => j.status === "running" || j.status === "queued";

export function init() {
  $("#publish-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    start(false);
  });
  $("#archive-go").addEventListener("click", () => start(true));
  $("#publish-refresh").addEventListener("click", () => refresh());
}

/** The tab is shown: the finished runs to pick from, and the jobs. */
export function show() {
  loadRuns().then(renderRuns);
  refresh();
}

function renderRuns() {
  const select = $("#publish-run");
  const keep = select.value;
  const finished = state.runs.filter((r) => r.status === "finished");
  clear(select).append(h("option", { value: "" }, finished.length ? "— choose a finished run —" : "— no finished run yet —"));
  for (const run of finished) select.append(h("option", { value: run.name }, run.name));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

async function start(archiveOnly) {
  const run = $("#publish-run").value;
  if (!run) {
    showError("Choose the finished run to publish.");
    return;
  }
  const repo = $("#publish-repo").value.trim();
  if (!archiveOnly && !repo) {
    showError("Give the hub repository (ORG/NAME) to publish to, or use Download as .tar.gz.");
    return;
  }
  const body = archiveOnly ? { run, archive: true } : {
    run, repo, token: $("#publish-token").value.trim() || null, private: $("#publish-private").checked,
    revision: $("#publish-revision").value.trim() || null, endpoint: $("#publish-endpoint").value.trim() || null,
    license: $("#publish-license").value.trim() || null,
  };
  if (archiveOnly && $("#publish-license").value.trim()) body.license = $("#publish-license").value.trim();
  const status = $("#publish-status");
  status.textContent = archiveOnly ? "packing…" : "publishing…";
  for (const b of [$("#publish-go"), $("#archive-go")]) b.disabled = true;
  try {
    const job = await api("/api/publish", { method: "POST", body });
    if (!archiveOnly) $("#publish-token").value = ""; // used for this call only
    if (archiveOnly) view.download.add(job.id);
    view.last = job.id;
    status.textContent = `job ${job.id} ${job.status}`;
  } catch (err) {
    status.textContent = "";
    showError(err);
  } finally {
    for (const b of [$("#publish-go"), $("#archive-go")]) b.disabled = false;
  }
  refresh();
}

let timer = null;
let busy = false;

/** Reload the jobs; polls again while one is queued or running, and downloads an archive started here once it is written. */
export async function refresh() {
  if (busy) return;
  busy = true;
  clearTimeout(timer);
  try {
    view.jobs = (await api("/api/publish")).jobs || [];
    render();
    const last = view.jobs.find((j) => j.id === view.last);
    if (last) $("#publish-status").textContent = `job ${last.id} ${last.status}${last.status === "failed" ? ": see its reason below" : ""}`;
    for (const job of view.jobs) {
      if (view.download.has(job.id) && !active(job)) {
        view.download.delete(job.id);
        if (job.archive_url) {
          const link = h("a", { href: job.archive_url, download: basename(job.archive), class: "hidden" });
          document.body.append(link);
          link.click();
          link.remove();
        }
      }
    }
  } catch (err) {
    showError(err);
  } finally {
    busy = false;
    if (state.tab === "publish" && view.jobs.some(active)) timer = setTimeout(refresh, POLL_MS);
  }
}

function render() {
  const table = clear($("#publish-table"));
  if (!view.jobs.length) {
    table.append(h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, "Nothing published yet."))));
    return;
  }
  table.append(h("thead", {}, h("tr", {}, ["run", "to", "state", "started", "result"].map((t) => h("th", { class: "left" }, t)))));
  const body = h("tbody");
  for (const job of view.jobs) {
    const targets = [job.repo ? `${job.repo}${job.revision ? ` @ ${job.revision}` : ""}${job.private ? " (private)" : ""}` : null,
      job.archive ? ".tar.gz" : null].filter(Boolean).join(" + ");
    const result = [];
    if (job.commit_url) result.push(h("a", { href: job.commit_url, target: "_blank", rel: "noopener noreferrer", "data-testid": "commit-link" }, "commit"));
    if (job.archive_url) {
      result.push(h("a", { href: job.archive_url, download: basename(job.archive), "data-testid": "archive-link" },
        `download ${basename(job.archive)} (${fmtBytes(job.archive_size)})`));
    }
    if (job.reason) result.push(h("span", { class: "muted", "data-testid": "publish-reason" }, job.reason));
    body.append(h("tr", { "data-testid": "publish-row", "data-job-id": job.id, "data-run": job.run },
      h("td", {}, job.run), h("td", { class: "wrap left" }, targets),
      h("td", { class: "left" }, h("span", { class: `badge ${job.status}`, "data-testid": "publish-state" }, job.status),
        active(job) ? h("button", { type: "button", class: "btn danger small", style: { marginLeft: "6px" }, "data-testid": "publish-cancel",
          onclick: () => cancel(job) }, "Cancel") : null),
      h("td", { class: "left" }, fmtTime(job.started || job.created)),
      h("td", { class: "result-line left" }, result.flatMap((r, i) => (i ? [" · ", r] : [r])))));
  }
  table.append(body);
}

async function cancel(job) {
  if (!window.confirm(`Cancel publishing ${job.run}?`)) return;
  try {
    await api(`/api/publish/${enc(job.id)}/cancel`, { method: "POST" });
  } catch (err) {
    showError(err);
  }
  refresh();
}
