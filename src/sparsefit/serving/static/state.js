/* What the tabs share: the tab shown, the runs (#compare lists them, #search offers the finished ones) and
 * the reading of a run's systems (BM25, base, round N, final) that #jobs and #compare both chart. */
import { api, enc } from "./api.js";
import { showError } from "./errors.js";
import { isNum } from "./format.js";

export const state = {
  tab: "train",
  runs: [],            // GET /api/runs
  runCache: new Map(), // name -> run detail (finished runs only)
};

const runsListeners = [];

/** Call fn(runs) each time the run list has been (re)loaded, also after a failed load. */
export function onRuns(fn) {
  runsListeners.push(fn);
}

/** Reload the run list (an error is shown, the old list kept) and tell the listeners. */
export async function loadRuns() {
  try {
    const data = await api("/api/runs");
    state.runs = data.runs || [];
  } catch (err) {
    showError(err);
  }
  for (const fn of runsListeners) fn(state.runs);
  return state.runs;
}

/** GET /api/runs/{name}, cached once the run has finished. */
export async function runDetail(name) {
  if (state.runCache.has(name)) return state.runCache.get(name);
  const run = await api(`/api/runs/${enc(name)}`);
  if (run.status === "finished") state.runCache.set(name, run);
  return run;
}

/** A run's systems by role: {bm25, bm25Qdrant, base, hybridBase, rounds: [{round, sys}] (sorted), final, hybrid}. */
export function systemsByRole(run) {
  const out = { bm25: null, bm25Qdrant: null, base: null, hybridBase: null, rounds: [], final: null, hybrid: null };
  for (const sys of (run && run.systems) || []) {  // roles come from the server: no name is parsed here
    if (sys.role === "bm25") out.bm25 = sys;
    else if (sys.role === "bm25-qdrant") out.bm25Qdrant = sys;
    else if (sys.role === "base") out.base = sys;
    else if (sys.role === "hybrid-base") out.hybridBase = sys;
    else if (sys.role === "hybrid") out.hybrid = sys;
    else if (sys.role === "round") out.rounds.push({ round: sys.round, sys });
    if (run.final && sys.name === run.final) out.final = sys;
  }
  out.rounds.sort((a, b) => a.round - b.round);
  return out;
}

/** One metric of a system ("ndcg@10", …), or null. */
export const metric = (sys, key) => (sys && sys.metrics && isNum(sys.metrics[key]) ? sys.metrics[key] : null);
