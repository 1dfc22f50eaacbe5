/* SVG charts drawn into an existing <svg viewBox="…">: a line chart (loss per step, nDCG@10 per round) and a
 * grouped bar chart (nDCG@10 per run), plus the HTML legends beside them. No library: <path>, <line>,
 * <rect>, <circle> and <text> only; styles through the CSSOM (the CSP refuses style attributes). */
import { clear, h, s } from "./dom.js";
import { isNum } from "./format.js";

export const PALETTE = ["#2f6fdf", "#e0542f", "#1f9d55", "#9b51e0", "#d4a017", "#17a2b8", "#d63384", "#5c6b7a"];

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
 *  refs: horizontal reference lines [{y, label, color}]; vlines: [{x, label}]. Other options: xDomain [min, max],
 *  xTicks, integerX, xFormat / yFormat (number → label), xLabel, yLabel, empty (text when there is nothing to
 *  draw) and note (a line of text over the plot). */
export function lineChart(svgEl, opts) {
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
export function barChart(svgEl, groups, { empty = "no data", yLabel } = {}) {
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

/** A chart legend: items [{name, color, kind}] ("dash" for a reference line) as swatches in `target`. */
export function renderLegend(target, items) {
  clear(target).append(...items.map((it) => h("span", {},
    h("span", { class: `sw ${it.kind || ""}`, style: { background: it.color, borderColor: it.color } }), it.name)));
}
