// Players for outputs. This server's files (the `local` storage) need the key: MP4s and
// pictures are fetched with it into blob: URLs, and hls.js adds it to each playlist and
// segment request. Other URLs (object storage) are used as they are.

import { basic, mediaUrl, sameOrigin, session } from "./api.js";
import { describe, el } from "./dom.js";

let hlsModule = null;

async function loadHls() {
  hlsModule ||= import("./vendor/hls.min.mjs").then((m) => m.default);
  return hlsModule;
}

/** A <video> playing an HLS master playlist through hls.js (Chromium has no native HLS). */
export function hlsPlayer(url, label, signal) {
  const video = el("video", { controls: true, muted: true, playsinline: true, preload: "auto", "aria-label": label, "data-format": "hls" });
  const status = el("p", { class: "player-status", role: "status" });
  (async () => {
    const Hls = await loadHls();
    if (signal.aborted) return;
    if (!Hls.isSupported()) {
      if (video.canPlayType("application/vnd.apple.mpegurl") && !sameOrigin(url)) video.src = url;
      else status.textContent = "This browser cannot play HLS (no Media Source Extensions).";
      return;
    }
    const auth = sameOrigin(url) ? basic(session.key) : null;
    const hls = new Hls({
      enableWorker: false, // a worker would need a blob: script, which the page's policy forbids
      xhrSetup(xhr, requestUrl) {
        if (auth && sameOrigin(requestUrl)) xhr.setRequestHeader("Authorization", auth);
      },
    });
    signal.addEventListener("abort", () => hls.destroy(), { once: true });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal) status.textContent = `Playback failed: ${data.details}`;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  })().catch((err) => { status.textContent = `Player failed: ${describe(err)}`; });
  return el("div", { class: "player" }, video, status);
}

/** A <video> for a progressive file (MP4, WebM). */
export function filePlayer(url, label, signal) {
  const video = el("video", { controls: true, muted: true, playsinline: true, preload: "metadata", "aria-label": label, "data-format": "file" });
  const status = el("p", { class: "player-status", role: "status" });
  mediaUrl(url, signal)
    .then((src) => { video.src = src; })
    .catch((err) => { if (err.name !== "AbortError") status.textContent = `Could not load the video: ${describe(err)}`; });
  return el("div", { class: "player" }, video, status);
}

/** An <img> for a picture output (a thumbnail). */
export function picture(url, label, signal) {
  const img = el("img", { alt: label, class: "thumb", loading: "lazy" });
  mediaUrl(url, signal)
    .then((src) => { img.src = src; })
    .catch((err) => { if (err.name !== "AbortError") img.alt = `${label} (could not load: ${describe(err)})`; });
  return img;
}
