// The "Share" action and its dialog: a link anyone can open (both kinds: view/download, or
// upload-only for a folder), and, for a folder, people invited as editors or viewers.

import { del, getJSON, postJSON } from "./api.js";
import { registerAction } from "./app.js";
import { h, openDialog, showError, toast } from "./dom.js";

export const shares = {
  links: (path) => getJSON("/api/v1/shares/links", path ? { path } : undefined),
  makeLink: (body) => postJSON("/api/v1/shares/links", body),
  revoke: (id) => del(`/api/v1/shares/links/${encodeURIComponent(id)}`),
  folders: () => getJSON("/api/v1/shares/folders"),
  invite: (path, username, role) => postJSON("/api/v1/shares/folders", { path, username, role }),
  members: (path) => getJSON("/api/v1/shares/folders/members", { path }),
  removeMember: (path, username) => del("/api/v1/shares/folders/members", { path, username }),
  leave: (path) => postJSON("/api/v1/shares/folders/leave", { path }),
  unshare: (path) => postJSON("/api/v1/shares/folders/unshare", { path }),
  invites: () => getJSON("/api/v1/shares/invites"),
  accept: (id) => postJSON(`/api/v1/shares/invites/${id}/accept`, {}),
  decline: (id) => del(`/api/v1/shares/invites/${id}`),
};

registerAction({ id: "share", label: "Share", order: 35,
  when: (selection) => selection.length === 1, run: ([entry]) => openShare(entry) });

export function openShare(entry) {
  return openDialog(`Share ${entry.name}`, (dialog, close) => {
    dialog.append(linkSection(entry));
    if (entry.type === "folder") dialog.append(peopleSection(entry));
    dialog.append(h("div", { class: "buttons" },
      h("button", { type: "button", text: "Done", onclick: () => close(undefined) })));
  }, { wide: true });
}

function linkSection(entry) {
  const password = h("input", { type: "password", "aria-label": "Link password",
    autocomplete: "new-password", placeholder: "none" });
  const days = h("input", { type: "number", min: 1, max: 3650, "aria-label": "Expires after days",
    placeholder: "never" });
  const limit = h("input", { type: "number", min: 1, "aria-label": "Maximum downloads",
    placeholder: "no limit" });
  const uploadOnly = h("input", { type: "checkbox", "aria-label": "Upload only" });
  const made = h("div", { class: "stack share-made" });
  const form = h("form", { class: "stack share-form", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const link = await shares.makeLink({ path: entry.path,
        password: password.value || null,
        expires_in: days.value ? Number(days.value) * 86400 : null,
        max_downloads: limit.value ? Number(limit.value) : null,
        upload_only: uploadOnly.checked });
      const url = h("input", { type: "text", readonly: true, value: link.share_url,
        "aria-label": "Link URL", class: "share-url" });
      made.replaceChildren(h("label", {}, h("span", {
        text: link.mode === "upload" ? "Anyone with this link can add files:" :
          "Anyone with this link can open it:" }), url),
      h("p", { class: "muted", text: "The link is shown only now; copy it." }));
      url.select();
      navigator.clipboard?.writeText(link.share_url).then(
        () => toast("Link copied."), () => {});
    } catch (error) {
      showError(error);
    }
  } },
  h("div", { class: "share-options" },
    h("label", {}, h("span", { text: "Password" }), password),
    h("label", {}, h("span", { text: "Expires after (days)" }), days),
    h("label", {}, h("span", { text: "Maximum downloads" }), limit)),
  entry.type === "folder" ? h("label", { class: "check" }, uploadOnly,
    h("span", { text: "Upload only (a file drop: people add files and see nothing)" })) : null,
  h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary",
    text: "Create link" })));
  return h("section", { class: "share-section", "aria-label": "Link" },
    h("h3", { text: "Link" }), form, made);
}

function peopleSection(entry) {
  const list = h("ul", { class: "member-list", "aria-label": "Members" });
  const username = h("input", { type: "text", "aria-label": "User name", required: true,
    autocomplete: "off", spellcheck: "false" });
  const role = h("select", { "aria-label": "Role" },
    h("option", { value: "editor", text: "can edit" }),
    h("option", { value: "viewer", text: "can view" }));
  const form = h("form", { class: "row-line", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const invited = await shares.invite(entry.path, username.value.trim(), role.value);
      toast(invited.state === "invited" ? `Invited ${invited.username}.`
        : `${invited.username} ${invited.role === "editor" ? "can edit" : "can view"} now.`);
      username.value = "";
      load();
    } catch (error) {
      showError(error);
    }
  } }, username, role, h("button", { type: "submit", text: "Invite" }));

  async function load() {
    try {
      const folder = await shares.members(entry.path);
      list.replaceChildren(...folder.members.map((m) => h("li", {},
        h("bdi", { text: m.username }),
        h("span", { class: "muted", text: m.state === "invited" ? `${m.role}, invited` : m.role }),
        folder.role === "owner" && m.role !== "owner" ? h("button", { type: "button",
          class: "danger", text: "Remove", onclick: () => remove(m.username) }) : null)));
    } catch (error) {
      if (error.status === 404) list.replaceChildren(h("li", { class: "muted",
        text: "Not shared with anyone yet." }));
      else showError(error);
    }
  }

  async function remove(name) {
    try {
      await shares.removeMember(entry.path, name);
      toast(`${name} no longer has ${entry.name}.`);
    } catch (error) {
      showError(error);
    }
    load();
  }

  load();
  return h("section", { class: "share-section", "aria-label": "People" },
    h("h3", { text: "People" }), form, list);
}
