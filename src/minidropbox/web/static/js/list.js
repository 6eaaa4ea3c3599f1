// A virtualised, keyboard-driven list of entries with multi-selection. Only the rows in
// view (plus a margin) are in the DOM, so a folder of 10,000 entries scrolls smoothly.

import { displayName, formatSize, formatTime, h, iconFor } from "./dom.js";

const ROW_HEIGHT = 48;
const OVERSCAN = 8;
export const DRAG_TYPE = "application/x-minidropbox-paths";

export class EntryList {
  // handlers: open(entry), selectionChanged(entries), dropOnFolder(folderEntry, dataTransfer),
  //           keyAction(key, entries) -> bool, secondary(entry) -> text under the name
  constructor(label, handlers) {
    this.handlers = handlers;
    this.entries = [];
    this.selected = new Set();
    this.focus = -1;
    this.anchor = -1;
    this.spacer = h("div", { class: "spacer" });
    this.el = h("div", { class: "list", role: "listbox", tabindex: 0,
      "aria-multiselectable": "true", "aria-label": label }, this.spacer);
    this.el.addEventListener("scroll", () => this.render());
    this.el.addEventListener("keydown", (event) => this.onKey(event));
    new ResizeObserver(() => this.render()).observe(this.el);
  }

  setEntries(entries, keepSelection = true) {
    const focusPath = this.entries[this.focus]?.path;
    this.entries = entries;
    const present = new Set(entries.map((e) => e.path));
    this.selected = keepSelection
      ? new Set([...this.selected].filter((p) => present.has(p))) : new Set();
    this.focus = focusPath ? entries.findIndex((e) => e.path === focusPath) : -1;
    this.anchor = this.focus;
    this.spacer.style.height = `${entries.length * ROW_HEIGHT}px`;
    this.el.setAttribute("aria-rowcount", String(entries.length));
    this.render(true);
    this.handlers.selectionChanged(this.selection());
  }

  selection() { return this.entries.filter((e) => this.selected.has(e.path)); }

  render(force = false) {
    const top = this.el.scrollTop;
    const height = this.el.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.entries.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const rows = [];
    for (let i = first; i < last; i++) rows.push(this.row(i));
    this.spacer.replaceChildren(...rows);
    this.updateActive();
  }

  row(index) {
    const entry = this.entries[index];
    const selected = this.selected.has(entry.path);
    const name = h("button", { type: "button", class: "name", tabindex: -1,
      title: displayName(entry.name), onclick: (event) => { event.stopPropagation(); this.handlers.open(entry); } },
    h("bdi", { text: displayName(entry.name) }));
    const secondary = this.handlers.secondary ? this.handlers.secondary(entry) : "";
    const row = h("div", { class: selected ? "row selected" : "row", role: "option",
      id: `entry-${index}`, "aria-selected": selected ? "true" : "false",
      "aria-posinset": index + 1, "aria-setsize": this.entries.length, draggable: "true",
      dataset: { path: entry.path, type: entry.type } },
    h("img", { src: iconFor(entry), alt: "", class: "icon", width: 24, height: 24 }),
    h("span", { class: "cell name-cell" }, name,
      secondary ? h("bdi", { class: "secondary", text: displayName(secondary) }) : null),
    h("span", { class: "cell size", text: entry.type === "folder" ? "—" : formatSize(entry.size) }),
    h("span", { class: "cell modified", text: entry.type === "folder" ? "" : formatTime(entry.modified) }));
    row.style.top = `${index * ROW_HEIGHT}px`;
    row.addEventListener("click", (event) => this.onClick(index, event));
    row.addEventListener("dblclick", () => this.handlers.open(entry));
    row.addEventListener("dragstart", (event) => {
      if (!this.selected.has(entry.path)) this.selectOnly(index);
      const paths = this.selection().map((e) => e.path);
      event.dataTransfer.setData(DRAG_TYPE, JSON.stringify(paths));
      event.dataTransfer.setData("text/plain", paths.join("\n"));
      event.dataTransfer.effectAllowed = "move";
    });
    if (entry.type === "folder") dropTarget(row, (dt) => this.handlers.dropOnFolder(entry, dt));
    return row;
  }

