// The "Move" dialog (a folder picker) and moving entries into a folder.

import { api } from "../api.js";
import { displayName, h, join, nameOf, openDialog, parentOf, showError, toast } from "../dom.js";

// Moves each path into `folder`; stops at the first failure and says which.
export async function moveEntries(paths, folder) {
  let moved = 0;
  try {
    for (const path of paths) {
      await api.move(path, join(folder, nameOf(path)));
      moved += 1;
    }
  } catch (error) {
    showError(error);
  }
  if (moved) toast(`Moved ${moved === 1 ? nameOf(paths[0]) : `${moved} items`} to ${folder === "/" ? "Home" : nameOf(folder)}.`);
}

// Resolves with the chosen folder path, or undefined. Folders being moved are not offered.
export function chooseFolder(title, start, excluded = []) {
  return openDialog(title, (dialog, close) => {
    let current = start;
    const where = h("p", { class: "where" });
    const folders = h("ul", { class: "folder-list", "aria-label": "Folders" });
    const up = h("button", { type: "button", text: "Up", onclick: () => go(parentOf(current)) });
    const here = h("button", { type: "button", class: "primary", text: "Move here",
      onclick: () => close(current) });
    dialog.append(h("div", { class: "stack" }, h("div", { class: "row-line" }, up, where), folders,
      h("div", { class: "buttons" },
        h("button", { type: "button", text: "Cancel", onclick: () => close(undefined) }), here)));

    async function go(path) {
      current = path;
      where.replaceChildren("Destination: ", h("bdi", { text: path === "/" ? "Home" : displayName(path) }));
      up.disabled = path === "/";
      here.disabled = excluded.some((p) => path === p || path.startsWith(`${p}/`));
      folders.replaceChildren(h("li", { class: "muted", text: "Loading…" }));
      try {
        const subfolders = [];
        let cursor = null;
        do {
          const listing = await api.list(path, cursor);
          subfolders.push(...listing.entries.filter((e) => e.type === "folder"));
          cursor = listing.cursor;
        } while (cursor && subfolders.length < 5000);
        if (current !== path) return;
        folders.replaceChildren(...subfolders.map((folder) => h("li", {},
          h("button", { type: "button", class: "folder-button",
            disabled: excluded.includes(folder.path), onclick: () => go(folder.path) },
          h("img", { src: "/static/icons/folder.svg", alt: "", width: 20, height: 20 }),
          h("bdi", { text: displayName(folder.name) })))));
        if (!subfolders.length) folders.replaceChildren(h("li", { class: "muted", text: "No folders here." }));
      } catch (error) {
        showError(error);
      }
    }
    go(start);
  });
}
