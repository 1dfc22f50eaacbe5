/* #compare: tick runs on the left; a grouped bar chart of nDCG@10 (BM25, base, tuned) per run and a table of
 * metrics per system (BM25, base, round N, final) side by side. */
import { barChart } from "./charts.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { fmt, isNum, signed } from "./format.js";
import { loadRuns, metric, onRuns, runDetail, state, systemsByRole } from "./state.js";

const compareSelected = new Set(); // names of the ticked runs

export function init() {
onRuns(renderCompareRuns);
$("#runs-refresh").addEventListener("click", () => {
  state.runCache.clear();
  loadRuns().then(renderCompare);
});
}

/** The tab is shown: reload the runs, redraw the comparison. */
export function show() {
loadRuns().then(renderCompare);
}

function renderCompareRuns() {
  const box = clear($("#compare-runs"));
  $("#compare-empty").classList.toggle("hidden", state.runs.length > 0);
  for (const name of [...compareSelected]) if (!state.runs.some((r) => r.name === name)) compareSelected.delete(name);
  for (const run of state.runs) {
    const input = h("input", {
      type: "checkbox", value: run.name, "data-testid": "compare-run", "data-run": run.name,
      checked: compareSelected.has(run.name),
      onchange: (ev) => {
        if (ev.target.checked) compareSelected.add(run.name);
        else compareSelected.delete(run.name);
        renderCompare();
      },
    });
    box.append(h("label", { title: `${run.catalog || ""}${run.judgments ? `\n${run.judgments}` : ""}` }, input,
      h("span", { class: "nm" }, run.name),
      h("span", { class: `badge ${run.status}` }, run.status),
      h("span", { class: "val", title: "final nDCG@10 (BM25)" }, isNum(run.final_ndcg) ? `${fmt(run.final_ndcg)}` : "")));
  }
}

let compareToken = 0;

async function renderCompare() {
  const token = ++compareToken;
  const names = state.runs.map((r) => r.name).filter((n) => compareSelected.has(n));
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
    if (roles.bm25Qdrant) rows.set("BM25 (Qdrant)", roles.bm25Qdrant);
    if (roles.base) rows.set("base", roles.base);
    if (roles.hybridBase) rows.set("hybrid (base)", roles.hybridBase);
    for (const r of roles.rounds) rows.set(`round ${r.round}`, r.sys);
    if (roles.final) rows.set("final", roles.final);
    if (roles.hybrid) rows.set("hybrid (tuned)", roles.hybrid);
    return { run, rows, roles };
  });
  // the hybrid rows (runs trained before them have none) are shown when any run compared has them
  const any = (key) => perRun.some((p) => p.roles[key]);
  const rowNames = ["BM25", ...(any("bm25Qdrant") ? ["BM25 (Qdrant)"] : []), "base", ...(any("hybridBase") ? ["hybrid (base)"] : [])];
  const maxRound = Math.max(-1, ...perRun.flatMap((p) => p.roles.rounds.map((r) => r.round)));
  for (let i = 0; i <= maxRound; i++) rowNames.push(`round ${i}`);
  rowNames.push("final");
  if (any("hybrid")) rowNames.push("hybrid (tuned)");

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

