/* #jobs: the job list (polled while a job runs; the nav's running-count badge too) and the selected job:
 * status, stages, live progress, loss and nDCG@10 charts, the systems table and the log. */
import { api, enc } from "./api.js";
import { PALETTE, lineChart, renderLegend } from "./charts.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { basename, fmt, fmtDuration, fmtTime, isNum, signed } from "./format.js";
import { metric, state, systemsByRole } from "./state.js";

const POLL_MS = 1500;

const view = {
jobs: [],          // GET /api/jobs
selectedJob: null, // its id
jobDetail: null,   // last GET /api/jobs/{id}
runDetail: null,   // last GET /api/runs/{name} for the selected job
};

export function init() {
$("#jobs-refresh").addEventListener("click", () => refreshJobs());
$("#cancel-job").addEventListener("click", cancelJob);
$("#resume-job").addEventListener("click", resumeJob);
}

/** The tab is shown, for #jobs/<id> with that job selected. */
export function show(arg) {
if (arg && arg !== view.selectedJob) {
  view.selectedJob = decodeURIComponent(arg);
  view.jobDetail = view.runDetail = null;
}
refreshJobs();
}

/** A job #train has just started: select it and go to #jobs/<id>. */
export function followNewJob(job) {
view.selectedJob = job.id;
view.jobDetail = view.runDetail = null;
view.jobs = [job, ...view.jobs.filter((j) => j.id !== job.id)];
location.hash = `#jobs/${job.id}`;
}

let pollTimer = null;
let polling = false;

const active = (j) => j.status === "running" || j.status === "queued";
const anyRunning = () => view.jobs.some(active);

function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = null;
  if (anyRunning()) pollTimer = setTimeout(refreshJobs, POLL_MS);
}

let refreshAgain = false;

/** Refresh the job list and the nav's running-count badge (and, on the jobs tab, the selected job); polls
 *  again while any job runs. */
export async function refreshJobs() {
  if (polling) {
    refreshAgain = true; // e.g. a job was selected while a poll was in flight
    return;
  }
  polling = true;
  refreshAgain = false;
  try {
    const data = await api("/api/jobs");
    view.jobs = data.jobs || [];
    const running = view.jobs.filter((j) => j.status === "running").length;
    const badge = $("#running-count");
    badge.textContent = String(running);
    badge.classList.toggle("hidden", running === 0);
    if (state.tab === "jobs") {
      if (!view.selectedJob && view.jobs.length) view.selectedJob = view.jobs[0].id;
      renderJobList();
      if (view.selectedJob) await loadJobDetail();
      else renderJob();
    }
  } catch (err) {
    showError(err);
  } finally {
    polling = false;
    if (refreshAgain) refreshJobs();
    else schedulePoll();
  }
}

function renderJobList() {
  const list = clear($("#job-list"));
  $("#job-empty").classList.toggle("hidden", view.jobs.length > 0);
  for (const job of view.jobs) {
    const end = job.finished || (job.status === "running" ? Date.now() / 1000 : null);
    const item = h("li", {
      class: job.id === view.selectedJob ? "selected" : null,
      "data-testid": "job-item", "data-job-id": job.id, "data-run": job.run, tabindex: 0,
      onclick: () => selectJob(job.id),
      onkeydown: (ev) => { if (ev.key === "Enter") selectJob(job.id); },
    },
    h("span", { class: "name", title: job.run }, job.run),
    h("span", { class: `badge ${job.status}`, "data-testid": "job-badge" }, job.status),
    h("span", { class: "sub" }, `${fmtTime(job.started)} · ${fmtDuration(end && job.started ? end - job.started : null)} · ${basename(job.catalog)}`));
    list.append(item);
  }
}

function selectJob(id) {
  if (location.hash !== `#jobs/${id}`) location.hash = `#jobs/${id}`;
  else refreshJobs();
}

