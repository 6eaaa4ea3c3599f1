// "Files": one folder at a time — breadcrumbs, toolbar, sortable list, search, drops.

import { api } from "../api.js";
import { app, registerView, routeTo } from "../app.js";
import { askText, displayName, h, join, nameOf, parentOf, showError, toast } from "../dom.js";
import { DRAG_TYPE, EntryList, dropTarget } from "../list.js";
import { enqueueUploads, filesFromDrop } from "../upload.js";
import { moveEntries } from "./move.js";
import { openPreview } from "./preview.js";

const MAX_LIST_PAGES = 20; // 200,000 entries at the server's default page size
const MAX_SEARCH_PAGES = 20;
const MAX_SEARCH_RESULTS = 2000;

registerView({ id: "files", label: "Files", render: renderFiles });

function renderFiles(container, route) {
  const state = { folder: route.path, entries: [], sort: "name", descending: false,
    search: null, generation: 0 };
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" });
  const status = h("p", { class: "status", "aria-live": "polite" });
  const actionButtons = app.actions.map((action) => h("button", { type: "button",
    class: "action", text: action.label, disabled: true,
    onclick: () => runAction(action, list.selection()) }));
  const list = new EntryList(`Files in ${state.folder === "/" ? "your home folder" : displayName(nameOf(state.folder))}`, {
    open: (entry) => openEntry(entry),
    selectionChanged: (selection) => {
      app.actions.forEach((action, i) => { actionButtons[i].disabled = !action.when(selection); });
      status.textContent = summary(selection);
    },
    dropOnFolder: (folder, dataTransfer) => dropInto(folder.path, dataTransfer),
    keyAction: (key, selection) => {
      const byKey = app.actions.find((a) => a.key === key && a.when(selection));
      if (byKey) { runAction(byKey, selection); return true; }
      if (key === "Backspace" && state.folder !== "/" && !state.search) {
        routeTo("files", parentOf(state.folder));
        return true;
      }
      return false;
    },
    secondary: (entry) => (state.search ? parentOf(entry.path) : ""),
  });

  const fileInput = h("input", { type: "file", multiple: true, class: "visually-hidden",
    tabindex: -1, "aria-hidden": "true", "data-role": "upload-files" });
  const folderInput = h("input", { type: "file", multiple: true, webkitdirectory: true,
    class: "visually-hidden", tabindex: -1, "aria-hidden": "true", "data-role": "upload-folder" });
  for (const input of [fileInput, folderInput]) {
    input.addEventListener("change", () => {
      enqueueUploads([...input.files].map((file) => ({
        file, path: join(state.folder, file.webkitRelativePath || file.name) })));
      input.value = "";
    });
  }
  const searchInput = h("input", { type: "search", "aria-label": "Search", placeholder: "Search",
    autocomplete: "off", spellcheck: "false" });
  const searchForm = h("form", { class: "search", role: "search",
    onsubmit: (event) => { event.preventDefault(); runSearch(searchInput.value.trim()); } },
  searchInput, h("button", { type: "submit", text: "Search" }));

  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "File actions" },
    h("button", { type: "button", class: "primary", text: "Upload", onclick: () => fileInput.click() }),
    h("button", { type: "button", class: "upload-folder", text: "Upload folder",
      onclick: () => folderInput.click() }),
    h("button", { type: "button", text: "New folder", onclick: newFolder }),
    h("span", { class: "divider", "aria-hidden": "true" }),
    actionButtons, fileInput, folderInput);
  const sortButtons = {};
  const header = h("div", { class: "list-header", "aria-hidden": "false" },
    h("span", { class: "icon" }),
    ...["name", "size", "modified"].map((key) => {
      sortButtons[key] = h("button", { type: "button", class: `sort ${key}`,
        text: key[0].toUpperCase() + key.slice(1), onclick: () => setSort(key) });
      return h("span", { class: `cell ${key}` }, sortButtons[key]);
    }));
  const empty = h("div", { class: "empty", hidden: true });
  const view = h("section", { class: "files", "aria-label": "Files" },
    h("div", { class: "files-top" }, crumbs, searchForm), toolbar, header, list.el, empty, status);
  container.replaceChildren(view);
  dropTarget(view, (dataTransfer) => dropInto(state.folder, dataTransfer));

  async function load(keepSelection = false) {
    const generation = ++state.generation;
    renderCrumbs();
    if (!keepSelection) status.textContent = "Loading…";
    try {
      const entries = [];
      let cursor = null;
      let truncated = false;
      for (let page = 0; ; page++) {
        const listing = await api.list(state.folder, cursor);
        entries.push(...listing.entries);
        cursor = listing.cursor;
        if (!cursor) break;
        if (page + 1 >= MAX_LIST_PAGES) { truncated = true; break; }
      }
      if (generation !== state.generation || state.search) return;
      if (entries.length === 1 && entries[0].path === state.folder && entries[0].type === "file") {
        routeTo("files", parentOf(state.folder)); // a file's URL: show its folder
        return;
      }
      state.entries = entries;
      state.truncated = truncated;
      show(keepSelection);
    } catch (error) {
      if (generation !== state.generation) return;
      if (error.status === 404 && state.folder !== "/") {
        toast(`${state.folder} no longer exists.`);
        routeTo("files", parentOf(state.folder));
        return;
      }
      status.textContent = "";
      showError(error);
    }
  }

  function show(keepSelection) {
    const entries = state.search ? state.search.results : state.entries;
    const sorted = [...entries].sort(compare(state.sort, state.descending));
    list.setEntries(sorted, keepSelection);
    for (const [key, button] of Object.entries(sortButtons)) {
      button.parentElement.setAttribute("aria-sort", key === state.sort
        ? (state.descending ? "descending" : "ascending") : "none");
    }
    empty.hidden = sorted.length > 0;
    empty.textContent = state.search
      ? (state.search.done ? `Nothing named like “${state.search.query}” here.` : "Searching…")
      : "This folder is empty. Drop files here, or use Upload.";
    list.el.hidden = sorted.length === 0;
    if (state.truncated && !state.search) {
      toast(`Showing the first ${entries.length} entries of this folder.`);
    }
  }

  function summary(selection) {
    const entries = state.search ? state.search.results : state.entries;
    const count = `${entries.length} ${entries.length === 1 ? "item" : "items"}`;
    return selection.length ? `${selection.length} selected of ${count}` : count;
  }

  function setSort(key) {
    state.descending = state.sort === key ? !state.descending : false;
    state.sort = key;
    show(true);
  }

  function renderCrumbs() {
    const parts = state.folder === "/" ? [] : state.folder.slice(1).split("/");
    const items = [crumb("Home", "/")];
    let path = "";
    for (const part of parts) {
      path += `/${part}`;
      items.push(h("span", { class: "sep", "aria-hidden": "true", text: "›" }), crumb(part, path));
    }
    if (state.search) {
      items.push(h("span", { class: "sep", "aria-hidden": "true", text: "›" }),
        h("span", { class: "crumb current", text: `Results for “${state.search.query}”` }),
        h("button", { type: "button", class: "link", text: "Clear search", onclick: clearSearch }));
    } else {
      items[items.length - 1].setAttribute("aria-current", "page");
    }
    crumbs.replaceChildren(...items);
    document.title = `${state.folder === "/" ? "Home" : displayName(nameOf(state.folder))} – Mini-Dropbox`;
  }

  function crumb(label, path) {
    const link = h("a", { href: `#/files${path === "/" ? "/" : path.split("/").map(encodeURIComponent).join("/")}`,
      class: "crumb" }, h("bdi", { text: displayName(label) }));
    dropTarget(link, (dataTransfer) => dropInto(path, dataTransfer));
    return link;
  }

  function openEntry(entry) {
    if (entry.type === "folder") routeTo("files", entry.path);
    else openPreview(entry);
  }

  async function runAction(action, selection) {
    try {
      await action.run(selection, { folder: state.folder, reload: () => load(true) });
    } catch (error) {
      showError(error);
    }
    load(true);
  }

  async function newFolder() {
    const name = await askText("New folder", "Folder name", { submit: "Create" });
    if (!name) return;
    try {
      await api.mkdir(join(state.folder, name));
      await load(true);
    } catch (error) {
      showError(error);
    }
  }

  async function dropInto(folder, dataTransfer) {
    if ([...dataTransfer.types].includes(DRAG_TYPE)) {
      const paths = JSON.parse(dataTransfer.getData(DRAG_TYPE) || "[]");
      const moving = paths.filter((p) => p !== folder && parentOf(p) !== folder);
      if (moving.length) await moveEntries(moving, folder);
      load(true);
      return;
    }
    const files = await filesFromDrop(dataTransfer);
    enqueueUploads(files.map(({ file, relative }) => ({ file, path: join(folder, relative) })));
  }

  async function runSearch(query) {
    if (!query) { clearSearch(); return; }
    const generation = ++state.generation;
    state.search = { query, results: [], done: false };
    renderCrumbs();
    show(false);
    const needle = query.normalize("NFC").toLowerCase();
    try {
      let cursor = null;
      for (let page = 0; page < MAX_SEARCH_PAGES; page++) {
        const listing = await api.list(state.folder, cursor, true);
        if (generation !== state.generation) return;
        for (const entry of listing.entries) {
          if (entry.name.normalize("NFC").toLowerCase().includes(needle)) {
            state.search.results.push(entry);
          }
        }
        cursor = listing.cursor;
        if (!cursor || state.search.results.length >= MAX_SEARCH_RESULTS) break;
      }
      state.search.done = true;
      show(false);
      list.el.focus();
    } catch (error) {
      showError(error);
    }
  }

  function clearSearch() {
    state.search = null;
    searchInput.value = "";
    load(false);
  }

  let reloadTimer = null;
  const onTreeChanged = (event) => {
    const paths = event.detail.paths;
    const touches = !paths.length || paths.some((p) => p && (parentOf(p) === state.folder ||
      p === state.folder || state.folder.startsWith(`${p}/`)));
    if (!touches || state.search) return;
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load(true), 150);
  };
  app.events.addEventListener("tree-changed", onTreeChanged);
  load(false).then(() => list.el.focus({ preventScroll: true }));
  return () => {
    clearTimeout(reloadTimer);
    state.generation++;
    app.events.removeEventListener("tree-changed", onTreeChanged);
  };
}

function compare(key, descending) {
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const sign = descending ? -1 : 1;
  return (a, b) => {
    if (a.type !== b.type) return a.type === "folder" ? -1 : 1; // folders first, always
    let order = 0;
    if (key === "size") order = (a.size || 0) - (b.size || 0);
    else if (key === "modified") order = (a.modified || 0) - (b.modified || 0);
    if (order === 0) order = collator.compare(a.name, b.name);
    return sign * order;
  };
}
