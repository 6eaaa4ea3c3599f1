// The toolbar's actions on selected entries. Each is enabled by `when(selection)`; `key` is
// its keyboard shortcut in the list.

import { api } from "./api.js";
import { app, registerAction } from "./app.js";
import { askText, h, join, parentOf, toast } from "./dom.js";
import { chooseFolder, moveEntries } from "./views/move.js";
import { openVersions } from "./views/versions.js";

const one = (selection) => selection.length === 1;
const some = (selection) => selection.length > 0;

registerAction({ id: "rename", label: "Rename", key: "F2", order: 10, when: one,
  run: async ([entry]) => {
    const name = await askText(`Rename ${entry.type}`, "New name",
      { value: entry.name, submit: "Rename" });
    if (!name || name === entry.name) return;
    await api.move(entry.path, join(parentOf(entry.path), name));
  } });

registerAction({ id: "move", label: "Move", order: 20, when: some,
  run: async (selection, context) => {
    const target = await chooseFolder(`Move ${describe(selection)}`, context.folder,
      selection.map((e) => e.path));
    if (target !== undefined) await moveEntries(selection.map((e) => e.path), target);
  } });

registerAction({ id: "delete", label: "Delete", key: "Delete", order: 30, when: some,
  run: async (selection, context) => {
    const deleted = [];
    let unshared = 0;  // members who lost a shared folder deleted by its owner
    try {
      for (const entry of selection) {
        const answer = await api.remove(entry.path);
        unshared += (answer && answer.unshared) || 0;
        deleted.push(entry.path);
      }
    } finally {
      if (deleted.length) {
        app.refreshSession();
        const lost = unshared ? ` It was shared: ${unshared} member(s) lost access; undo brings it back unshared.` : "";
        toast(`Moved ${deleted.length === 1 ? "1 item" : `${deleted.length} items`} to the trash.${lost}`, {
          action: { label: "Undo", run: async () => {
            for (const path of deleted) await api.undelete(path);
            context.reload();
          } } });
      }
    }
  } });

registerAction({ id: "download", label: "Download", order: 40, when: some,
  run: async (selection) => {
    // One navigation per item: the server answers each with Content-Disposition: attachment,
    // so the page stays. Folders come as zip files, streamed.
    for (const entry of selection) {
      const url = entry.type === "folder" ? api.zipUrl(entry.path) : api.downloadUrl(entry.path);
      const link = h("a", { href: url, download: "", hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } });

registerAction({ id: "versions", label: "Versions", order: 50,
  when: (selection) => one(selection) && selection[0].type === "file",
  run: ([entry]) => openVersions(entry) });

function describe(selection) {
  return selection.length === 1 ? selection[0].name : `${selection.length} items`;
}
