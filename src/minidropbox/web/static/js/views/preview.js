// The preview dialog: images, text and code, PDF, audio and video (seekable: the server
// honours Range). Everything is loaded from /api/v1/files/view, which serves user content
// sandboxed, so a file can never run script in the app.

import { api } from "../api.js";
import { displayName, fileKind, formatSize, h, openDialog, showError } from "../dom.js";

const TEXT_PREVIEW_BYTES = 1 << 20;

export function openPreview(entry) {
  return openDialog(displayName(entry.name), (dialog, close) => {
    const url = api.viewUrl(entry.path, entry.version);
    const kind = fileKind(entry.name);
    const stage = h("div", { class: "preview-stage" });
    dialog.classList.add("preview");
    dialog.append(stage, h("div", { class: "buttons" },
      h("span", { class: "muted", text: formatSize(entry.size) }),
      h("a", { href: api.downloadUrl(entry.path, entry.version), class: "button", download: "",
        text: "Download" }),
      h("button", { type: "button", class: "primary", text: "Close", onclick: () => close(undefined) })));
    if (kind === "image") {
      stage.append(h("img", { src: url, alt: entry.name, class: "preview-image" }));
    } else if (kind === "video") {
      stage.append(h("video", { src: url, controls: true, preload: "metadata",
        "aria-label": entry.name }));
    } else if (kind === "audio") {
      stage.append(h("audio", { src: url, controls: true, preload: "metadata",
        "aria-label": entry.name }));
    } else if (kind === "pdf") {
      stage.append(h("iframe", { src: url, title: entry.name, class: "preview-pdf" }));
    } else if (kind === "text" || entry.size <= 64 * 1024) {
      showText(stage, entry, url);
    } else {
      stage.append(h("p", { class: "muted",
        text: "No preview for this kind of file. Download it to open it." }));
    }
  }, { wide: true });
}

async function showText(stage, entry, url) {
  const pre = h("pre", { class: "preview-text", tabindex: 0, "aria-label": `Contents of ${entry.name}` });
  stage.append(pre);
  try {
    const response = await fetch(url, { credentials: "same-origin",
      headers: { Range: `bytes=0-${TEXT_PREVIEW_BYTES - 1}` } });
    if (!response.ok && response.status !== 206) throw new Error(`The server answered ${response.status}.`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.subarray(0, 8000).includes(0)) {
      pre.textContent = "This file looks binary: download it to open it.";
      return;
    }
    pre.textContent = new TextDecoder().decode(bytes); // text, never markup
    if (entry.size > TEXT_PREVIEW_BYTES) {
      stage.append(h("p", { class: "muted", text: "Showing the first 1 MB." }));
    }
  } catch (error) {
    showError(error);
  }
}
