/* The explanation panel of #search: why a product matches the query, tuned model beside base model: query
 * and product term weights (text terms and expansions) and the shared terms that make up the score. */
import { api } from "./api.js";
import { $, clear, h } from "./dom.js";
import { showError } from "./errors.js";
import { fmt, isNum, pct } from "./format.js";

let explained = null; // product id the panel shows (or is loading)

/** Whether the panel shows (or is loading) this product. */
export const isExplained = (productId) => explained === productId;

function showExplainPanel(show) {
  $("#explain-panel").classList.toggle("hidden", !show);
  $(".search-split").classList.toggle("single", !show);
}

/** Open the panel for one hit of the search for `query` on `run`. */
export async function explain(hit, title, { query, run }) {
  const panel = $("#explain-panel");
  explained = hit.product_id;
  for (const li of document.querySelectorAll("#results .result")) li.classList.toggle("explained", li.dataset.productId === hit.product_id);
  showExplainPanel(true);
  clear(panel).append(h("div", { class: "muted" }, `Explaining ${hit.product_id}…`));
  try {
    const data = await api("/explain", { method: "POST", body: { query, product_id: hit.product_id, run } });
    if (explained !== hit.product_id) return;
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
      h("button", { type: "button", class: "btn small secondary", title: "close", "data-testid": "explain-close", onclick: () => { showExplainPanel(false); explained = null; document.querySelectorAll("#results .result.explained").forEach((li) => li.classList.remove("explained")); } }, "×")),
    data.product_text ? h("div", { class: "ptext", "data-testid": "product-text" }, data.product_text) : null,
    h("div", { class: "key" }, h("span", {}, h("span", { class: "sw" }), "term in the text"), h("span", {}, h("span", { class: "sw exp" }), h("i", {}, "expansion"), " (added by the model)")),
    h("div", { class: "explain-cols" }, names.map((name) => {
      const x = models[name];
      if (x.model_type === "minicoil") return minicoilColumn(x);
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


/** miniCOIL: per shared word, BM25's parts (tf, idf) and how closely query and product use the word. */
function minicoilColumn(x) {
  const words = x.shared_words || [];
  const rows = words.map((w) => h("tr", { "data-testid": "minicoil-word" },
    h("td", { class: "mono", title: w.has_layer ? `stem ${w.stem}: its own sense layer` : `stem ${w.stem}: no layer, matched exactly as BM25` }, w.word, w.has_layer ? "" : " *"),
    h("td", { class: "num" }, fmt(w.tf, 2)), h("td", { class: "num" }, w.idf == null ? "–" : fmt(w.idf, 2)),
    h("td", { class: "num", "data-testid": "sense-similarity" }, fmt(w.similarity, 2)), h("td", { class: "num" }, fmt(w.score, 2))));
  return h("div", { class: "explain-col minicoil", "data-testid": "explain-minicoil" },
    h("div", { class: "model-head" }, h("b", {}, "miniCOIL"), h("span", { class: "sc", "data-testid": "explain-score" }, fmt(x.score, 3))),
    h("h4", {}, `shared words (${words.length}): score = Σ idf · tf · sense similarity`),
    words.length ? h("table", { class: "data shared", "data-testid": "minicoil-words" },
      h("thead", {}, h("tr", {}, h("th", {}, "word"), h("th", { title: "BM25 term-frequency part of the product" }, "tf"),
        h("th", { title: "inverse document frequency" }, "idf"), h("th", { title: "cosine of the query's and the product's meaning of the word" }, "sense"),
        h("th", { title: "idf × tf × sense" }, "score"))),
      h("tbody", {}, rows))
      : h("div", { class: "muted small", "data-testid": "shared-terms-empty" }, "No shared words: the score is 0."),
    h("div", { class: "muted small" }, "* no sense layer: matched exactly, as in BM25"));
}
