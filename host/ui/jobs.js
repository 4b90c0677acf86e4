// The jobs list: the tenant's recent jobs (GET /v2/jobs) and those this tab submitted,
// with status and a progress bar each. Unfinished jobs are followed live through their
// event streams (a few at a time: a browser opens only six connections to one server).

import { call, followJob, session } from "./api.js";
import { describe, el, notice, percent, say, table, TERMINAL } from "./dom.js";

const LIVE_STREAMS = 4;

/** A progress bar with its percentage as text, labelled for screen readers. */
export function progressBar(label) {
  const bar = el("progress", { class: "job-progress", max: 100, value: 0, "aria-label": label });
  const text = el("span", { class: "progress-text" }, "0%");
  return {
    node: el("span", { class: "progress" }, bar, text),
    set(progress) {
      const value = percent(progress);
      bar.value = value;
      text.textContent = `${value}%`;
    },
  };
}

export function statusBadge(status) {
  const kind = status === "job.completed" ? "ok" : status === "job.failed" ? "bad" : "busy";
  return el("span", { class: `badge ${kind}`, "data-status": status }, status);
}

function row(job) {
  const bar = progressBar(`Progress of job ${job.id}`);
  bar.set(job.progress);
  const status = el("td", {}, statusBadge(job.status));
  const tr = el("tr", { "data-job-id": job.id },
    el("th", { scope: "row" }, el("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
    el("td", {}, job.created_at || ""),
    status,
    el("td", {}, bar.node),
    el("td", {}, (job.outputs || []).map((o) => o.key).join(", ")));
  return {
    tr,
    update(view) {
      status.replaceChildren(statusBadge(view.status));
      bar.set(view.progress);
    },
  };
}

async function load(signal) {
  let jobs = [];
  try {
    const answer = await call("GET", "/v2/jobs?limit=50", { signal });
    jobs = Array.isArray(answer) ? answer : answer.jobs || answer.data || [];
  } catch (err) {
    // A server without the list route still shows the jobs this tab submitted.
    if (err.status !== 404 && err.status !== 405) throw err;
  }
  const seen = new Set(jobs.map((j) => j.id));
  const extra = await Promise.all(session.known.filter((id) => !seen.has(id)).map((id) =>
    call("GET", `/v2/jobs/${encodeURIComponent(id)}`, { signal }).catch(() => null)));
  return [...jobs, ...extra.filter(Boolean)].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
}

export function jobsView(main, signal) {
  const error = notice("error");
  const body = el("div", {}, el("p", {}, "Loading jobs…"));
  const refresh = el("button", { type: "button" }, "Refresh");
  main.append(el("section", { "aria-labelledby": "jobs-title" },
    el("div", { class: "title-row" }, el("h1", { id: "jobs-title" }, "Jobs"), refresh, el("a", { class: "button", href: "#/submit" }, "Submit a job")),
    error, body));

  let round = null;
  async function show() {
    if (round) round.abort();
    round = new AbortController();
    signal.addEventListener("abort", () => round.abort(), { once: true });
    const mine = round.signal;
    say(error, "");
    let jobs;
    try {
      jobs = await load(mine);
    } catch (err) {
      if (err.name !== "AbortError") say(error, describe(err));
      return;
    }
    if (mine.aborted) return;
    if (!jobs.length) {
      body.replaceChildren(el("p", {}, "No jobs yet. ", el("a", { href: "#/submit" }, "Submit one"), "."));
      return;
    }
    const rows = jobs.map(row);
    body.replaceChildren(table("Recent jobs, newest first", ["Job", "Created", "Status", "Progress", "Outputs"], rows.map((r) => r.tr), { id: "jobs-table" }));
    const live = jobs.map((job, i) => [job, rows[i]]).filter(([job]) => !TERMINAL.has(job.status));
    follow(live, mine);
  }

  // Follows up to LIVE_STREAMS jobs at once; the next waits for a slot.
  async function follow(queue, mine) {
    const next = async () => {
      while (queue.length && !mine.aborted) {
        const [job, r] = queue.shift();
        try {
          await followJob(job.id, (message) => {
            if (message.event === "job.status") r.update(JSON.parse(message.data));
          }, mine);
        } catch (err) {
          if (err.name !== "AbortError") say(error, describe(err));
        }
      }
    };
    await Promise.all(Array.from({ length: LIVE_STREAMS }, next));
  }

  refresh.addEventListener("click", show);
  show();
}
