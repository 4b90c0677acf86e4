// Coconut's own Node.js client library (coconutjs, from npm), unchanged, pointed at Copra:
// only `endpoint` differs from what a Coconut user writes. Creates a job, follows it to
// the end, prints each output's URL and the metadata keys, exits 1 if the job failed.
//
//   COPRA_URL=http://127.0.0.1:8080 COPRA_API_KEY=... INPUT_URL=https://.../video.mp4 node submit.js
const Coconut = require("coconutjs");

const endpoint = (process.env.COPRA_URL || "http://127.0.0.1:8080") + "/v2";
const coconut = new Coconut.Client(process.env.COPRA_API_KEY, { endpoint });
coconut.storage = { service: "local", path: process.env.OUTPUT_PATH || "/node-example" };

function call(fn, ...args) {
  return new Promise((resolve, reject) => fn.call(coconut.Job, ...args, (result, err) => (err ? reject(err) : resolve(result))));
}

async function main() {
  const job = await call(coconut.Job.create, {
    input: { url: process.env.INPUT_URL },
    outputs: {
      "mp4:360p": { path: "/360p.mp4" },
      "jpg:160x": { path: "/thumb_%.2d.jpg", number: 2 },
    },
  });
  console.error(`job ${job.id} ${job.status}`);
  let view = job;
  while (!["job.completed", "job.failed"].includes(view.status)) {
    await new Promise((r) => setTimeout(r, 500));
    view = await call(coconut.Job.retrieve, job.id);
    console.error(`  ${view.status} ${view.progress}`);
  }
  for (const output of view.outputs) {
    const urls = output.url ? [output.url] : (output.urls || []).map((u) => (typeof u === "string" ? u : u.url));
    for (const url of urls) console.log(`${output.key}\t${output.status}\t${url}`);
  }
  const metadata = await new Promise((resolve, reject) =>
    coconut.Metadata.retrieve(job.id, (result, err) => (err ? reject(err) : resolve(result))));
  console.error(`metadata for: ${Object.keys(metadata).sort().join(", ")}`);
  process.exit(view.status === "job.completed" ? 0 : 1);
}

main().catch((err) => {
  console.error(`${err.error_code}: ${err.message}`);
  process.exit(2);
});
