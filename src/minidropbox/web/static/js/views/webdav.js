// "WebDAV": app passwords, one per device, for rclone, Finder, Explorer and davfs2. A new
// password is shown once, with the address and username to type; the list shows names and
// dates only, and Revoke stops a password at once.

import { del, getJSON, postJSON } from "../api.js";
import { app, registerView } from "../app.js";
import { formatTime, h, openDialog, showError, toast } from "../dom.js";

registerView({ id: "webdav", label: "WebDAV", render: renderWebdav });

const URL_BASE = "/api/v1/app-passwords";

function davAddress() { return `${location.origin}/dav/`; }

function renderWebdav(container) {
  const body = h("tbody");
  const empty = h("p", { class: "empty", hidden: true,
    text: "No app passwords yet: make one for each device that connects over WebDAV." });
  const table = h("table", { class: "trash app-passwords" },
    h("thead", {}, h("tr", {}, ...["Device", "Created", "Last used", ""].map(
      (label) => h("th", { scope: "col", text: label })))), body);
  const name = h("input", { type: "text", "aria-label": "Device name", maxlength: 64,
    required: true, autocomplete: "off", placeholder: "laptop" });
  const form = h("form", { class: "files-top", onsubmit: (event) => { event.preventDefault(); create(); } },
    name, h("button", { type: "submit", class: "primary", text: "Create app password" }));
  container.replaceChildren(h("section", { class: "trash-view", "aria-label": "WebDAV" },
    h("div", { class: "files-top" }, h("h1", { text: "WebDAV" })),
    h("p", {}, "Connect rclone, Finder, Explorer or davfs2 to ",
      h("code", { text: davAddress() }), " as ", h("strong", { text: app.session.username }),
      " with an app password. Your account password does not work there."),
    form, h("div", { class: "table-wrap" }, table), empty));
  document.title = "WebDAV – Mini-Dropbox";

  async function load() {
    try {
      const { app_passwords: rows } = await getJSON(URL_BASE);
      body.replaceChildren(...rows.map((row) => h("tr", { dataset: { name: row.name } },
        h("td", {}, h("bdi", { class: "name", text: row.name })),
        h("td", { text: formatTime(row.created_at) }),
        h("td", { text: row.last_used_at ? formatTime(row.last_used_at) : "never" }),
        h("td", { class: "row-actions" }, h("button", { type: "button", class: "danger",
          text: "Revoke", "aria-label": `Revoke ${row.name}`, onclick: () => revoke(row.name) })))));
      empty.hidden = rows.length > 0;
      table.hidden = rows.length === 0;
    } catch (error) {
      showError(error);
    }
  }

  async function create() {
    const device = name.value.trim();
    if (!device) return;
    try {
      const created = await postJSON(URL_BASE, { name: device });
      name.value = "";
      await showOnce(created);
    } catch (error) {
      showError(error);
    }
    load();
  }

  async function revoke(device) {
    try {
      await del(`${URL_BASE}/${encodeURIComponent(device)}`);
      toast(`Revoked ${device}: it no longer opens WebDAV.`);
    } catch (error) {
      showError(error);
    }
    load();
  }

  load();
}

function showOnce(created) {
  return openDialog(`App password for ${created.name}`, (dialog, close) => {
    dialog.append(
      h("p", { text: "Copy it now: it is not shown again." }),
      h("dl", { class: "stack" },
        h("dt", { text: "Address" }), h("dd", {}, h("code", { text: davAddress() })),
        h("dt", { text: "Username" }), h("dd", {}, h("code", { text: created.username })),
        h("dt", { text: "Password" }),
        h("dd", {}, h("code", { class: "app-password", text: created.password }))),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "primary", text: "Done", onclick: () => close() })));
  });
}
