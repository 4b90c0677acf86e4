// DOM helpers. Job data is only ever put in the page as text (textContent, attributes
// set one by one), never parsed as HTML.

/** el("a", {href: "#/x", class: "c"}, "text", child, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  append(node, ...children);
  return node;
}

export function append(node, ...children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** A message region for errors (role=alert) or news (role=status). */
export function notice(kind = "error") {
  return el("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status", hidden: true });
}

export function say(region, text) {
  region.textContent = text || "";
  region.hidden = !text;
}

/** An error from the API, as its message and code. */
export function describe(err) {
  if (err && err.code) return `${err.message} (${err.code})`;
  return String(err && err.message ? err.message : err);
}

/** A table in a scrolling wrapper, with a caption and column headers. Each cell is
 *  labelled with its column (data-label), so a phone can show rows as stacked cards. */
export function table(caption, headers, rows, attrs = {}) {
  for (const tr of rows) {
    [...tr.children].forEach((cell, i) => { if (headers[i]) cell.dataset.label = headers[i]; });
  }
  return el("div", { class: "table-wrap" },
    el("table", attrs,
      el("caption", {}, caption),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

export function pretty(value) {
  return el("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function percent(progress) {
  const n = parseInt(String(progress || "0"), 10);
  return Number.isFinite(n) ? Math.max(0, Math.min(100, n)) : 0;
}

export const TERMINAL = new Set(["job.completed", "job.failed"]);
