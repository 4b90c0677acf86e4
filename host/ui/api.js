// The API client: every call sends the session's key as the Basic auth username (the
// key never goes into a URL), and API errors become ApiError with the server's
// message and error_code. Event streams are read with fetch, since EventSource cannot
// send an Authorization header.

const KEY = "copra.apiKey";
const ADMIN_KEY = "copra.adminKey";
const KNOWN = "copra.knownJobs";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) { value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY); },
  get adminKey() { return sessionStorage.getItem(ADMIN_KEY); },
  set adminKey(value) { value ? sessionStorage.setItem(ADMIN_KEY, value) : sessionStorage.removeItem(ADMIN_KEY); },
  /** Ids of jobs this tab submitted, newest first. */
  get known() {
    try { return JSON.parse(sessionStorage.getItem(KNOWN) || "[]"); } catch { return []; }
  },
  remember(id) {
    const ids = [id, ...this.known.filter((k) => k !== id)].slice(0, 100);
    sessionStorage.setItem(KNOWN, JSON.stringify(ids));
  },
};

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function basic(key) {
  const bytes = new TextEncoder().encode(`${key}:`);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return `Basic ${btoa(text)}`;
}

/** Whether a URL is this server's: only those get the key. */
export function sameOrigin(url) {
  try { return new URL(url, location.href).origin === location.origin; } catch { return false; }
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = `http_${response.status}`;
  try {
    const body = await response.json();
    if (body && body.message) { message = body.message; code = body.error_code || code; }
  } catch { /* not JSON */ }
  return new ApiError(response.status, message, code);
}

/** call("GET", "/v2/jobs", {admin, key, json, body, contentType, signal}) */
export async function call(method, path, options = {}) {
  const key = options.key || (options.admin ? session.adminKey : session.key);
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = basic(key);
  let body = options.body;
  if (options.json !== undefined) {
    body = typeof options.json === "string" ? options.json : JSON.stringify(options.json);
    headers["Content-Type"] = "application/json";
  } else if (options.contentType) {
    headers["Content-Type"] = options.contentType;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal: options.signal, cache: "no-store" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `The server could not be reached: ${err.message}`, "network_error");
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

/** A blob: URL for one of this server's files (they need the key); other URLs as they are. */
export async function mediaUrl(url, signal) {
  if (!sameOrigin(url)) return url;
  const response = await fetch(url, { headers: { Authorization: basic(session.key) }, signal });
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

/**
 * Follows a job's Server-Sent Events until the stream ends (after the job's final
 * event) or `signal` aborts. onMessage({event, id, data}) gets every message; a dropped
 * connection is resumed with Last-Event-ID, so nothing is lost or repeated.
 */
export async function followJob(id, onMessage, signal) {
  let lastId = null;
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
    const headers = { Authorization: basic(session.key), Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    try {
      const response = await fetch(`/v2/jobs/${encodeURIComponent(id)}/events`, { headers, signal, cache: "no-store" });
      if (!response.ok) throw await failure(response);
      let finished = false;
      await readEvents(response.body, (message) => {
        if (message.id) lastId = message.id;
        if (message.event === "job.completed" || message.event === "job.failed") finished = true;
        onMessage(message);
      });
      // The server ends the stream after the final event (or when it shuts down: resume).
      if (finished) return;
    } catch (err) {
      if (signal.aborted || err.name === "AbortError") return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * (attempt + 1), 5000)));
  }
}

/** Parses an event stream (text/event-stream) from a ReadableStream of bytes. */
export async function readEvents(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { event: "message", id: null, data: [] };
  const dispatch = () => {
    if (message.data.length) onMessage({ event: message.event, id: message.id, data: message.data.join("\n") });
    message = { event: "message", id: null, data: [] };
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") { dispatch(); continue; }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") message.event = value;
      else if (field === "data") message.data.push(value);
      else if (field === "id") message.id = value;
    }
  }
}
