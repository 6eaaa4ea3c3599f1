// Uploads through the chunk protocol, straight from the browser.
//
// A file is cut into fixed 4 MiB pieces (the server accepts any cut: a commit lists chunks
// of up to MAX_CHUNK_BYTES, and content-defined cuts pay off for edits in the middle of a file,
// which a browser never sends). Pieces are read one batch at a time (never the whole file),
// hashed, and the server is asked which of the batch it lacks; only those are sent, while
// the next batch is read. So a retried, cancelled or reloaded upload sends again only what
// the server does not have yet. A commit makes the file appear, as one new version.

import { ApiError, api, csrfHeader, errorFrom, offlineError, postJSON } from "./api.js";
import { app, treeChanged } from "./app.js";
import { displayName, formatDuration, formatRate, formatSize, h, nameOf, showError } from "./dom.js";
import { sha256Hex } from "./sha256.js";

const PIECE = 4 * 1024 * 1024;
const BATCH = 8; // pieces per /chunks/missing question (32 MiB)
const PARALLEL_PUTS = 4;
const PARALLEL_FILES = 2;
const MAX_ATTEMPTS = 8;
const MAX_DROPPED_FILES = 100000;
// A piece that makes no progress for this long is abandoned and sent again (a connection can
// stall without failing: a sleeping laptop, a dropped Wi-Fi, a proxy holding it open).
const STALL_MS = 30000;

const jobs = [];
let nextId = 1;
let panel = null;
let renderQueued = false;
const samples = []; // [time, bytes done in all jobs] over the last seconds, for the rate
let userCollapsed = null; // the panel folds itself when nothing is running, unless told

// -- the queue ------------------------------------------------------------------------------

export function enqueueUploads(items) {
  for (const { file, path } of items) {
    const job = { id: nextId++, file, path, name: nameOf(path), size: file.size, done: 0,
      inflight: new Map(), state: "queued", note: "", controller: new AbortController() };
    jobs.push(job);
    remember(job);
  }
  userCollapsed = null;
  pump();
  render();
}

function pump() {
  const running = jobs.filter((j) => j.state === "uploading").length;
  const queued = jobs.filter((j) => j.state === "queued");
  for (const job of queued.slice(0, Math.max(0, PARALLEL_FILES - running))) runJob(job);
}

async function runJob(job) {
  job.state = "uploading";
  job.note = "";
  job.done = 0;
  job.inflight.clear();
  render();
  try {
    const hashes = await sendPieces(job);
    await commit(job, hashes);
    job.state = "done";
    job.done = job.size;
    forget(job.path);
    treeChanged([job.path]);
    app.refreshSession?.();
  } catch (error) {
    if (job.state === "cancelled" || error.name === "AbortError") {
      job.state = "cancelled";
      forget(job.path);
    } else {
      job.state = "failed";
      job.note = error.message;
    }
  }
  render();
  pump();
}

async function sendPieces(job) {
  const hashes = [];
  const count = Math.ceil(job.size / PIECE);
  let sending = Promise.resolve();
  for (let first = 0; first < count; first += BATCH) {
    const batch = [];
    for (let i = first; i < Math.min(count, first + BATCH); i++) {
      throwIfCancelled(job);
      const data = await job.file.slice(i * PIECE, Math.min(job.size, (i + 1) * PIECE)).arrayBuffer();
      batch.push({ hash: await sha256Hex(data), data });
    }
    hashes.push(...batch.map((p) => p.hash));
    await sending; // at most one batch on the wire while the next one is read
    sending = sendBatch(job, batch);
    sending.catch(() => {}); // awaited below; keeps an early failure from being "unhandled"
  }
  await sending;
  return hashes;
}

async function sendBatch(job, batch) {
  const { missing } = await withRetry(job, () => postJSON("/api/v1/chunks/missing",
    { hashes: batch.map((p) => p.hash) }));
  const wanted = new Set(missing);
  const queue = [];
  let repeats = 0; // bytes of pieces equal to one already queued in this batch
  for (const piece of batch) {
    if (!wanted.has(piece.hash)) job.done += piece.data.byteLength;
    else if (queue.some((p) => p.hash === piece.hash)) repeats += piece.data.byteLength;
    else queue.push(piece);
  }
  await Promise.all(Array.from({ length: PARALLEL_PUTS }, async () => {
    while (queue.length) {
      const piece = queue.shift();
      await withRetry(job, () => putPiece(job, piece));
      job.inflight.delete(piece.hash);
      job.done += piece.data.byteLength;
      render();
    }
  }));
  job.done += repeats;
}

