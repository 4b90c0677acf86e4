// Submit a job: the job as JSON, planned first with a dry run (POST /v2/jobs?dry_run=true:
// the input probed, each output's plan, conditions and the storage checked, nothing
// encoded), then submitted as planned. Editing the JSON asks for a new plan.

import { call, session } from "./api.js";
import { describe, el, notice, pretty, say, table } from "./dom.js";

const EXAMPLE = {
  input: { url: "https://example.com/input.mp4" },
  storage: { service: "local", path: "/dashboard" },
  outputs: {
    "mp4:720p": { path: "video.mp4" },
    httpstream: { hls: { path: "/hls" } },
    "jpg:320x": { path: "thumbs/thumb_%02d.jpg", number: 3 },
  },
};

const videoText = (v) => [v.codec, `${v.width}×${v.height}`, v.fps ? `${Math.round(v.fps * 100) / 100} fps` : null, v.bitrate_kbps ? `${v.bitrate_kbps} kb/s` : null].filter(Boolean).join(" ");
const audioText = (a) => `${a.codec} ${a.bitrate_kbps} kb/s ${a.sample_rate} Hz`;

/** One line for an output's plan: codecs, sizes and rates, container, pictures, variants. */
function summary(plan) {
  if (!plan) return "";
  const parts = [];
  if (plan.video) parts.push(videoText(plan.video));
  if (plan.audio) parts.push(audioText(plan.audio));
  if (plan.image) parts.push(`${plan.image.codec} ${plan.image.width}×${plan.image.height}, ${plan.image.times.length} picture(s)`);
  if (plan.packaging) {
    const p = plan.packaging;
    parts.push(`${[p.hls ? "HLS" : null, p.dash ? "DASH" : null].filter(Boolean).join(" + ")}, ${p.segment_duration} s segments`);
    parts.push(`variants: ${p.variants.map((v) => v.name + (v.video ? ` (${videoText(v.video)})` : "")).join(", ")}`);
  }
  if (plan.container) parts.push(`${plan.container} (.${plan.extension})`);
  return parts.join(" · ");
}

function planView(answer) {
  const input = answer.input || {};
  const storage = answer.storage || {};
  const rows = (answer.outputs || []).map((o) => el("tr", { "data-output": o.key },
    el("th", { scope: "row" }, o.key),
    el("td", {}, o.type || ""),
    el("td", {}, o.status || ""),
    el("td", {}, o.condition === undefined ? "—" : o.condition ? "true" : "false"),
    el("td", {}, o.error || summary(o.plan)),
    el("td", {}, o.plan ? el("details", {}, el("summary", {}, "plan"), pretty(o.plan)) : "")));
  return el("div", { id: "plan" },
    el("p", {}, `Input: ${input.status || "?"}${input.error ? ` — ${input.error}` : ""}`),
    el("p", {}, `Storage ${storage.service || "?"}: ${storage.valid ? "valid" : `not valid — ${storage.error || ""}`}`),
    table("Dry-run plan", ["Output", "Type", "Status", "Condition", "Plan", "Details"], rows, { id: "plan-table" }));
}

export function submitView(main) {
  const error = notice("error");
  const news = notice("status");
  const text = el("textarea", { id: "job-json", name: "job-json", rows: 16, spellcheck: "false", "aria-describedby": "job-help" });
  text.value = JSON.stringify(EXAMPLE, null, 2);
  const planButton = el("button", { type: "button", id: "plan-button" }, "Plan (dry run)");
  const submitButton = el("button", { type: "submit", id: "submit-button", disabled: true }, "Submit job");
  const plan = el("div", { "aria-live": "polite" });
  let planned = null;

  function parse() {
    try {
      return JSON.parse(text.value);
    } catch (err) {
      say(error, `The job is not valid JSON: ${err.message}`);
      return null;
    }
  }

  text.addEventListener("input", () => {
    planned = null;
    submitButton.disabled = true;
    plan.replaceChildren();
    say(news, "");
  });

  planButton.addEventListener("click", async () => {
    say(error, "");
    say(news, "");
    const job = parse();
    if (!job) return;
    planButton.disabled = true;
    try {
      const answer = await call("POST", "/v2/jobs?dry_run=true", { json: job });
      plan.replaceChildren(planView(answer));
      const ok = answer.input && answer.input.status !== "input.failed" && (answer.storage || {}).valid !== false;
      planned = ok ? text.value : null;
      submitButton.disabled = !ok;
      say(news, ok ? "Planned. Check the plan, then submit." : "The plan shows problems; fix the job and plan again.");
    } catch (err) {
      plan.replaceChildren();
      say(error, describe(err));
    } finally {
      planButton.disabled = false;
    }
  });

  const form = el("form", { "aria-labelledby": "submit-title" },
    el("h1", { id: "submit-title" }, "Submit a job"),
    el("label", { for: "job-json" }, "Job (JSON, as POST /v2/jobs takes it)"),
    el("p", { id: "job-help", class: "help" }, "Plan it first: the dry run probes the input and shows what each output will be, without encoding anything."),
    text,
    el("div", { class: "buttons" }, planButton, submitButton),
    error, news, plan);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (planned === null || planned !== text.value) return;
    say(error, "");
    submitButton.disabled = true;
    try {
      const job = await call("POST", "/v2/jobs", { json: text.value });
      session.remember(job.id);
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (err) {
      submitButton.disabled = false;
      say(error, describe(err));
    }
  });
  main.append(form);
}
