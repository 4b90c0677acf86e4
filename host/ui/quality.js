// Quality charts: each measured output's VMAF over time (its metadata's
// `quality.vmaf.series`), drawn as SVG; a package has one chart per rung. A ladder
// planned from the content (`quality.ladder`) is drawn as its probes' VMAF against bit
// rate, the rungs kept marked.

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

/** A planned ladder: every probe as a dot (VMAF over log bit rate), each kept rung a
 *  ringed, labelled point, joined top to bottom. */
function ladderChart(name, ladder) {
  const probes = ladder.probes || [];
  const rungs = (ladder.rungs || []).filter((r) => r.vmaf != null && r.bitrate_kbps > 0);
  const rates = probes.concat(rungs).map((p) => Math.log10(Math.max(1, p.bitrate_kbps)));
  const lo = Math.floor(Math.min(...rates, 2));
  const hi = Math.ceil(Math.max(...rates, lo + 1));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (kbps) => PAD.left + ((Math.log10(Math.max(1, kbps)) - lo) / (hi - lo)) * plotW;
  // The scores' own range (from the decade below the lowest), so the hull is legible.
  const floor = Math.max(0, Math.min(90, Math.floor(Math.min(...probes.concat(rungs).map((p) => p.vmaf), 100) / 10) * 10));
  const y = (score) => PAD.top + (1 - (Math.max(floor, Math.min(100, score)) - floor) / (100 - floor)) * plotH;
  const steps = [];
  for (let v = floor; v <= 100; v += floor >= 60 ? 5 : 10) steps.push(v);
  const grid = steps.map((v) => svg("g", {},
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), stroke: "#ddd", "stroke-width": 1 }),
    svg("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#555" }, v)));
  const decades = [];
  for (let d = lo; d <= hi; d++) {
    const anchor = d === lo ? "start" : d === hi ? "end" : "middle";
    decades.push(svg("text", { x: x(10 ** d), y: HEIGHT - 4, "text-anchor": anchor, "font-size": 10, fill: "#555" }, `${10 ** d} kbit/s`));
  }
  const dots = probes.map((p) => svg("circle", { cx: x(p.bitrate_kbps).toFixed(1), cy: y(p.vmaf).toFixed(1), r: 2.5, fill: "#999", "data-probe": `${p.width}x${p.height} crf ${p.crf}` },
    svg("title", {}, `${p.width}x${p.height} crf ${p.crf}: VMAF ${p.vmaf}, ${p.bitrate_kbps} kbit/s`)));
  const line = rungs.map((r) => `${x(r.bitrate_kbps).toFixed(1)},${y(r.vmaf).toFixed(1)}`).join(" ");
  const marks = rungs.map((r) => svg("g", { "data-rung": r.name },
    svg("circle", { cx: x(r.bitrate_kbps).toFixed(1), cy: y(r.vmaf).toFixed(1), r: 5, fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }),
    svg("text", { x: x(r.bitrate_kbps).toFixed(1), y: (y(r.vmaf) - 8).toFixed(1), "text-anchor": "middle", "font-size": 10, fill: "#1f5fbf" }, r.name)));
  const summary = `Ladder of ${name}: ${rungs.length} rungs planned from ${probes.length} probes, aiming at VMAF ${ladder.vmaf}`;
  const node = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary, "data-chart": "ladder", "data-output": name, class: "quality-chart" },
    svg("title", {}, summary), ...grid, ...decades, ...dots,
    svg("polyline", { points: line, fill: "none", stroke: "#1f5fbf", "stroke-width": 1 }), ...marks);
  const caption = rungs.map((r) => `${r.name} crf ${r.crf}: VMAF ${r.vmaf} at ${r.bitrate_kbps} kbit/s`).join(" · ");
  return el("figure", { class: "quality-item" }, node, el("figcaption", {}, `${name} ladder: ${caption}`));
}

/** Charts for every output of `metadata` whose quality was measured, or null. */
export function qualityCharts(metadata) {
  const figures = [];
  for (const [key, meta] of Object.entries(metadata || {})) {
    const quality = meta && meta.quality;
    if (!quality) continue;
    if (quality.vmaf) figures.push(chart(key, quality.vmaf));
    if (quality.ladder) figures.push(ladderChart(key, quality.ladder));
    for (const variant of quality.variants || []) {
      if (variant.quality && variant.quality.vmaf) figures.push(chart(`${key} ${variant.name}`, variant.quality.vmaf));
    }
  }
  return figures.length ? el("div", { class: "quality-charts" }, figures) : null;
}
