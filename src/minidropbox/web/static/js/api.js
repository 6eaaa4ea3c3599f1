// Talking to the API from the page: same-origin requests carrying the session cookie, the
// CSRF token on every state-changing request, and errors as readable messages.

let csrfToken = "";

export function setCsrfToken(token) { csrfToken = token || ""; }
export function csrfHeader() { return csrfToken; }

const FRIENDLY = {
  quota_exceeded: "Your storage is full: delete files (and empty the trash) to make room.",
  too_many_requests: "Too many requests; wait a moment and try again.",
  storage_unavailable: "Storage is temporarily unavailable; try again in a minute.",
  version_conflict: "This file was changed elsewhere meanwhile.",
  already_exists: null, // the server's message names the path
};

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status === 502 ||
      this.status === 503 || this.status === 504;
  }
}

export async function errorFrom(response) {
  let code = "http_" + response.status;
  let message = `The server answered ${response.status}.`;
  let details = {};
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error;
    }
  } catch { /* not JSON: keep the status line */ }
  if (FRIENDLY[code]) message = FRIENDLY[code];
  if (response.status === 401) message = "Your session has ended; log in again.";
  const error = new ApiError(response.status, code, message, details);
  error.retryAfter = Number(response.headers.get("retry-after")) || 0;
  return error;
}

export function offlineError() {
  return new ApiError(0, "offline", navigator.onLine === false
    ? "You are offline; check the connection."
    : "The server cannot be reached; check the connection.");
}

// fetch() with the session's CSRF token; throws ApiError for any non-2xx answer.
export async function request(method, url, { json, body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin", signal };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrfToken;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw offlineError();
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("session-ended"));
    throw error;
  }
  return response;
}

export async function getJSON(url, params) { return (await request("GET", withQuery(url, params))).json(); }
export async function postJSON(url, json) {
  const response = await request("POST", url, { json });
  return response.status === 204 ? null : response.json();
}
export async function del(url, params) {
  const response = await request("DELETE", withQuery(url, params));
  return response.status === 204 ? null : response.json();
}

export function withQuery(url, params) {
  if (!params) return url;
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${url}?${text}` : url;
}

export const api = {
  session: () => getJSON("/api/v1/auth/session"),
  login: (username, password) => postJSON("/api/v1/auth/session", { username, password }),
  signup: (username, password) => postJSON("/api/v1/auth/signup", { username, password }),
  logout: () => request("DELETE", "/api/v1/auth/session"),
  list: (path, cursor, recursive = false) =>
    getJSON("/api/v1/files/list", { path, cursor, recursive: recursive ? "true" : undefined }),
  metadata: (path) => getJSON("/api/v1/files/metadata", { path }),
  mkdir: (path) => postJSON("/api/v1/files/folder", { path }),
  move: (from, to) => postJSON("/api/v1/files/move", { from, to }),
  remove: (path) => del("/api/v1/files", { path }),
  versions: (path) => getJSON("/api/v1/files/versions", { path }),
  restoreVersion: (path, version) => postJSON("/api/v1/files/restore", { path, version }),
  trash: () => getJSON("/api/v1/trash"),
  undelete: (path) => postJSON("/api/v1/trash/restore", { path }),
  purge: (path) => del("/api/v1/trash", path === undefined ? undefined : { path }),
  changes: (cursor) => getJSON("/api/v1/changes", { cursor }),
  viewUrl: (path, version) => withQuery("/api/v1/files/view", { path, version }),
  downloadUrl: (path, version) =>
    withQuery("/api/v1/files/view", { path, version, download: "true" }),
  zipUrl: (path) => withQuery("/api/v1/files/zip", { path }),
};