  onClick(index, event) {
    if (event.shiftKey && this.anchor >= 0) this.selectRange(this.anchor, index, event.ctrlKey || event.metaKey);
    else if (event.ctrlKey || event.metaKey) this.toggle(index);
    else this.selectOnly(index);
    this.el.focus({ preventScroll: true });
  }

  selectOnly(index) {
    this.selected = new Set([this.entries[index].path]);
    this.focus = this.anchor = index;
    this.changed();
  }

  toggle(index) {
    const path = this.entries[index].path;
    if (this.selected.has(path)) this.selected.delete(path); else this.selected.add(path);
    this.focus = this.anchor = index;
    this.changed();
  }

  selectRange(from, to, add) {
    if (!add) this.selected.clear();
    const [a, b] = from < to ? [from, to] : [to, from];
    for (let i = a; i <= b; i++) this.selected.add(this.entries[i].path);
    this.focus = to;
    this.changed();
  }

  selectAll() {
    this.selected = new Set(this.entries.map((e) => e.path));
    this.changed();
  }

  changed() {
    this.render(true);
    this.scrollToFocus();
    this.handlers.selectionChanged(this.selection());
  }

  scrollToFocus() {
    if (this.focus < 0) return;
    const top = this.focus * ROW_HEIGHT;
    if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + ROW_HEIGHT > this.el.scrollTop + this.el.clientHeight) {
      this.el.scrollTop = top + ROW_HEIGHT - this.el.clientHeight;
    }
    this.render();
    this.updateActive();
  }

  updateActive() {
    for (const row of this.spacer.children) row.classList.remove("focused");
    const row = this.focus >= 0 ? this.spacer.querySelector(`#entry-${this.focus}`) : null;
    if (row) {
      row.classList.add("focused");
      this.el.setAttribute("aria-activedescendant", row.id);
    } else {
      this.el.removeAttribute("aria-activedescendant");
    }
  }

  onKey(event) {
    const count = this.entries.length;
    if (!count) return;
    const move = (to) => {
      to = Math.max(0, Math.min(count - 1, to));
      if (event.shiftKey) this.selectRange(this.anchor >= 0 ? this.anchor : to, to, false);
      else this.selectOnly(to);
      event.preventDefault();
    };
    const page = Math.max(1, Math.floor(this.el.clientHeight / ROW_HEIGHT) - 1);
    switch (event.key) {
      case "ArrowDown": move(this.focus + 1); return;
      case "ArrowUp": move(this.focus < 0 ? 0 : this.focus - 1); return;
      case "PageDown": move(this.focus + page); return;
      case "PageUp": move(this.focus - page); return;
      case "Home": move(0); return;
      case "End": move(count - 1); return;
      case " ":
        if (this.focus >= 0) { this.toggle(this.focus); event.preventDefault(); }
        return;
      case "Enter":
        if (this.focus >= 0) { this.handlers.open(this.entries[this.focus]); event.preventDefault(); }
        return;
      default:
        if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "a") {
          this.selectAll();
          event.preventDefault();
        } else if (this.handlers.keyAction(event.key, this.selection())) {
          event.preventDefault();
        }
    }
  }
}

// Make `el` accept drops of entries (moved) and of files from the computer (uploaded).
export function dropTarget(el, onDrop) {
  el.addEventListener("dragover", (event) => {
    const types = [...event.dataTransfer.types];
    if (!types.includes(DRAG_TYPE) && !types.includes("Files")) return;
    event.preventDefault();
    event.stopPropagation();
    event.dataTransfer.dropEffect = types.includes(DRAG_TYPE) ? "move" : "copy";
    el.classList.add("drop-target");
  });
  el.addEventListener("dragleave", () => el.classList.remove("drop-target"));
  el.addEventListener("drop", (event) => {
    el.classList.remove("drop-target");
    const types = [...event.dataTransfer.types];
    if (!types.includes(DRAG_TYPE) && !types.includes("Files")) return;
    event.preventDefault();
    event.stopPropagation();
    onDrop(event.dataTransfer);
  });
}
