// Submit a job: the job as JSON, planned first with a dry run (POST /v2/jobs?dry_run=true:
// the input probed, each output's plan, conditions and the storage checked, nothing
// encoded), then submitted as planned. Editing the JSON asks for a new plan. A video
// dropped on the page (or chosen) is uploaded resumably (upload.js) and becomes the
// job's input; a preset fills in the outputs.

import { call, session } from "./api.js";
import { describe, el, notice, pretty, say, table } from "./dom.js";
import { upload } from "./upload.js";

/** Outputs a user can start from; the JSON stays editable. */
const PRESETS = {
  "MP4 720p": { "mp4:720p": { path: "video.mp4" } },
  "MP4 720p + HLS": { "mp4:720p": { path: "video.mp4" }, httpstream: { hls: { path: "/hls" } } },
  "HLS + DASH ladder": { httpstream: { hls: { path: "/hls" }, dash: { path: "/dash" } } },
  "MP4 360p + thumbnails": { "mp4:360p": { path: "video.mp4" }, "jpg:320x": { path: "thumbs/thumb_%02d.jpg", number: 3 } },
};

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

  // The job's text with one part replaced (the example's, if the text is not JSON).
  function edit(change) {
    let job;
    try { job = JSON.parse(text.value); } catch { job = structuredClone(EXAMPLE); }
    change(job);
    text.value = JSON.stringify(job, null, 2);
    text.dispatchEvent(new Event("input"));
  }

  // Upload: drop a file on the zone, or choose one.
  const progress = el("progress", { id: "upload-progress", max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const uploadNews = notice("status");
  const picker = el("input", { type: "file", id: "upload-file", accept: "video/*,audio/*,.mkv,.mov,.mxf,.ts" });
  const zone = el("div", { id: "drop-zone", class: "drop-zone" },
    el("p", {}, "Drop a video here to upload it as the job's input, or "),
    el("label", { for: "upload-file" }, "choose a file"), picker, progress, uploadNews);
  async function send(file) {
    say(error, "");
    progress.hidden = false;
    progress.value = 0;
    say(uploadNews, `Uploading ${file.name}…`);
    try {
      const done = await upload(file, (sent, total) => {
        progress.max = total || 1;
        progress.value = sent;
        say(uploadNews, `Uploading ${file.name}: ${Math.floor((100 * sent) / (total || 1))} %`);
      });
      edit((job) => { job.input = { upload: done.id }; });
      say(uploadNews, `Uploaded ${file.name}${done.resumedAt ? ` (resumed at ${done.resumedAt} bytes)` : ""}: it is the job's input. Pick outputs, then plan.`);
    } catch (err) {
      say(error, describe(err));
      say(uploadNews, "");
    }
  }
  picker.addEventListener("change", () => { if (picker.files[0]) send(picker.files[0]); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) send(file);
  });

  const preset = el("select", { id: "preset" },
    el("option", { value: "" }, "Outputs from a preset…"),
    Object.keys(PRESETS).map((name) => el("option", { value: name }, name)));
  preset.addEventListener("change", () => {
    if (!PRESETS[preset.value]) return;
    edit((job) => { job.outputs = structuredClone(PRESETS[preset.value]); });
  });

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
    zone,
    el("label", { for: "preset" }, "Outputs"),
    preset,
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