function putPiece(job, piece) {
  return new Promise((resolve, reject) => {
    throwIfCancelled(job);
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/api/v1/chunks/${piece.hash}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", csrfHeader());
    let stalled = false;
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => { stalled = true; xhr.abort(); }, STALL_MS);
    };
    xhr.upload.onprogress = (event) => {
      arm();
      job.inflight.set(piece.hash, event.loaded);
      render();
    };
    const onAbort = () => xhr.abort();
    job.controller.signal.addEventListener("abort", onAbort, { once: true });
    const settle = () => {
      clearTimeout(watchdog);
      job.controller.signal.removeEventListener("abort", onAbort);
      job.inflight.set(piece.hash, 0);
    };
    xhr.onload = async () => {
      settle();
      if (xhr.status >= 200 && xhr.status < 300) { resolve(); return; }
      reject(await errorFrom(new Response(xhr.responseText, { status: xhr.status,
        headers: { "retry-after": xhr.getResponseHeader("retry-after") || "" } })));
    };
    xhr.onerror = () => { settle(); reject(offlineError()); };
    xhr.onabort = () => {
      settle();
      reject(stalled ? offlineError() : new DOMException("Upload cancelled", "AbortError"));
    };
    arm();
    xhr.send(piece.data);
  });
}

async function commit(job, hashes) {
  let parent = null;
  try {
    const existing = await withRetry(job, () => api.metadata(job.path));
    if (existing.type === "folder") throw new ApiError(409, "already_exists", `A folder is named ${job.name} already.`);
    parent = existing.version;
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  const body = () => ({ path: job.path, size: job.size, chunks: hashes, parent_version: parent,
    mtime: job.file.lastModified ? job.file.lastModified / 1000 : undefined, device: "web" });
  try {
    return await withRetry(job, () => postJSON("/api/v1/files/commit", body()));
  } catch (error) {
    // Changed elsewhere while this was uploading: this upload becomes the newest version
    // (the other stays in the file's history).
    if (error.code !== "version_conflict") throw error;
    parent = error.details.current_version ?? null;
    return withRetry(job, () => postJSON("/api/v1/files/commit", body()));
  }
}

// Retries what a dropped connection, a restart or an overloaded server can fail, with
// backoff (or the server's Retry-After), waiting for the browser to be online again.
async function withRetry(job, operation) {
  for (let attempt = 1; ; attempt++) {
    throwIfCancelled(job);
    try {
      const result = await operation();
      if (job.note) { job.note = ""; render(); }
      return result;
    } catch (error) {
      if (error.name === "AbortError" || !(error instanceof ApiError) || !error.retryable ||
          attempt >= MAX_ATTEMPTS) throw error;
      const wait = error.retryAfter || Math.min(30, 0.5 * 2 ** attempt);
      job.note = `${error.message} Retrying in ${Math.ceil(wait)} s…`;
      render();
      await sleep(wait * 1000, job);
      if (navigator.onLine === false) {
        job.note = "Offline: waiting for the connection…";
        render();
        await new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
      }
    }
  }
}

function sleep(ms, job) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    job.controller.signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); },
      { once: true });
  });
}

function throwIfCancelled(job) {
  if (job.controller.signal.aborted) throw new DOMException("Upload cancelled", "AbortError");
}

function cancel(job) {
  if (job.state !== "queued" && job.state !== "uploading") return;
  job.state = "cancelled";
  job.controller.abort();
  forget(job.path);
  render();
  pump();
}

function retry(job) {
  job.controller = new AbortController();
  job.state = "queued";
  remember(job);
  pump();
  render();
}

// -- interrupted uploads (a reload, a closed tab) ---------------------------------------------
// Only names and sizes are kept, per account, so the user can pick the same files again;
// the pieces already on the server are then skipped. Nothing is kept after logging out.

function pendingKey() { return `minidropbox.pending.${app.session?.username || ""}`; }

function pending() {
  try { return JSON.parse(localStorage.getItem(pendingKey()) || "[]"); } catch { return []; }
}

function remember(job) {
  const list = pending().filter((p) => p.path !== job.path);
  list.push({ path: job.path, size: job.size, lastModified: job.file.lastModified });
  localStorage.setItem(pendingKey(), JSON.stringify(list.slice(-500)));
}

function forget(path) {
  localStorage.setItem(pendingKey(), JSON.stringify(pending().filter((p) => p.path !== path)));
}

export function forgetPendingUploads() {
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const key = localStorage.key(i);
    if (key && key.startsWith("minidropbox.pending.")) localStorage.removeItem(key);
  }
}

// A file input for picking an interrupted upload's file again (kept in the panel, so the
// chooser opens from the button's click).
function resumeInput(item) {
  const input = h("input", { type: "file", class: "visually-hidden", tabindex: -1,
    "aria-hidden": "true", "data-role": "resume", "data-path": item.path });
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (!file) return;
    if (file.size !== item.size) {
      showError(new Error(`That file has ${formatSize(file.size)}; the interrupted upload of ${nameOf(item.path)} had ${formatSize(item.size)}.`));
      return;
    }
    enqueueUploads([{ file, path: item.path }]);
  });
  return input;
}

// -- dropped files and folders --------------------------------------------------------------

export async function filesFromDrop(dataTransfer) {
  const roots = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!roots.length) return [...dataTransfer.files].map((file) => ({ file, relative: file.name }));
  const out = [];
  const walk = async (entry, prefix) => {
    if (out.length >= MAX_DROPPED_FILES) return;
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, relative: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) { // readEntries answers in batches until an empty one
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const root of roots) await walk(root, "");
  return out;
}