async function loadJobDetail() {
  const id = view.selectedJob;
  let job;
  try {
    job = await api(`/api/jobs/${enc(id)}`);
  } catch (err) {
    if (err.status === 404) {
      view.selectedJob = null;
      view.jobDetail = view.runDetail = null;
      renderJob();
    }
    showError(err);
    return;
  }
  if (id !== view.selectedJob) return;
  // The run's detail: always while the job runs; once more when it has ended.
  const needRun = job.status === "running" || !view.runDetail || view.runDetail.name !== job.run ||
    (view.jobDetail && view.jobDetail.status !== job.status) || view.runDetail.status === "running";
  let run = view.runDetail && view.runDetail.name === job.run ? view.runDetail : null;
  if (needRun) {
    try {
      run = await api(`/api/runs/${enc(job.run)}`);
    } catch (err) {
      // A job just started has no run folder yet: not an error while it runs.
      if (!(err.status === 404 && job.status === "running")) showError(err);
    }
  }
  if (id !== view.selectedJob) return;
  view.jobDetail = job;
  view.runDetail = run;
  renderJob();
}

async function cancelJob() {
  const job = view.jobDetail;
  if (!job) return;
  if (!window.confirm(`Cancel the training run "${job.run}"? Finished rounds are kept; the run can be resumed.`)) return;
  try {
    await api(`/api/jobs/${enc(job.id)}/cancel`, { method: "POST" });
  } catch (err) {
    showError(err);
  }
  refreshJobs();
}

async function resumeJob() {
  const job = view.jobDetail;
  if (!job) return;
  try {
    await api(`/api/jobs/${enc(job.id)}/resume`, { method: "POST" });
  } catch (err) {
    showError(err);
  }
  refreshJobs();
}

function expectedStages(job, run) {
  const rounds = (job && job.options && job.options.rounds) || 0;
  const stages = ["inputs", "baselines"];
  for (let n = 0; n < rounds; n++) stages.push(`round-${n}/train`, `round-${n}/evaluate`);
  const done = (run && run.done) || [];
  const last = ["hybrid", "export"];
  // stages this list does not know in advance (generated queries first; the rounds' average after the rounds)
  const extra = done.filter((d) => !stages.includes(d) && !last.includes(d));
  const before = extra.filter((d) => d === "queries");
  return [...before, ...stages, ...extra.filter((d) => d !== "queries"), ...last];
}

function stageTime(stage, timings) {
  if (!timings) return null;
  if (isNum(timings[stage])) return timings[stage];
  const m = /^round-(\d+)\/(\w+)$/.exec(stage);
  const alias = m ? `round ${m[1]} ${m[2]}` : stage === "inputs" ? "load" : null;
  return alias && isNum(timings[alias]) ? timings[alias] : null;
}

