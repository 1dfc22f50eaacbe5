/* sparsefit studio: one page, four hash routes (#train, #jobs, #compare, #search).
 * Vanilla JS, no build step, no external resources. Talks to the studio's JSON API with
 * credentials "same-origin" (the bearer token, if any, lives in a cookie set by the server). */
"use strict";

(() => {
  // ------------------------------------------------------------------ helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2f6fdf", "#e0542f", "#1f9d55", "#9b51e0", "#d4a017", "#17a2b8", "#d63384", "#5c6b7a"];
  const POLL_MS = 1500;

  /** Build a DOM element: h("div", {class: "x", "data-testid": "y", onclick: fn}, "text", child). */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    append(node, children);
    return node;
  }

  /** Build an SVG element (same signature as h). */
  function s(tag, props, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setProps(node, props);
    append(node, children);
    return node;
  }

  function setProps(node, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      // styles through the CSSOM only: the page's CSP refuses style attributes
      else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const fmt = (v, digits = 3) => (isNum(v) ? v.toFixed(digits) : "—");
  const pct = (v) => (isNum(v) ? `${Math.round(v * 100)}%` : "—");

  function signed(v, digits = 3) {
    if (!isNum(v)) return "—";
    return (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(digits);
  }

  function fmtBytes(n) {
    if (!isNum(n)) return "";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function fmtDuration(sec) {
    if (!isNum(sec)) return "—";
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return `${sec}s`;
    const m = Math.floor(sec / 60);
    if (m < 60) return `${m}m ${String(sec % 60).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  }

  function fmtTime(unix) {
    if (!isNum(unix)) return "—";
    const d = new Date(unix * 1000);
    const today = new Date();
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
  }

  const basename = (p) => (p ? String(p).split(/[\\/]/).pop() : "");

  // ------------------------------------------------------------------ errors
  const errorBox = $("#errors");

  /** Show an error in the red message area (same message twice: a counter, not a second box). */
  function showError(message) {
    const text = String(message instanceof Error ? message.message : message);
    for (const box of errorBox.children) {
      if (box.dataset.text === text) {
        const count = box.querySelector(".count");
        count.textContent = `×${Number(count.dataset.n) + 1}`;
        count.dataset.n = String(Number(count.dataset.n) + 1);
        count.classList.remove("hidden");
        return;
      }
    }
    const box = h("div", { class: "error-msg", "data-testid": "error-message", "data-text": text },
      h("span", { class: "text", text }),
      h("span", { class: "count hidden", "data-n": "1" }),
      h("button", { type: "button", title: "dismiss", "aria-label": "dismiss", onclick: () => box.remove() }, "×"));
    errorBox.appendChild(box);
    while (errorBox.children.length > 5) errorBox.firstChild.remove();
  }

  window.addEventListener("unhandledrejection", (ev) => showError(ev.reason || "unexpected error"));
  window.addEventListener("error", (ev) => showError(`script error: ${ev.message}`));

  // ------------------------------------------------------------------ API
  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function describeDetail(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {  // FastAPI validation errors
      return detail.map((d) => (d && d.msg ? `${(d.loc || []).filter((x) => x !== "body").join(".")}: ${d.msg}` : JSON.stringify(d))).join("; ");
    }
    return JSON.stringify(detail);
  }

  /** fetch() a JSON endpoint; non-2xx answers throw an ApiError carrying the server's "detail". */
  async function api(path, { method = "GET", body, form } = {}) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (form) opts.body = form;
    else if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (err) {
      throw new ApiError(`${method} ${path}: the studio server does not answer (${err.message})`, 0);
    }
    const raw = await res.text();
    let data = null;
    try {
      data = raw ? JSON.parse(raw) : null;
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      let detail = data && data.detail !== undefined ? describeDetail(data.detail) : raw.trim().slice(0, 300) || res.statusText;
      if (data && data.hint) detail += ` (${data.hint})`;
      throw new ApiError(`${method} ${path} → ${res.status}: ${detail}`, res.status);
    }
    if (data === null && raw) throw new ApiError(`${method} ${path}: the answer is not JSON`, res.status);
    return data;
  }

  const enc = encodeURIComponent;

  // ------------------------------------------------------------------ state
  const state = {
    tab: "train",
    files: [],
    jobs: [],
    selectedJob: null,
    jobDetail: null,     // last GET /api/jobs/{id}
    runDetail: null,     // last GET /api/runs/{name} for the selected job
    runs: [],
    compareSelected: new Set(),
    runCache: new Map(), // name -> run detail (finished runs only)
    search: { query: "", offset: 0, limit: 10, run: null, hits: [], explained: null },
    filterId: 0,
  };

  // ------------------------------------------------------------------ router
  const TABS = ["train", "jobs", "compare", "search"];

  function route() {
    const [tab, arg] = (location.hash || "#train").slice(1).split("/");
    state.tab = TABS.includes(tab) ? tab : "train";
    for (const view of document.querySelectorAll(".view")) view.hidden = view.dataset.view !== state.tab;
    for (const link of document.querySelectorAll(".tabs a")) {
      link.classList.toggle("active", link.dataset.tab === state.tab);
      link.setAttribute("aria-selected", String(link.dataset.tab === state.tab));
    }
    document.title = `sparsefit studio · ${state.tab}`;
    if (state.tab === "train") loadFiles();
    if (state.tab === "jobs") {
      if (arg && arg !== state.selectedJob) {
        state.selectedJob = decodeURIComponent(arg);
        state.jobDetail = state.runDetail = null;
      }
      refreshJobs();
    }
    if (state.tab === "compare") loadRuns().then(renderCompare);
    if (state.tab === "search") loadRuns();
  }

  window.addEventListener("hashchange", route);

  // ------------------------------------------------------------------ health
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

  // ================================================================== TRAIN
  const catalogSelect = $("#catalog-select");
  const judgmentsSelect = $("#judgments-select");

  // The form's defaults are the server's Settings defaults: fill them in once.
  async function loadDefaults() {
    if (state.defaults) return;
    state.defaults = (await api("/api/defaults")).training || {};
    const base = $("#base-model");
    if (!base.value) base.value = state.defaults.base_model || "";
    const rounds = $("#rounds");
    if (!rounds.value && isNum(state.defaults.rounds)) rounds.value = String(state.defaults.rounds);
    for (const input of document.querySelectorAll("[data-opt]")) {
      const value = state.defaults[input.dataset.opt];
      if (value !== null && value !== undefined) input.placeholder = `default ${value}`;
    }
  }

  async function loadFiles() {
    try {
      await loadDefaults();
      const data = await api("/api/files");
      state.files = data.files || [];
      state.roots = data.roots || [];
      renderFileSelects();
    } catch (err) {
      showError(err);
    }
  }

  function fileOptions(select, placeholder) {
    const keep = select.value;
    clear(select).append(h("option", { value: "" }, placeholder));
    const byRoot = new Map();
    for (const f of state.files) {
      const root = (state.roots || []).find((r) => f.path.startsWith(r)) || f.path.slice(0, f.path.length - f.name.length);
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
    fileOptions(catalogSelect, state.files.length ? "— choose a catalog —" : "— no data files found: upload one —");
    fileOptions(judgmentsSelect, "(none: generate training queries from the catalog)");
    updateFileHints();
  }

  function updateFileHints() {
    for (const [select, hint] of [[catalogSelect, "#catalog-hint"], [judgmentsSelect, "#judgments-hint"]]) {
      $(hint).textContent = select.value || "";
    }
  }

  catalogSelect.addEventListener("change", updateFileHints);
  judgmentsSelect.addEventListener("change", updateFileHints);

  async function upload(input, select) {
    const file = input.files && input.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    const status = $("#train-status");
    status.textContent = `uploading ${file.name}…`;
    try {
      const saved = await api("/api/uploads", { method: "POST", form });
      if (!state.files.some((f) => f.path === saved.path)) state.files.push(saved);
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

  $("#catalog-upload").addEventListener("change", (ev) => upload(ev.target, catalogSelect));
  $("#judgments-upload").addEventListener("change", (ev) => upload(ev.target, judgmentsSelect));

  $("#train-form").addEventListener("submit", async (ev) => {
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
      if (input.value.trim() !== "") options[input.dataset.opt] = Number(input.value);
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
      state.selectedJob = job.id;
      state.jobDetail = state.runDetail = null;
      state.jobs = [job, ...state.jobs.filter((j) => j.id !== job.id)];
      location.hash = `#jobs/${job.id}`;
    } catch (err) {
      $("#train-status").textContent = "";
      showError(err);
    } finally {
      button.disabled = false;
    }
  });

  // ================================================================== JOBS
  let pollTimer = null;
  let polling = false;

  const active = (j) => j.status === "running" || j.status === "queued";
  const anyRunning = () => state.jobs.some(active);

  function schedulePoll() {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (anyRunning()) pollTimer = setTimeout(refreshJobs, POLL_MS);
  }

  /** Refresh the job list (and, on the jobs tab, the selected job); polls again while any job runs. */
  let refreshAgain = false;

  async function refreshJobs() {
    if (polling) {
      refreshAgain = true; // e.g. a job was selected while a poll was in flight
      return;
    }
    polling = true;
    refreshAgain = false;
    try {
      const data = await api("/api/jobs");
      state.jobs = data.jobs || [];
      const running = state.jobs.filter((j) => j.status === "running").length;
      const badge = $("#running-count");
      badge.textContent = String(running);
      badge.classList.toggle("hidden", running === 0);
      if (state.tab === "jobs") {
        if (!state.selectedJob && state.jobs.length) state.selectedJob = state.jobs[0].id;
        renderJobList();
        if (state.selectedJob) await loadJobDetail();
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
    $("#job-empty").classList.toggle("hidden", state.jobs.length > 0);
    for (const job of state.jobs) {
      const end = job.finished || (job.status === "running" ? Date.now() / 1000 : null);
      const item = h("li", {
        class: job.id === state.selectedJob ? "selected" : null,
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
    const id = state.selectedJob;
    let job;
    try {
      job = await api(`/api/jobs/${enc(id)}`);
    } catch (err) {
      if (err.status === 404) {
        state.selectedJob = null;
        state.jobDetail = state.runDetail = null;
        renderJob();
      }
      showError(err);
      return;
    }
    if (id !== state.selectedJob) return;
    // The run's detail: always while the job runs; once more when it has ended.
    const needRun = job.status === "running" || !state.runDetail || state.runDetail.name !== job.run ||
      (state.jobDetail && state.jobDetail.status !== job.status) || state.runDetail.status === "running";
    let run = state.runDetail && state.runDetail.name === job.run ? state.runDetail : null;
    if (needRun) {
      try {
        run = await api(`/api/runs/${enc(job.run)}`);
      } catch (err) {
        // A job just started has no run folder yet: not an error while it runs.
        if (!(err.status === 404 && job.status === "running")) showError(err);
      }
    }
    if (id !== state.selectedJob) return;
    state.jobDetail = job;
    state.runDetail = run;
    renderJob();
  }

  $("#jobs-refresh").addEventListener("click", () => refreshJobs());

  $("#cancel-job").addEventListener("click", async () => {
    const job = state.jobDetail;
    if (!job) return;
    if (!window.confirm(`Cancel the training run "${job.run}"? Finished rounds are kept; the run can be resumed.`)) return;
    try {
      await api(`/api/jobs/${enc(job.id)}/cancel`, { method: "POST" });
    } catch (err) {
      showError(err);
    }
    refreshJobs();
  });

  function expectedStages(job, run) {
    const rounds = (job && job.options && job.options.rounds) || 0;
    const stages = ["inputs", "baselines"];
    for (let n = 0; n < rounds; n++) stages.push(`round-${n}/train`, `round-${n}/evaluate`);
    stages.push("export");
    const done = (run && run.done) || [];
    const extra = done.filter((d) => !stages.includes(d));
    return [...extra, ...stages];
  }

  function stageTime(stage, timings) {
    if (!timings) return null;
    if (isNum(timings[stage])) return timings[stage];
    const m = /^round-(\d+)\/(\w+)$/.exec(stage);
    const alias = m ? `round ${m[1]} ${m[2]}` : stage === "inputs" ? "load" : null;
    return alias && isNum(timings[alias]) ? timings[alias] : null;
  }

  function renderJob() {
    const job = state.jobDetail;
    const run = state.runDetail;
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
        live: !live.finished && !!state.jobDetail && state.jobDetail.status === "running" });
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

  function renderLegend(target, items) {
    clear(target).append(...items.map((it) => h("span", {},
      h("span", { class: `sw ${it.kind || ""}`, style: { background: it.color, borderColor: it.color } }), it.name)));
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

  function systemsByRole(run) {
    const out = { bm25: null, base: null, rounds: [], final: null };
    for (const sys of (run && run.systems) || []) {
      const name = String(sys.name || "");
      const m = /^round (\d+)$/.exec(name);
      if (name.toLowerCase() === "bm25") out.bm25 = sys;
      else if (name.toLowerCase().startsWith("base")) out.base = sys;
      else if (m) out.rounds.push({ round: Number(m[1]), sys });
      if (run.final && name === run.final) out.final = sys;
    }
    out.rounds.sort((a, b) => a.round - b.round);
    return out;
  }

  const metric = (sys, key) => (sys && sys.metrics && isNum(sys.metrics[key]) ? sys.metrics[key] : null);

  function renderMetricChart(run) {
    const roles = systemsByRole(run);
    const rounds = roles.rounds.filter((r) => metric(r.sys, "ndcg@10") !== null);
    const planned = (state.jobDetail && state.jobDetail.options && state.jobDetail.options.rounds) || rounds.length;
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
      body.append(h("tr", { class: final ? "final" : null, "data-testid": "system-row" },
        h("td", {}, sy.name, final ? h("span", { class: "badge finished", style: { marginLeft: "6px" } }, "final") : null),
        keys.map((k) => h("td", { class: `num ${metric(sy, k) === best[k] ? "best" : ""}` }, fmt(metric(sy, k)))),
        h("td", { class: `num ${isNum(vs) ? (vs > 1 ? "up" : vs < 1 ? "down" : "") : ""}`, title: isNum(vs) ? `${signed((vs - 1) * 100, 1)}% nDCG@10 vs BM25` : null },
          isNum(vs) ? `×${vs.toFixed(3)}` : "—")));
    }
    table.append(body);
  }

  // ------------------------------------------------------------------ charts
  function niceStep(range, count) {
    const raw = range / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
  }

  function ticksFor(min, max, count) {
    const step = niceStep(max - min, count);
    const out = [];
    for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
    return { ticks: out, step };
  }

  function decimalsFor(step) {
    return step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
  }

  function viewBox(svgEl) {
    const vb = (svgEl.getAttribute("viewBox") || "0 0 560 260").split(/\s+/).map(Number);
    return { W: vb[2], H: vb[3] };
  }

  /** A line chart drawn into svgEl. series: [{name, color, points: [{x, y, tip}], showPoints, labels}];
   *  refs: horizontal reference lines [{y, label, color}]; vlines: [{x, label}]. */
  function lineChart(svgEl, opts) {
    const { W, H } = viewBox(svgEl);
    const m = { l: 52, r: 16, t: 14, b: opts.xLabel ? 40 : 28 };
    clear(svgEl);
    const series = opts.series || [];
    const refs = opts.refs || [];
    const xs = series.flatMap((sr) => sr.points.map((p) => p.x));
    const ys = series.flatMap((sr) => sr.points.map((p) => p.y)).concat(refs.map((r) => r.y));
    if (!ys.length) {
      svgEl.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "placeholder" }, opts.empty || "no data"));
      return;
    }
    let [x0, x1] = opts.xDomain || [Math.min(...xs), Math.max(...xs)];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    let y0 = Math.min(...ys);
    let y1 = Math.max(...ys);
    const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 0.1;
    y0 -= pad;
    y1 += series.some((sr) => sr.labels) ? pad * 2.5 : pad;
    const yt = ticksFor(y0, y1, 5);
    y0 = Math.min(y0, yt.ticks[0] ?? y0);
    y1 = Math.max(y1, yt.ticks[yt.ticks.length - 1] ?? y1);
    const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
    const Y = (v) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
    const yDec = decimalsFor(yt.step);
    const yFormat = opts.yFormat || ((v) => v.toFixed(yDec));

    const grid = s("g", { class: "axis" });
    for (const v of yt.ticks) {
      if (v < y0 - 1e-12 || v > y1 + 1e-12) continue;
      grid.append(s("line", { class: "grid", x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
      grid.append(s("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" }, yFormat(v)));
    }
    let xticks = opts.xTicks;
    let xDec = 0;
    if (!xticks) {
      const xt = ticksFor(x0, x1, 6);
      xticks = xt.ticks.filter((v) => !opts.integerX || Number.isInteger(v));
      xDec = decimalsFor(xt.step);
    }
    const xFormat = opts.xFormat || ((v) => v.toFixed(xDec));
    for (const v of xticks) {
      grid.append(s("line", { x1: X(v), x2: X(v), y1: H - m.b, y2: H - m.b + 4 }));
      grid.append(s("text", { x: X(v), y: H - m.b + 16, "text-anchor": "middle" }, xFormat(v)));
    }
    grid.append(s("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
    grid.append(s("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
    if (opts.xLabel) grid.append(s("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle" }, opts.xLabel));
    if (opts.yLabel) grid.append(s("text", { x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})` }, opts.yLabel));
    svgEl.append(grid);

    for (const vl of opts.vlines || []) {
      if (vl.x < x0 || vl.x > x1) continue;
      svgEl.append(s("line", { x1: X(vl.x), x2: X(vl.x), y1: m.t, y2: H - m.b, stroke: "#c3cbd6", "stroke-dasharray": "3 3" }));
      const nearEnd = X(vl.x) > W - m.r - 60;
      svgEl.append(s("text", { x: X(vl.x) + (nearEnd ? -4 : 4), y: m.t + 10, "text-anchor": nearEnd ? "end" : "start", class: "vlabel" }, vl.label));
    }

    refs.forEach((ref, i) => {
      const y = Y(ref.y);
      svgEl.append(s("line", { class: "ref", x1: m.l, x2: W - m.r, y1: y, y2: y, stroke: ref.color, "stroke-width": 1.5, "stroke-dasharray": "6 4" },
        s("title", {}, ref.label)));
      const below = i % 2 === 1 && refs.length > 1 && Math.abs(Y(refs[0].y) - y) < 14;
      svgEl.append(s("text", { x: W - m.r - 4, y: below ? y + 13 : y - 5, "text-anchor": "end", style: { fill: ref.color } }, ref.label));
    });

    for (const sr of series) {
      const pts = sr.points.filter((p) => isNum(p.x) && isNum(p.y));
      if (!pts.length) continue;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(" ");
      svgEl.append(s("path", { class: "series", d, fill: "none", stroke: sr.color, "stroke-width": 2, "stroke-linejoin": "round", "data-series": sr.name }));
      if (sr.showPoints || pts.length <= 40) {
        for (const p of pts) {
          svgEl.append(s("circle", { class: "pt", cx: X(p.x), cy: Y(p.y), r: sr.showPoints ? 5 : 3, fill: sr.showPoints ? "#fff" : sr.color, stroke: sr.color, "stroke-width": 2 },
            s("title", {}, p.tip || `${p.x}: ${p.y}`)));
          if (sr.labels) svgEl.append(s("text", { x: X(p.x), y: Y(p.y) - 10, "text-anchor": "middle", style: { fill: sr.color, fontWeight: "600" } }, p.y.toFixed(3)));
        }
      } else {
        // many points: invisible hover targets still give exact values
        const stride = Math.ceil(pts.length / 120);
        for (let i = 0; i < pts.length; i += stride) {
          svgEl.append(s("circle", { class: "hover", cx: X(pts[i].x), cy: Y(pts[i].y), r: 4, fill: "transparent" }, s("title", {}, pts[i].tip || "")));
        }
      }
    }
    if (opts.note) svgEl.append(s("text", { x: (m.l + W - m.r) / 2, y: m.t + 14, "text-anchor": "middle", class: "placeholder" }, opts.note));
  }

  /** Grouped bar chart: groups [{label, bars: [{name, value, color}]}]. */
  function barChart(svgEl, groups, { empty = "no data", yLabel } = {}) {
    const { W, H } = viewBox(svgEl);
    const m = { l: 52, r: 16, t: 22, b: 46 };
    clear(svgEl);
    const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter(isNum);
    if (!groups.length || !values.length) {
      svgEl.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "placeholder" }, empty));
      return;
    }
    const top = Math.max(...values) * 1.08 || 1;
    const yt = ticksFor(0, top, 5);
    const y1 = Math.max(top, Math.ceil(top / yt.step - 1e-9) * yt.step);
    const Y = (v) => H - m.b - (v / y1) * (H - m.t - m.b);
    const g = s("g", { class: "axis" });
    const dec = decimalsFor(yt.step);
    for (const v of yt.ticks) {
      g.append(s("line", { class: "grid", x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
      g.append(s("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" }, v.toFixed(dec)));
    }
    g.append(s("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
    if (yLabel) g.append(s("text", { x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})` }, yLabel));
    svgEl.append(g);
    const slot = (W - m.l - m.r) / groups.length;
    groups.forEach((grp, gi) => {
      const n = grp.bars.length;
      const bw = Math.min(54, (slot * 0.8) / n);
      const start = m.l + gi * slot + (slot - bw * n) / 2;
      grp.bars.forEach((bar, bi) => {
        const x = start + bi * bw;
        if (!isNum(bar.value)) {
          svgEl.append(s("text", { x: x + bw / 2, y: H - m.b - 4, "text-anchor": "middle", class: "placeholder" }, "n/a"));
          return;
        }
        svgEl.append(s("rect", { class: "bar", x: x + 2, y: Y(bar.value), width: Math.max(1, bw - 4), height: Math.max(0, H - m.b - Y(bar.value)), rx: 3, fill: bar.color, "data-name": bar.name },
          s("title", {}, `${grp.label} · ${bar.name}: ${bar.value.toFixed(4)}`)));
        svgEl.append(s("text", { x: x + bw / 2, y: Y(bar.value) - 4, "text-anchor": "middle", style: { fontSize: "10px" } }, bar.value.toFixed(3)));
      });
      const label = grp.label.length > 22 ? `${grp.label.slice(0, 21)}…` : grp.label;
      svgEl.append(s("text", { x: m.l + gi * slot + slot / 2, y: H - m.b + 18, "text-anchor": "middle", style: { fontWeight: "600", fill: "#1c2430" } }, label, s("title", {}, grp.label)));
    });
    // legend
    const names = [];
    for (const grp of groups) for (const b of grp.bars) if (!names.some((x) => x.name === b.name)) names.push(b);
    let lx = m.l;
    for (const b of names) {
      svgEl.append(s("rect", { x: lx, y: H - 16, width: 10, height: 10, rx: 2, fill: b.color }));
      svgEl.append(s("text", { x: lx + 14, y: H - 7 }, b.name));
      lx += 24 + b.name.length * 7;
    }
  }

  // ================================================================== COMPARE
  async function loadRuns() {
    try {
      const data = await api("/api/runs");
      state.runs = data.runs || [];
    } catch (err) {
      showError(err);
    }
    renderCompareRuns();
    renderSearchRuns();
    return state.runs;
  }

  function renderCompareRuns() {
    const box = clear($("#compare-runs"));
    $("#compare-empty").classList.toggle("hidden", state.runs.length > 0);
    for (const name of [...state.compareSelected]) if (!state.runs.some((r) => r.name === name)) state.compareSelected.delete(name);
    for (const run of state.runs) {
      const input = h("input", {
        type: "checkbox", value: run.name, "data-testid": "compare-run", "data-run": run.name,
        checked: state.compareSelected.has(run.name),
        onchange: (ev) => {
          if (ev.target.checked) state.compareSelected.add(run.name);
          else state.compareSelected.delete(run.name);
          renderCompare();
        },
      });
      box.append(h("label", { title: `${run.catalog || ""}${run.judgments ? `\n${run.judgments}` : ""}` }, input,
        h("span", { class: "nm" }, run.name),
        h("span", { class: `badge ${run.status}` }, run.status),
        h("span", { class: "val", title: "final nDCG@10 (BM25)" }, isNum(run.final_ndcg) ? `${fmt(run.final_ndcg)}` : "")));
    }
  }

  async function runDetail(name) {
    if (state.runCache.has(name)) return state.runCache.get(name);
    const run = await api(`/api/runs/${enc(name)}`);
    if (run.status === "finished") state.runCache.set(name, run);
    return run;
  }

  let compareToken = 0;

  async function renderCompare() {
    const token = ++compareToken;
    const names = state.runs.map((r) => r.name).filter((n) => state.compareSelected.has(n));
    const details = [];
    for (const name of names) {
      try {
        details.push(await runDetail(name));
      } catch (err) {
        showError(err);
      }
    }
    if (token !== compareToken) return; // a newer selection is being drawn
    renderCompareTable(details);
    const colors = { BM25: "#e0542f", base: "#9b51e0", "tuned (final)": "#2f6fdf" };
    barChart($("#compare-chart"), details.map((run) => {
      const roles = systemsByRole(run);
      return {
        label: run.name,
        bars: [
          { name: "BM25", value: metric(roles.bm25, "ndcg@10"), color: colors.BM25 },
          { name: "base", value: metric(roles.base, "ndcg@10"), color: colors.base },
          { name: "tuned (final)", value: metric(roles.final, "ndcg@10"), color: colors["tuned (final)"] },
        ],
      };
    }), { empty: "Tick one or more runs on the left.", yLabel: "nDCG@10" });
  }

  function renderCompareTable(runs) {
    const table = clear($("#compare-table"));
    if (!runs.length) {
      table.append(h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, "Tick one or more runs on the left to compare them."))));
      return;
    }
    const cols = [["ndcg@10", "nDCG@10"], ["mrr@10", "MRR@10"], ["recall@100", "R@100"]];
    const perRun = runs.map((run) => {
      const roles = systemsByRole(run);
      const rows = new Map();
      if (roles.bm25) rows.set("BM25", roles.bm25);
      if (roles.base) rows.set("base", roles.base);
      for (const r of roles.rounds) rows.set(`round ${r.round}`, r.sys);
      if (roles.final) rows.set("final", roles.final);
      return { run, rows, roles };
    });
    const rowNames = ["BM25", "base"];
    const maxRound = Math.max(-1, ...perRun.flatMap((p) => p.roles.rounds.map((r) => r.round)));
    for (let i = 0; i <= maxRound; i++) rowNames.push(`round ${i}`);
    rowNames.push("final");

    table.append(h("thead", {},
      h("tr", { class: "group" }, h("th", {}, ""), perRun.map((p) => h("th", { colspan: cols.length, class: "sep" }, p.run.name))),
      h("tr", {}, h("th", {}, "system"), perRun.map(() => cols.map(([, label], i) => h("th", { class: i === 0 ? "sep" : null }, label))))));
    const body = h("tbody");
    for (const rowName of rowNames) {
      const tr = h("tr", { class: rowName === "final" ? "final" : null, "data-testid": "compare-row", "data-system": rowName },
        h("th", { title: rowName === "base" ? perRun.map((p) => p.roles.base && p.roles.base.name).filter(Boolean).join(", ") : rowName === "final" ? perRun.map((p) => `${p.run.name}: ${p.run.final || "—"}`).join(", ") : null }, rowName));
      for (const p of perRun) {
        const sys = p.rows.get(rowName);
        cols.forEach(([key], i) => {
          const v = metric(sys, key);
          const best = v !== null && [...p.rows.entries()].filter(([n]) => n !== "final").every(([, other]) => (metric(other, key) ?? -Infinity) <= v);
          const cell = h("td", { class: `num ${i === 0 ? "sep" : ""} ${best ? "best" : ""}` }, v === null ? "—" : fmt(v));
          if (rowName === "final" && key === "ndcg@10" && v !== null && metric(p.roles.bm25, key) !== null) {
            const d = v - metric(p.roles.bm25, key);
            cell.append(h("span", { class: `delta ${d >= 0 ? "up" : "down"}`, title: "vs BM25" }, signed(d)));
          }
          tr.append(cell);
        });
      }
      body.append(tr);
    }
    table.append(body);
  }

  $("#runs-refresh").addEventListener("click", () => {
    state.runCache.clear();
    loadRuns().then(renderCompare);
  });

  // ================================================================== SEARCH
  const searchRun = $("#search-run");

  function renderSearchRuns() {
    const finished = state.runs.filter((r) => r.status === "finished");
    const keep = searchRun.value || state.search.run;
    clear(searchRun);
    if (!finished.length) searchRun.append(h("option", { value: "" }, "no finished run yet"));
    for (const run of finished) {
      searchRun.append(h("option", { value: run.name }, `${run.name}${isNum(run.final_ndcg) ? `  (nDCG@10 ${fmt(run.final_ndcg)})` : ""}`));
    }
    if (keep && finished.some((r) => r.name === keep)) searchRun.value = keep;
    if (searchRun.value !== state.search.run) {
      state.search.run = searchRun.value || null;
      rulesFor = null;
      if ($("#rules-box").open) loadRules();
    }
  }

  searchRun.addEventListener("change", () => {
    state.search.run = searchRun.value || null;
    rulesFor = null;
    if ($("#rules-box").open) loadRules();
    if (state.search.query) doSearch(0);
  });

  // Rules need the run's search service (a model load): fetched when the box is opened or after a search.
  let rulesFor = null;
  $("#rules-box").addEventListener("toggle", () => { if ($("#rules-box").open && rulesFor !== state.search.run) loadRules(); });

  async function loadRules() {
    const list = clear($("#rules-list"));
    const count = $("#rules-count");
    count.textContent = "";
    rulesFor = state.search.run;
    if (!state.search.run) return;
    list.append(h("div", { class: "muted small" }, "loading…"));
    try {
      const data = await api(`/rules?run=${enc(state.search.run)}`);
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

  $("#add-filter").addEventListener("click", () => addFilterRow().querySelector("input").focus());

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
  $("#search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    doSearch(0);
  });
  $("#prev-page").addEventListener("click", () => doSearch(Math.max(0, state.search.offset - state.search.limit)));
  $("#next-page").addEventListener("click", () => doSearch(state.search.offset + state.search.limit));

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
      Object.assign(state.search, { query, offset, limit, run, hits: data.hits || [] });
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
    const first = state.search.offset + 1;
    $("#search-meta").textContent = `${hits.length ? `results ${first}–${first + hits.length - 1}` : "no results"} for “${state.search.query}” in ${state.search.run || "the default run"}${isNum(data.took_ms) ? ` · ${data.took_ms.toFixed(1)} ms` : ""}${filt}`;

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
      const explainBtn = h("button", { type: "button", class: "btn small secondary", "data-testid": "explain-button", onclick: () => explain(hit, title) }, "Explain");
      list.append(h("li", { class: `result${state.search.explained === hit.product_id ? " explained" : ""}`, "data-testid": "result", "data-product-id": hit.product_id },
        h("div", { class: "rank", "data-testid": "result-rank" }, hit.rank),
        h("div", {},
          h("div", { class: "title", "data-testid": "result-title" }, title),
          h("div", { class: "pid", "data-testid": "result-id" }, hit.product_id),
          h("div", { class: "fields" }, rest.map(([k, v]) => {
            const text = v !== null && typeof v === "object" ? JSON.stringify(v) : String(v);
            return h("span", { class: text.length > 60 ? "long" : null, title: text }, h("b", {}, `${k}: `), text);
          }))),
        h("div", { class: "side" },
          h("div", { class: "score", "data-testid": "result-score" }, `score ${fmt(hit.score, 3)}`),
          h("div", { class: "confidence", "data-testid": "confidence", title: isNum(conf) ? "estimated probability that this result is relevant" : "no confidence model for this run" },
            h("div", { class: "bar" }, h("div", { style: { width: `${isNum(conf) ? Math.round(conf * 100) : 0}%`, background: isNum(conf) ? confidenceColor(conf) : "transparent" } })),
            h("span", { class: "pct" }, pct(conf))),
          explainBtn)));
    }
    const dl = clear($("#payload-fields"));
    for (const f of fields) dl.append(h("option", { value: f }));
    $("#pager").classList.toggle("hidden", !(state.search.offset > 0 || hits.length === state.search.limit));
    $("#prev-page").disabled = state.search.offset === 0;
    $("#next-page").disabled = hits.length < state.search.limit;
  }

  // -- explain
  function showExplainPanel(show) {
    $("#explain-panel").classList.toggle("hidden", !show);
    $(".search-split").classList.toggle("single", !show);
  }

  async function explain(hit, title) {
    const panel = $("#explain-panel");
    state.search.explained = hit.product_id;
    for (const li of document.querySelectorAll("#results .result")) li.classList.toggle("explained", li.dataset.productId === hit.product_id);
    showExplainPanel(true);
    clear(panel).append(h("div", { class: "muted" }, `Explaining ${hit.product_id}…`));
    try {
      const data = await api("/explain", { method: "POST", body: { query: state.search.query, product_id: hit.product_id, run: state.search.run } });
      if (state.search.explained !== hit.product_id) return;
      renderExplain(data, title);
    } catch (err) {
      clear(panel).append(h("div", { class: "muted" }, `Could not explain ${hit.product_id}.`));
      showError(err);
    }
  }

  /** Show the first `shown` children of a list, with a "N more" toggle for the rest. */
  function collapsible(node, rows, shown, rowTag) {
    if (rows.length <= shown + 2) return node;
    rows.slice(shown).forEach((r) => r.classList.add("hidden"));
    const more = h(rowTag, { class: "more" });
    const toggle = h("button", { type: "button", class: "linkish", onclick: () => {
      const open = rows[shown].classList.contains("hidden");
      rows.slice(shown).forEach((r) => r.classList.toggle("hidden", !open));
      toggle.textContent = open ? "show fewer" : `+ ${rows.length - shown} more`;
    } }, `+ ${rows.length - shown} more`);
    if (rowTag === "tr") more.append(h("td", { colspan: 5 }, toggle));
    else more.append(toggle);
    (rowTag === "tr" ? node.querySelector("tbody") : node).append(more);
    return node;
  }

  function termList(terms, max, testid) {
    const list = terms || [];
    if (!list.length) return h("div", { class: "muted small", "data-testid": testid }, "no terms");
    const rows = list.map((t) => h("div", { class: `term ${t.in_text ? "txt" : "exp"}`, "data-testid": t.in_text ? "term" : "expansion-term", title: `${t.term}: ${t.weight}${t.in_text ? " (in the text)" : " (expansion: not in the text)"}` },
      h("span", { class: "t" }, t.term),
      h("div", {}, h("div", { class: "w", style: { width: `${max > 0 ? Math.max(1, (t.weight / max) * 100) : 0}%` } })),
      h("span", { class: "v" }, fmt(t.weight, 2))));
    return collapsible(h("div", { class: "terms", "data-testid": testid }, rows), rows, 10, "div");
  }

  function renderExplain(data, title) {
    const panel = clear($("#explain-panel"));
    const models = data.models || {};
    const names = ["tuned", "base"].filter((n) => models[n]).concat(Object.keys(models).filter((n) => !["tuned", "base"].includes(n)));
    const maxOf = (part) => Math.max(0, ...names.flatMap((n) => ((models[n][part] && models[n][part].terms) || []).map((t) => t.weight)));
    const qmax = maxOf("query");
    const pmax = maxOf("product");
    panel.append(
      h("div", { class: "card-head" },
        h("div", {}, h("h3", {}, "Why this result?"), h("div", { class: "small" }, h("b", {}, title), h("span", { class: "muted" }, ` · ${data.product_id} · query “${data.query}”`))),
        h("button", { type: "button", class: "btn small secondary", title: "close", "data-testid": "explain-close", onclick: () => { showExplainPanel(false); state.search.explained = null; document.querySelectorAll("#results .result.explained").forEach((li) => li.classList.remove("explained")); } }, "×")),
      data.product_text ? h("div", { class: "ptext", "data-testid": "product-text" }, data.product_text) : null,
      h("div", { class: "key" }, h("span", {}, h("span", { class: "sw" }), "term in the text"), h("span", {}, h("span", { class: "sw exp" }), h("i", {}, "expansion"), " (added by the model)")),
      h("div", { class: "explain-cols" }, names.map((name) => {
        const x = models[name];
        const shared = x.shared_terms || [];
        return h("div", { class: `explain-col ${name}`, "data-testid": `explain-${name}` },
          h("div", { class: "model-head" }, h("b", {}, name === "tuned" ? "tuned model" : name === "base" ? "base model" : name), h("span", { class: "sc", "data-testid": "explain-score" }, fmt(x.score, 3))),
          h("h4", {}, `query terms ${isNum(x.query && x.query.nnz) ? `(${x.query.nnz} non-zero)` : ""}`),
          termList(x.query && x.query.terms, qmax, "query-terms"),
          h("h4", {}, `product terms ${isNum(x.product && x.product.nnz) ? `(${x.product.nnz} non-zero)` : ""}`),
          termList(x.product && x.product.terms, pmax, "product-terms"),
          h("h4", {}, `shared terms (${shared.length}${shared.length >= 20 ? ", the top ones" : ""})`),
          shared.length ? sharedTable(shared)
            : h("div", { class: "muted small", "data-testid": "shared-terms-empty" }, "No shared terms: the score is 0."));
      })));
    const rect = panel.getBoundingClientRect();
    if (rect.top < 0 || rect.top > window.innerHeight - 80) panel.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function sharedTable(shared) {
    const rows = shared.map((t) => h("tr", { "data-testid": "shared-term" },
      h("td", { class: "mono" }, t.term), h("td", { class: "num" }, fmt(t.query_weight, 2)), h("td", { class: "num" }, fmt(t.product_weight, 2)),
      h("td", { class: "num" }, fmt(t.contribution, 2)),
      h("td", {}, h("div", { class: "share" }, h("div", { class: "b" }, h("div", { style: { width: `${Math.round((t.share || 0) * 100)}%` } })), pct(t.share)))));
    const table = h("table", { class: "data shared", "data-testid": "shared-terms" },
      h("thead", {}, h("tr", {}, h("th", {}, "term"), h("th", { title: "query weight" }, "q"), h("th", { title: "product weight" }, "p"), h("th", { title: "q × p" }, "contrib."), h("th", { title: "share of the score" }, "share"))),
      h("tbody", {}, rows));
    return collapsible(table, rows, 10, "tr");
  }

  // ------------------------------------------------------------------ start
  addFilterRow();
  if (!location.hash) history.replaceState(null, "", `${location.pathname}${location.search}#train`);
  route();
  refreshHealth();
  setInterval(refreshHealth, 15000);
  if (state.tab !== "jobs") refreshJobs(); // the running-jobs counter in the nav
})();
