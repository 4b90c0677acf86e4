// Quality charts: each measured output's VMAF over time (its metadata's
// `quality.vmaf.series`), drawn as SVG; a package has one chart per rung.

import { el } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 600;
const HEIGHT = 160;
const PAD = { left: 32, right: 8, top: 8, bottom: 20 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

/** One chart of `vmaf.series` (scores 0–100 over the output's frames). */
function chart(name, vmaf) {
  const series = vmaf.series || [];
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (series.length > 1 ? (i / (series.length - 1)) * plotW : plotW / 2);
  const y = (score) => PAD.top + (1 - Math.max(0, Math.min(100, score)) / 100) * plotH;
  const grid = [0, 20, 40, 60, 80, 100].map((v) => svg("g", {},
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), stroke: "#ddd", "stroke-width": 1 }),
    svg("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#555" }, v)));
  const points = series.map((score, i) => `${x(i).toFixed(1)},${y(score).toFixed(1)}`).join(" ");
  const frames = series.length * (vmaf.series_step || 1);
  const summary = `VMAF of ${name}: mean ${vmaf.mean}, minimum ${vmaf.min}, 5th percentile ${vmaf.p5}, over ${frames} frames`;
  const node = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary, "data-chart": "vmaf", "data-output": name, class: "quality-chart" },
    svg("title", {}, summary),
    ...grid,
    svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 4, "text-anchor": "end", "font-size": 10, fill: "#555" },
      vmaf.series_step > 1 ? `frames (${vmaf.series_step} a point)` : "frames"),
    svg("polyline", { points, fill: "none", stroke: "#1f5fbf", "stroke-width": 1.5 }));
  return el("figure", { class: "quality-item" }, node, el("figcaption", {}, `${name}: VMAF mean ${vmaf.mean} · min ${vmaf.min} · p5 ${vmaf.p5} (${vmaf.model})`));
}

/** Charts for every output of `metadata` whose quality was measured, or null. */
export function qualityCharts(metadata) {
  const figures = [];
  for (const [key, meta] of Object.entries(metadata || {})) {
    const quality = meta && meta.quality;
    if (!quality) continue;
    if (quality.vmaf) figures.push(chart(key, quality.vmaf));
    for (const variant of quality.variants || []) {
      if (variant.quality && variant.quality.vmaf) figures.push(chart(`${key} ${variant.name}`, variant.quality.vmaf));
    }
  }
  return figures.length ? el("div", { class: "quality-charts" }, figures) : null;
}
