// Uploads a file to a tus server with tus-js-client, as a user's Node.js program would.
// Environment: ENDPOINT, KEY (the API key), FILE, CHUNK (bytes per PATCH; unset: one).
// Prints "chunk <offset>" after each acknowledged chunk, then "done <upload URL>";
// exits 1 with "error <message>" if the upload fails after its retries.
const fs = require("fs");
const tus = require("tus-js-client");

const data = fs.readFileSync(process.env.FILE);
const upload = new tus.Upload(data, {
  endpoint: process.env.ENDPOINT,
  headers: { Authorization: "Bearer " + process.env.KEY },
  chunkSize: process.env.CHUNK ? Number(process.env.CHUNK) : Infinity,
  // Long enough for a server to be restarted between two tries.
  retryDelays: [0, 300, 500, 1000, 1000, 2000, 2000, 3000, 3000, 5000, 5000, 5000],
  metadata: { filename: "clip.mp4", filetype: "video/mp4" },
  onChunkComplete: (_size, accepted) => console.log("chunk " + accepted),
  onError: (err) => {
    console.log("error " + err);
    process.exit(1);
  },
  onSuccess: () => console.log("done " + upload.url),
});
upload.start();
