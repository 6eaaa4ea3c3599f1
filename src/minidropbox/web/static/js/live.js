// Live updates: the notifications WebSocket (authenticated by the session cookie) says the
// journal moved; /api/v1/changes says what changed; views reload what it touches.

import { api } from "./api.js";
import { app, treeChanged } from "./app.js";

let socket = null;
let cursor = null;
let retry = 0;
let timer = null;
let stopped = true;

export function startLive() {
  stopped = false;
  connect();
}

export function stopLive() {
  stopped = true;
  clearTimeout(timer);
  if (socket) socket.close(1000);
  socket = null;
  cursor = null;
}

function connect() {
  if (stopped) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/api/v1/notifications`);
  let first = true;
  socket.onmessage = async (message) => {
    retry = 0;
    const latest = JSON.parse(message.data).cursor;
    if (first || cursor === null) {
      first = false;
      const missed = cursor !== null && latest !== cursor;
      if (cursor === null || missed) {
        cursor = latest;
        if (missed) treeChanged([]); // reconnected after changes: reload what is shown
        return;
      }
    }
    if (latest !== cursor) await readChanges();
  };
  socket.onclose = (event) => {
    socket = null;
    if (stopped) return;
    if (event.code === 4401) { window.dispatchEvent(new CustomEvent("session-ended")); return; }
    retry = Math.min(retry + 1, 6);
    timer = setTimeout(connect, 500 * 2 ** retry);
  };
}

// One read at a time. A notification that arrives during a read may announce a change the
// read has already passed: it is not dropped but makes the read go round once more.
let reading = false;
let readAgain = false;
async function readChanges() {
  if (reading) { readAgain = true; return; }
  reading = true;
  try {
    do {
      readAgain = false;
      await readChangesOnce();
    } while (readAgain && !stopped && cursor !== null);
  } finally {
    reading = false;
  }
}

async function readChangesOnce() {
  try {
    const paths = new Set();
    for (let page = 0; page < 50; page++) {
      const batch = await api.changes(cursor);
      for (const change of batch.entries) {
        paths.add(change.path);
        if (change.from_path) paths.add(change.from_path);
      }
      cursor = batch.cursor;
      if (!batch.has_more) break;
    }
    if (paths.size) {
      treeChanged([...paths]);
      app.refreshSession();
    }
  } catch (error) {
    if (error.status === 410) { cursor = null; treeChanged([]); }
  }
}
