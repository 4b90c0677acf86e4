// One job: status and progress (live from its event stream), outputs with players and
// thumbnails, quality charts, metadata, the events as they arrive, and the webhook-delivery log.

import { call, followJob, sameOrigin } from "./api.js";
import { describe, el, notice, pretty, say, table, TERMINAL } from "./dom.js";
import { progressBar, statusBadge } from "./jobs.js";
import { filePlayer, hlsPlayer, picture } from "./player.js";
import { qualityCharts } from "./quality.js";

const enc = encodeURIComponent;

/** Every URL of an output, as {format, url}. */
function outputUrls(output) {
  const urls = [];
  if (output.url) urls.push({ format: output.format, url: output.url });
  for (const entry of output.urls || []) {
    if (typeof entry === "string") urls.push({ format: output.format, url: entry });
    else if (entry && entry.url) urls.push({ format: entry.format || output.format, url: entry.url });
  }
  return urls;
}

/** Links named by file (the whole URL is their title): short enough for a phone. */
function links(output) {
  return outputUrls(output).map(({ format, url }) => {
    const file = decodeURIComponent(new URL(url, location.href).pathname.split("/").pop() || url);
    return el("a", { href: url, class: "url", rel: "noreferrer", title: url }, format === output.format ? file : `${format}: ${file}`);
  });
}

function outputsTable(outputs) {
  const rows = outputs.map((o) => el("tr", { "data-output": o.key },
    el("th", { scope: "row" }, o.key),
    el("td", {}, o.type || ""),
    el("td", {}, o.status || ""),
    el("td", { class: "urls" }, links(o), o.error ? el("span", { class: "error-text" }, o.error) : null)));
  return table("Outputs", ["Output", "Type", "Status", "Where"], rows, { id: "outputs-table" });
}

/** Players and pictures for the outputs that are done. */
function media(outputs, signal) {
  const items = [];
  for (const output of outputs) {
    if (output.error || !String(output.status || "").match(/\.(encoded|created|packaged)$/)) continue;
    for (const { format, url } of outputUrls(output)) {
      const label = `${output.key} (${format})`;
      let node = null;
      // HLS is fetched by script, which the page's policy allows only from this server;
      // packages elsewhere are the links of the outputs table.
      if (output.type === "httpstream" && (format === "hls" || url.endsWith(".m3u8"))) node = sameOrigin(url) ? hlsPlayer(url, `HLS player: ${label}`, signal) : null;
      else if (output.type === "video") node = filePlayer(url, `Video: ${label}`, signal);
      else if (output.type === "image" && !url.endsWith(".vtt")) node = picture(url, `Thumbnail: ${label}`, signal);
      if (node) items.push(el("figure", { class: "media-item" }, node, el("figcaption", {}, label)));
    }
  }
  return items.length ? el("div", { class: "media-grid" }, items) : el("p", {}, "Players and thumbnails appear when outputs are done.");
}

function webhookTable(log) {
  if (!log.events.length) return el("p", {}, "No events recorded yet.");
  const rows = log.events.map((e) => el("tr", {},
    el("td", {}, String(e.id)),
    el("th", { scope: "row" }, e.event),
    el("td", {}, e.state || ""),
    el("td", {}, String((e.attempts || []).length)),
    el("td", {}, e.delivered_at || e.next_attempt_at || e.failed_at || ""),
    el("td", {}, e.last_error || "")));
  return table("Webhook deliveries", ["Event id", "Event", "State", "Attempts", "When", "Last error"], rows, { id: "webhooks-table" });
}

function metadataView(metadata) {
  const keys = Object.keys(metadata);
  if (!keys.length) return el("p", {}, "No metadata yet.");
  return el("div", {}, keys.map((key) => el("details", { "data-key": key }, el("summary", {}, key), pretty(metadata[key]))));
}