// -- the panel ------------------------------------------------------------------------------

export function uploadPanel() {
  panel = h("aside", { class: "uploads", "aria-label": "Uploads", hidden: true });
  render();
  return panel;
}

// Drawn at most five times a second, however fast progress events come.
function render() {
  if (renderQueued || !panel) return;
  renderQueued = true;
  setTimeout(() => requestAnimationFrame(() => { renderQueued = false; draw(); }), 200);
}

function progressOf(job) {
  let sent = job.done;
  for (const loaded of job.inflight.values()) sent += loaded;
  return Math.min(job.size, sent);
}

function draw() {
  const interrupted = pending().filter((p) => !jobs.some((j) => j.path === p.path &&
    (j.state === "queued" || j.state === "uploading")));
  const visible = jobs.filter((j) => j.state !== "dismissed");
  panel.hidden = !visible.length && !interrupted.length;
  if (panel.hidden) return;
  const active = visible.filter((j) => j.state === "queued" || j.state === "uploading");
  const total = visible.reduce((sum, j) => sum + (j.state === "cancelled" ? 0 : j.size), 0);
  const sent = visible.reduce((sum, j) => sum + (j.state === "cancelled" ? 0 : progressOf(j)), 0);
  const now = performance.now();
  samples.push([now, sent]);
  while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
  const [t0, b0] = samples[0];
  const rate = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
  const done = visible.filter((j) => j.state === "done").length;
  const summary = active.length
    ? `${done} of ${visible.length} done · ${formatSize(sent)} of ${formatSize(total)}` +
      (rate > 0 ? ` · ${formatRate(rate)} · ${formatDuration((total - sent) / rate)} left` : "")
    : `${done} of ${visible.length} uploaded`;
  const collapsed = userCollapsed ?? (!active.length && !interrupted.length);
  const header = h("header", {},
    h("h2", { text: active.length ? "Uploading" : "Uploads" }),
    h("span", { class: "spacer-flex" }),
    active.length ? h("button", { type: "button", class: "ghost", text: "Cancel all",
      onclick: () => active.forEach(cancel) }) : h("button", { type: "button", class: "ghost",
      text: "Clear", onclick: () => { visible.forEach((j) => { if (j.state !== "failed") j.state = "dismissed"; }); render(); } }),
    h("button", { type: "button", class: "ghost", "aria-expanded": collapsed ? "false" : "true",
      "aria-label": collapsed ? "Show uploads" : "Hide uploads", text: collapsed ? "▴" : "▾",
      onclick: () => { userCollapsed = !collapsed; render(); } }));
  const overall = h("progress", { max: total || 1, value: sent, "aria-label": "Total upload progress" });
  const items = visible.slice(-200).reverse().map((job) => {
    const state = { queued: "Waiting", uploading: job.note || "Uploading", done: "Done",
      failed: job.note || "Failed", cancelled: "Cancelled" }[job.state];
    return h("li", { class: `upload ${job.state}`, dataset: { path: job.path } },
      h("div", { class: "upload-line" }, h("bdi", { class: "upload-name", text: displayName(job.name) }),
        job.state === "queued" || job.state === "uploading"
          ? h("button", { type: "button", class: "link", text: "Cancel", "aria-label": `Cancel ${job.name}`, onclick: () => cancel(job) })
          : job.state === "failed"
            ? h("button", { type: "button", class: "link", text: "Retry", "aria-label": `Retry ${job.name}`, onclick: () => retry(job) })
            : null),
      h("progress", { max: job.size || 1, value: job.state === "done" ? job.size || 1 : progressOf(job),
        "aria-label": `Progress of ${job.name}` }),
      h("div", { class: "upload-state", role: job.state === "failed" ? "alert" : null },
        `${formatSize(progressOf(job))} of ${formatSize(job.size)} · ${state}`));
  });
  const resumable = interrupted.map((item) => {
    const input = resumeInput(item);
    return h("li", { class: "upload interrupted", dataset: { path: item.path } },
      h("div", { class: "upload-line" }, h("bdi", { class: "upload-name", text: displayName(nameOf(item.path)) }),
        h("button", { type: "button", class: "link", text: "Resume",
          "aria-label": `Resume ${nameOf(item.path)}`, onclick: () => input.click() }),
        h("button", { type: "button", class: "link", text: "Forget",
          "aria-label": `Forget ${nameOf(item.path)}`, onclick: () => { forget(item.path); render(); } }),
        input),
      h("div", { class: "upload-state",
        text: `${formatSize(item.size)} · interrupted: pick the file again to resume` }));
  });
  panel.classList.toggle("collapsed", collapsed);
  panel.replaceChildren(header, h("p", { class: "upload-summary", text: summary }), overall,
    h("ul", { class: "upload-list", hidden: collapsed }, ...resumable, ...items));
  if (active.length) render(); // keep the rate and ETA moving
}

window.addEventListener("beforeunload", (event) => {
  if (jobs.some((j) => j.state === "uploading" || j.state === "queued")) event.preventDefault();
});
