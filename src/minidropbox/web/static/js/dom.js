// DOM helpers. Text goes in through textContent only: a file name is never parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Bidirectional controls (U+202A-202E, U+2066-2069, U+200E/200F) can make "txt.exe" look
// like "exe.txt". Names are shown with them spelled out, so what you see is what it is.
const BIDI_CONTROLS = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
export function displayName(name) {
  return name.replace(BIDI_CONTROLS, (c) => `[U+${c.charCodeAt(0).toString(16).toUpperCase()}]`);
}

export function clear(el) { el.replaceChildren(); return el; }

const UNITS = ["B", "KB", "MB", "GB", "TB"];
export function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "";
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) { value /= 1000; unit += 1; }
  return `${unit === 0 ? value : value.toFixed(value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond) { return `${formatSize(bytesPerSecond)}/s`; }

export function formatDuration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function formatTime(epochSeconds) {
  if (!epochSeconds) return "";
  return dateFormat.format(new Date(epochSeconds * 1000));
}

export function parentOf(path) {
  if (path === "/") return "/";
  const index = path.lastIndexOf("/");
  return index <= 0 ? "/" : path.slice(0, index);
}

export function nameOf(path) { return path === "/" ? "" : path.slice(path.lastIndexOf("/") + 1); }

export function join(folder, name) { return folder === "/" ? `/${name}` : `${folder}/${name}`; }

export function iconFor(entry) {
  if (entry.type === "folder") return "/static/icons/folder.svg";
  const kind = fileKind(entry.name);
  if (kind === "image") return "/static/icons/image.svg";
  if (kind === "audio" || kind === "video") return "/static/icons/media.svg";
  if (kind === "text") return "/static/icons/text.svg";
  return "/static/icons/file.svg";
}

const KINDS = {
  image: ["png", "jpg", "jpeg", "gif", "webp", "avif", "bmp", "ico", "svg"],
  video: ["mp4", "webm", "ogv", "mov", "m4v"],
  audio: ["mp3", "ogg", "oga", "wav", "flac", "m4a", "aac", "opus"],
  pdf: ["pdf"],
  text: ["txt", "md", "py", "js", "ts", "json", "css", "html", "htm", "xml", "yaml", "yml",
    "toml", "ini", "cfg", "conf", "log", "sh", "rs", "go", "c", "h", "cpp", "hpp", "java",
    "kt", "rb", "php", "sql", "csv", "tsv", "rst", "tex", "svg", "lua", "swift", "jsx", "tsx"],
};
export function fileKind(name) {
  const ext = name.includes(".") ? name.slice(name.lastIndexOf(".") + 1).toLowerCase() : "";
  for (const [kind, exts] of Object.entries(KINDS)) if (exts.includes(ext)) return kind;
  return "other";
}

// A toast: a short message, optionally with one action button.
export function toast(message, { error = false, action, timeout = 5000 } = {}) {
  const box = document.getElementById("toasts");
  while (box.children.length >= 3) box.firstElementChild.remove();
  const item = h("div", { class: error ? "toast error" : "toast", role: error ? "alert" : null },
    h("span", { text: message }));
  if (action) {
    item.append(h("button", { type: "button", class: "link", text: action.label,
      onclick: () => { item.remove(); action.run(); } }));
  }
  item.append(h("button", { type: "button", class: "icon", "aria-label": "Dismiss",
    text: "×", onclick: () => item.remove() }));
  box.append(item);
  if (timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

export function showError(error) {
  if (error && error.name === "AbortError") return;
  toast(error && error.message ? error.message : String(error), { error: true, timeout: 10000 });
}

// A modal <dialog>: built by `build(dialog, close)`, removed when closed. Resolves with the
// value passed to close().
export function openDialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const heading = h("h2", { id: `dialog-${Date.now()}`, text: title });
    const dialog = h("dialog", { class: wide ? "dialog wide" : "dialog",
      "aria-labelledby": heading.id });
    let result;
    const close = (value) => { result = value; dialog.close(); };
    dialog.addEventListener("close", () => { dialog.remove(); resolve(result); });
    const header = h("header", {}, heading,
      h("button", { type: "button", class: "icon", "aria-label": "Close", text: "×",
        onclick: () => close(undefined) }));
    dialog.append(header);
    build(dialog, close);
    document.body.append(dialog);
    dialog.showModal();
  });
}

// A dialog with one text field; resolves with the trimmed value or undefined.
export function askText(title, label, { value = "", submit = "OK" } = {}) {
  return openDialog(title, (dialog, close) => {
    const input = h("input", { type: "text", "aria-label": label, value, required: true,
      autocomplete: "off", spellcheck: "false" });
    const form = h("form", { method: "dialog", class: "stack",
      onsubmit: (event) => { event.preventDefault(); if (input.value.trim()) close(input.value.trim()); } },
      h("label", {}, h("span", { text: label }), input),
      h("div", { class: "buttons" },
        h("button", { type: "button", text: "Cancel", onclick: () => close(undefined) }),
        h("button", { type: "submit", class: "primary", text: submit })));
    dialog.append(form);
    queueMicrotask(() => {
      input.focus();
      const dot = value.lastIndexOf(".");
      input.setSelectionRange(0, dot > 0 ? dot : value.length);
    });
  });
}
