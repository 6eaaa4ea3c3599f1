// "Trash": deleted entries, to restore or delete for good.

import { api } from "../api.js";
import { app, registerView, treeChanged } from "../app.js";
import { displayName, formatSize, formatTime, h, openDialog, showError, toast } from "../dom.js";

registerView({ id: "trash", label: "Trash", render: renderTrash });

function renderTrash(container) {
  const body = h("tbody");
  const empty = h("p", { class: "empty", hidden: true, text: "The trash is empty." });
  const emptyButton = h("button", { type: "button", class: "danger", text: "Empty trash",
    onclick: emptyTrash });
  const table = h("table", { class: "trash" },
    h("thead", {}, h("tr", {}, ...["Name", "Size", "Deleted", ""].map(
      (label) => h("th", { scope: "col", text: label })))), body);
  container.replaceChildren(h("section", { class: "trash-view", "aria-label": "Trash" },
    h("div", { class: "files-top" }, h("h1", { text: "Trash" }), emptyButton),
    h("div", { class: "table-wrap" }, table), empty));
  document.title = "Trash – Mini-Dropbox";

  async function load() {
    try {
      const { entries } = await api.trash();
      entries.sort((a, b) => b.deleted_at - a.deleted_at);
      body.replaceChildren(...entries.map((entry) => h("tr", { dataset: { path: entry.path } },
        h("td", {}, h("bdi", { class: "name", text: displayName(entry.path.slice(1)) }),
          entry.type === "folder" ? h("span", { class: "badge", text: "folder" }) : null),
        h("td", { text: entry.type === "folder" ? "—" : formatSize(entry.size) }),
        h("td", { text: formatTime(entry.deleted_at) }),
        h("td", { class: "row-actions" },
          h("button", { type: "button", text: "Restore", onclick: () => restore(entry) }),
          h("button", { type: "button", class: "danger", text: "Delete forever",
            onclick: () => purge(entry) })))));
      empty.hidden = entries.length > 0;
      table.hidden = entries.length === 0;
      emptyButton.disabled = entries.length === 0;
    } catch (error) {
      showError(error);
    }
  }

  async function restore(entry) {
    try {
      await api.undelete(entry.path);
      toast(`Restored ${displayName(entry.path)}.`);
      treeChanged([entry.path]);
      app.refreshSession();
    } catch (error) {
      showError(error);
    }
    load();
  }

  async function purge(entry) {
    if (!(await confirmDialog(`Delete ${displayName(entry.path)} forever?`, "Delete forever"))) return;
    try {
      await api.purge(entry.path);
      app.refreshSession();
    } catch (error) {
      showError(error);
    }
    load();
  }

  async function emptyTrash() {
    if (!(await confirmDialog("Delete everything in the trash forever?", "Empty trash"))) return;
    try {
      await api.purge();
      app.refreshSession();
    } catch (error) {
      showError(error);
    }
    load();
  }

  const onChange = () => load();
  app.events.addEventListener("tree-changed", onChange);
  load();
  return () => app.events.removeEventListener("tree-changed", onChange);
}

function confirmDialog(question, confirm) {
  return openDialog("Are you sure?", (dialog, close) => {
    dialog.append(h("p", { text: question }), h("p", { class: "muted",
      text: "This cannot be undone." }), h("div", { class: "buttons" },
      h("button", { type: "button", text: "Cancel", onclick: () => close(false) }),
      h("button", { type: "button", class: "danger", text: confirm, onclick: () => close(true) })));
  });
}