function renderJob() {
  const job = view.jobDetail;
  const run = view.runDetail;
  $("#job-none").classList.toggle("hidden", !!job);
  $("#job-body").classList.toggle("hidden", !job);
  if (!job) return;

  $("#job-title").textContent = job.run;
  const end = job.finished || (job.status === "running" ? Date.now() / 1000 : null);
  const opts = Object.entries(job.options || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  $("#job-meta").textContent = [
    `job ${job.id}`, `started ${fmtTime(job.started)}`, `elapsed ${fmtDuration(end ? end - job.started : null)}`,
    `catalog ${basename(job.catalog)}`, job.judgments ? `judgments ${basename(job.judgments)}` : "generated queries",
    opts, isNum(job.returncode) && job.returncode !== 0 ? `exit code ${job.returncode}` : "",
  ].filter(Boolean).join(" · ");
  const status = $("#job-status");
  status.textContent = job.status;
  status.className = `badge ${job.status}`;
  $("#cancel-job").disabled = !active(job);
  $("#cancel-job").classList.toggle("hidden", !active(job));
  // A stopped run that got as far as starting continues where it stopped.
  const resumable = job && ["cancelled", "failed"].includes(job.status) && run && run.status === "incomplete" && (run.done || []).length > 0;
  $("#resume-job").disabled = !resumable;
  $("#resume-job").classList.toggle("hidden", !resumable);

  // stages
  const box = clear($("#job-stages"));
  const done = new Set((run && run.done) || []);
  let current = null;
  for (const stage of expectedStages(job, run)) {
    const isDone = done.has(stage);
    if (!isDone && !current && job.status === "running") current = stage;
    const t = stageTime(stage, run && run.timings);
    box.append(h("span", {
      class: `stage ${isDone ? "done" : stage === current ? "current" : "pending"}`,
      "data-testid": isDone ? "stage-done" : "stage-pending", title: isDone ? "done" : stage === current ? "in progress" : "pending",
    }, isDone ? "✓ " : stage === current ? "▸ " : "", stage, t !== null ? h("span", { class: "t" }, fmtDuration(t)) : null));
  }

  // live progress of the current training round
  const live = run && run.live;
  const fill = $("#progress-fill");
  const rounds = (job.options && job.options.rounds) || null;
  let frac = 0;
  let label;
  if (job.status === "finished") {
    frac = 1;
    label = "finished";
  } else if (live && isNum(live.steps) && live.steps > 0) {
    frac = Math.min(1, (live.step || 0) / live.steps);
    const roundTxt = `round ${live.round}${rounds ? ` (${live.round + 1} of ${rounds})` : ""}`;
    label = live.finished ? `${roundTxt}: training done, evaluating…` : `${roundTxt}: training step ${live.step} / ${live.steps}`;
    if (job.status !== "running") label += ` — ${job.status}`;
  } else {
    label = job.status === "running" ? `waiting for training to start${current ? ` (${current})` : ""}…`
      : job.status === "queued" ? "queued: starts when a running job ends" : job.status;
  }
  fill.style.width = `${(frac * 100).toFixed(1)}%`;
  fill.classList.toggle("done", job.status === "finished" || !!(live && live.finished));
  $("#progress-label").textContent = label;
  $("#progress-pct").textContent = `${Math.round(frac * 100)}%`;

  renderLossChart(run);
  renderMetricChart(run);
  renderSystemsTable(run);

  const log = $("#job-log");
  const text = (job.log || []).join("\n");
  if (log.textContent !== text) {
    log.textContent = text || "(no output yet)";
    if ($("#log-follow").checked) log.scrollTop = log.scrollHeight;
  }
}

/** Loss curves of every round on one global step axis (each round's steps restart at 1). */
function lossSeries(run) {
  const rounds = new Map();
  for (const [r, losses] of Object.entries((run && run.losses) || {})) rounds.set(Number(r), { losses: losses || [], steps: null });
  const live = run && run.live;
  if (live && Array.isArray(live.losses) && (!rounds.has(live.round) || !live.finished)) {
    rounds.set(Number(live.round), { losses: live.losses, steps: live.steps,
      live: !live.finished && !!view.jobDetail && view.jobDetail.status === "running" });
  }
  const series = [];
  const bounds = [];
  let offset = 0;
  for (const r of [...rounds.keys()].sort((a, b) => a - b)) {
    const { losses, steps, live: isLive } = rounds.get(r);
    // live.json may repeat the last logged loss at every step: keep each logged value once
    const pts = losses.filter((p, i) => isNum(p.step) && isNum(p.loss) && !(i > 0 && losses[i - 1].loss === p.loss));
    const first = pts.length ? pts[0].step : 1;
    const shift = first <= offset ? offset : 0; // already global steps? then leave them alone
    if (r > 0 && offset > 0) bounds.push({ x: shift ? offset : first, label: `round ${r}` });
    series.push({
      name: `round ${r}${isLive ? " (live)" : ""}`, color: PALETTE[r % PALETTE.length],
      points: pts.map((p) => ({ x: p.step + shift, y: p.loss, tip: `round ${r} · step ${p.step} · loss ${p.loss.toFixed(4)}` })),
    });
    const last = pts.length ? pts[pts.length - 1].step + shift : offset;
    offset = Math.max(last, isNum(steps) ? steps + shift : 0, offset);
  }
  return { series, bounds, end: offset };
}

function renderLossChart(run) {
  const { series, bounds, end } = lossSeries(run);
  const nonEmpty = series.filter((sr) => sr.points.length);
  const xs = nonEmpty.flatMap((sr) => sr.points.map((pt) => pt.x));
  // the x axis spans every round so far, including the steps the live round has still to go
  const xDomain = xs.length ? [Math.min(0, ...xs), Math.max(end, ...xs)] : null;
  const live = run && run.live;
  const trained = series.length > 0 || (live && live.step > 0);
  const steps = live && isNum(live.steps) ? ` (round ${live.round}: ${live.step} of ${live.steps} steps)` : "";
  lineChart($("#loss-chart"), {
    series: nonEmpty, vlines: bounds, xLabel: "global step", yLabel: "loss", integerX: true, xDomain,
    empty: !run ? "waiting for the run…" : trained ? `no loss logged yet${steps}: the trainer logs it every few steps` : "no training step yet",
  });
  renderLegend($("#loss-legend"), nonEmpty.map((sr) => ({ name: sr.name, color: sr.color })));
}

function renderMetricChart(run) {
  const roles = systemsByRole(run);
  const rounds = roles.rounds.filter((r) => metric(r.sys, "ndcg@10") !== null);
  const planned = (view.jobDetail && view.jobDetail.options && view.jobDetail.options.rounds) || rounds.length;
  const xmax = Math.max(planned, rounds.length, 1) - 1;
  const refs = [];
  if (metric(roles.bm25, "ndcg@10") !== null) refs.push({ y: metric(roles.bm25, "ndcg@10"), label: `BM25 ${fmt(metric(roles.bm25, "ndcg@10"))}`, color: "#e0542f" });
  if (metric(roles.base, "ndcg@10") !== null) refs.push({ y: metric(roles.base, "ndcg@10"), label: `base ${fmt(metric(roles.base, "ndcg@10"))}`, color: "#9b51e0" });
  const series = rounds.length ? [{
    name: "tuned", color: "#2f6fdf", showPoints: true, labels: true,
    points: rounds.map((r) => ({ x: r.round, y: metric(r.sys, "ndcg@10"), tip: `round ${r.round} · nDCG@10 ${fmt(metric(r.sys, "ndcg@10"), 4)}` })),
  }] : [];
  lineChart($("#metric-chart"), {
    series, refs, xDomain: [-0.5, xmax + 0.5], xTicks: Array.from({ length: xmax + 1 }, (_, i) => i),
    xFormat: (v) => `round ${v}`, yLabel: "nDCG@10", yFormat: (v) => v.toFixed(2),
    empty: refs.length ? null : run ? "no evaluation yet" : "waiting for the run…",
    note: !rounds.length && refs.length ? "no finished round yet" : null,
  });
  const legend = [];
  if (series.length) legend.push({ name: "tuned (per round)", color: "#2f6fdf" });
  for (const r of refs) legend.push({ name: r.label.split(" ")[0], color: r.color, kind: "dash" });
  renderLegend($("#metric-legend"), legend);
}

function renderSystemsTable(run) {
  const table = clear($("#job-systems"));
  const systems = (run && run.systems) || [];
  if (!systems.length) {
    table.append(h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, run ? "No system evaluated yet." : "—"))));
    return;
  }
  const keys = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "p@10"];
  const best = Object.fromEntries(keys.map((k) => [k, Math.max(...systems.map((sy) => metric(sy, k) ?? -Infinity))]));
  table.append(h("thead", {}, h("tr", {}, h("th", {}, "system"), keys.map((k) => h("th", {}, k)), h("th", { title: "nDCG@10 divided by BM25's nDCG@10" }, "nDCG@10 vs BM25"))));
  const body = h("tbody");
  for (const sy of systems) {
    const final = run.final && sy.name === run.final;
    const vs = sy["ndcg@10_vs_baseline"];
    body.append(h("tr", { class: final ? "final" : null, "data-testid": "system-row", "data-system": sy.name },
      h("td", {}, sy.name, final ? h("span", { class: "badge finished", style: { marginLeft: "6px" } }, "final") : null),
      keys.map((k) => h("td", { class: `num ${metric(sy, k) === best[k] ? "best" : ""}` }, fmt(metric(sy, k)))),
      h("td", { class: `num ${isNum(vs) ? (vs > 1 ? "up" : vs < 1 ? "down" : "") : ""}`, title: isNum(vs) ? `${signed((vs - 1) * 100, 1)}% nDCG@10 vs BM25` : null },
        isNum(vs) ? `×${vs.toFixed(3)}` : "—")));
  }
  table.append(body);
}

