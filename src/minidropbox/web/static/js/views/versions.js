// The "Versions" dialog: every version of a file, to download or restore.

import { api } from "../api.js";
import { app, treeChanged } from "../app.js";
import { displayName, formatSize, formatTime, h, openDialog, showError, toast } from "../dom.js";

export function openVersions(entry) {
  return openDialog(`Versions of ${displayName(entry.name)}`, (dialog, close) => {
    const body = h("tbody");
    const table = h("table", { class: "versions" },
      h("caption", { class: "visually-hidden", text: `Versions of ${displayName(entry.name)}, newest first` }),
      h("thead", {}, h("tr", {}, ...["Version", "Size", "Saved", "Device", ""].map(
        (label) => h("th", { scope: "col", text: label })))),
      body);
    dialog.append(h("div", { class: "table-wrap" }, table),
      h("div", { class: "buttons" }, h("button", { type: "button", text: "Close",
        onclick: () => close(undefined) })));

    async function load() {
      try {
        const { versions } = await api.versions(entry.path);
        const current = versions.length ? versions[0].version : null;
        body.replaceChildren(...versions.map((v) => h("tr", { dataset: { version: v.version } },
          h("td", {}, `Version ${v.version}`, v.version === current
            ? h("span", { class: "badge", text: "current" }) : null),
          h("td", { text: formatSize(v.size) }),
          h("td", { text: formatTime(v.created_at) }),
          h("td", {}, h("bdi", { text: displayName(v.device || "—") })),
          h("td", { class: "row-actions" },
            h("a", { href: api.downloadUrl(entry.path, v.version), class: "button",
              download: "", text: "Download" }),
            h("button", { type: "button", text: "Restore", disabled: v.version === current,
              onclick: () => restore(v.version) })))));
      } catch (error) {
        showError(error);
        close(undefined);
      }
    }

    async function restore(version) {
      try {
        const restored = await api.restoreVersion(entry.path, version);
        toast(`Restored version ${version} of ${entry.name} as version ${restored.version}.`);
        treeChanged([entry.path]);
        app.refreshSession();
        load();
      } catch (error) {
        showError(error);
      }
    }
    load();
  }, { wide: true });
}