export function jobView(main, id, signal) {
  const error = notice("error");
  const status = el("span", {}, "…");
  const bar = progressBar(`Progress of job ${id}`);
  const inputState = el("p", { class: "input-state" });
  const outputs = el("div", {}, el("p", {}, "Loading…"));
  const players = el("div", {});
  const metadata = el("div", {}, el("p", {}, "No metadata yet."));
  const quality = el("section", { "aria-labelledby": "quality-title", hidden: true });
  const events = el("ol", { class: "events", id: "events", "aria-live": "polite" });
  const webhooks = el("div", {}, el("p", {}, "Loading…"));
  const section = (title, idName, ...body) => el("section", { "aria-labelledby": idName }, el("h2", { id: idName }, title), ...body);

  main.append(el("article", { "aria-labelledby": "job-title" },
    el("h1", { id: "job-title" }, "Job ", el("code", {}, id)),
    error,
    el("p", { class: "job-state" }, "Status: ", status, " ", bar.node),
    inputState,
    section("Outputs", "outputs-title", outputs, players),
    quality,
    section("Metadata", "metadata-title", metadata),
    section("Events", "events-title", events),
    section("Webhook deliveries", "webhooks-title", webhooks)));

  let mediaShown = "";
  let mediaAbort = new AbortController();
  signal.addEventListener("abort", () => mediaAbort.abort(), { once: true });

  function render(job) {
    status.replaceChildren(statusBadge(job.status));
    bar.set(job.progress);
    const input = job.input || {};
    inputState.replaceChildren("Input: ", input.status || "", input.error ? el("span", { class: "error-text", id: "input-error" }, ` — ${input.error}`) : "");
    outputs.replaceChildren(outputsTable(job.outputs || []));
    // Players are rebuilt only when the set of finished outputs changes.
    const done = JSON.stringify((job.outputs || []).map((o) => [o.key, o.status, o.url, o.urls]));
    if (done !== mediaShown && (TERMINAL.has(job.status) || (job.outputs || []).some((o) => o.url || o.urls))) {
      mediaShown = done;
      mediaAbort.abort();
      mediaAbort = new AbortController();
      players.replaceChildren(media(job.outputs || [], mediaAbort.signal));
    }
  }

  // Details are read when the page opens and again when the job ends; only the latest
  // read is shown, whichever answer arrives last.
  let detailsRound = 0;
  async function refreshDetails() {
    const round = ++detailsRound;
    const read = (path) => call("GET", path, { signal }).then((value) => ({ value }), (error) => ({ error }));
    const [meta, log] = await Promise.all([read(`/v2/metadata/jobs/${enc(id)}`), read(`/v2/jobs/${enc(id)}/webhooks`)]);
    if (round !== detailsRound || signal.aborted) return;
    metadata.replaceChildren(meta.error ? el("p", {}, describe(meta.error)) : metadataView(meta.value));
    const charts = meta.error ? null : qualityCharts(meta.value);
    quality.hidden = !charts;
    quality.replaceChildren(el("h2", { id: "quality-title" }, "Quality"), charts || "");
    webhooks.replaceChildren(log.error ? el("p", {}, describe(log.error)) : webhookTable(log.value));
  }

  function logEvent(message) {
    let detail = "";
    try {
      const data = JSON.parse(message.data);
      detail = data.data && data.data.key ? ` (${data.data.key})` : "";
    } catch { /* text */ }
    events.append(el("li", { "data-event": message.event }, el("span", { class: "event-name" }, message.event), `${detail} · event ${message.id || ""}`));
  }

  (async () => {
    try {
      const job = await call("GET", `/v2/jobs/${enc(id)}`, { signal });
      render(job);
      refreshDetails();
      await followJob(id, (message) => {
        if (message.event === "job.status") {
          const view = JSON.parse(message.data);
          render(view);
          if (TERMINAL.has(view.status)) refreshDetails();
        } else {
          logEvent(message);
        }
      }, signal);
    } catch (err) {
      if (err.name !== "AbortError") say(error, describe(err));
    }
  })();
}
