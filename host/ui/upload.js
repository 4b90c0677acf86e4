// A file dropped on the submit page, sent to /v2/uploads over tus 1.0: created, then
// sent in chunks, each acknowledged (its bytes on the server's disk) before the next.
// The upload's URL is remembered in localStorage per file (name, size, modification
// time) and key, so dropping the same file again after a reload or a lost connection
// resumes where the server has it (asked with HEAD) instead of starting over.

import { basic, session } from "./api.js";

const CHUNK = 4 << 20;
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 3000, 5000];
const TUS = { "Tus-Resumable": "1.0.0" };

class UploadError extends Error {}

async function failure(response, what) {
  let message = `${what}: ${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.message) message = `${what}: ${body.message}`;
  } catch { /* not JSON */ }
  return new UploadError(message);
}

function headers(extra = {}) {
  return { ...TUS, Authorization: basic(session.key), ...extra };
}

/**
 * The key an upload of this file by this API key is remembered under: a 64-bit FNV-1a
 * hash, so the API key itself is not written to localStorage (crypto.subtle exists only
 * on https and localhost pages).
 */
function memoKey(file) {
  const text = `${session.key}\n${file.name}\n${file.size}\n${file.lastModified}`;
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return "copra.upload." + hash.toString(16).padStart(16, "0");
}

/** The server's offset of an earlier upload, or null if it is gone or another file's. */
async function offsetOf(url, size) {
  const response = await fetch(url, { method: "HEAD", headers: headers(), cache: "no-store" });
  if (!response.ok || Number(response.headers.get("Upload-Length")) !== size) return null;
  return Number(response.headers.get("Upload-Offset"));
}

function encodeMeta(value) {
  const bytes = new TextEncoder().encode(value);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

async function create(file) {
  const meta = [`filename ${encodeMeta(file.name)}`];
  if (file.type) meta.push(`filetype ${encodeMeta(file.type)}`);
  const response = await fetch("/v2/uploads", {
    method: "POST",
    headers: headers({ "Upload-Length": String(file.size), "Upload-Metadata": meta.join(",") }),
  });
  if (response.status !== 201) throw await failure(response, "The upload was refused");
  // The upload's path on this page's origin (Location is written with the server's
  // public URL, which a page reached by another name could not fetch under its CSP).
  return location.origin + new URL(response.headers.get("Location"), location.href).pathname;
}

/**
 * Upload `file`; onProgress(sent, total) after each acknowledged chunk. Resolves to
 * {id, url, resumedAt} once the server has every byte.
 */
export async function upload(file, onProgress, signal) {
  const memo = memoKey(file);
  let url = localStorage.getItem(memo);
  let offset = url ? await offsetOf(url, file.size).catch(() => null) : null;
  const resumedAt = offset;
  if (offset === null) {
    url = await create(file);
    localStorage.setItem(memo, url);
    offset = 0;
  }
  onProgress(offset, file.size);
  let retries = 0;
  while (offset < file.size) {
    if (signal && signal.aborted) throw new UploadError("The upload was stopped.");
    const chunk = file.slice(offset, Math.min(offset + CHUNK, file.size));
    let response = null;
    try {
      response = await fetch(url, {
        method: "PATCH",
        headers: headers({ "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" }),
        body: chunk,
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw new UploadError("The upload was stopped.");
    }
    if (response && response.status === 204) {
      offset = Number(response.headers.get("Upload-Offset"));
      retries = 0;
      onProgress(offset, file.size);
      continue;
    }
    // A lost connection, a request still being written (423) or an offset that moved
    // on (409): wait, ask the server where it is, and go on from there.
    const again = response === null || [409, 423, 502, 503, 504].includes(response.status);
    if (!again || retries >= RETRY_DELAYS_MS.length) {
      throw response ? await failure(response, "The upload failed") : new UploadError("The upload failed: the server could not be reached.");
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[retries++]));
    const now = await offsetOf(url, file.size).catch(() => null);
    if (now === null) throw new UploadError("The upload is gone from the server; drop the file again to start over.");
    offset = now;
  }
  localStorage.removeItem(memo);
  return { id: url.split("/").pop(), url, resumedAt };
}
