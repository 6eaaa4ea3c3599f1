// "Shared": the links you made (with their use), the shared folders in your files, and
// invitations waiting for you.

import { app, registerView, routeTo, treeChanged } from "../app.js";
import { formatTime, h, showError, toast } from "../dom.js";
import { shares } from "../share.js";

registerView({ id: "shared", label: "Shared", render: renderShared });

function renderShared(container) {
  const invites = h("tbody");
  const folders = h("tbody");
  const links = h("tbody");
  const table = (body, heads, label) => h("div", { class: "table-wrap" },
    h("table", { class: "shared", "aria-label": label },
      h("thead", {}, h("tr", {}, ...heads.map((t) => h("th", { scope: "col", text: t })))),
      body));
  container.replaceChildren(h("section", { class: "trash-view", "aria-label": "Shared" },
    h("div", { class: "files-top" }, h("h1", { text: "Shared" })),
    h("h2", { text: "Invitations" }), table(invites, ["Folder", "From", "Role", "Sent", ""],
      "Invitations"),
    h("h2", { text: "Shared folders" }), table(folders, ["Folder", "Owner", "Your role",
      "Members", ""], "Shared folders"),
    h("h2", { text: "Links" }), table(links, ["Path", "Kind", "Password", "Expires",
      "Downloads", "Last used", ""], "Links")));
  document.title = "Shared – Mini-Dropbox";

  const empty = (body, text, span) => body.replaceChildren(h("tr", {},
    h("td", { class: "muted", colspan: span, text })));

  async function load() {
    try {
      const [{ invites: waiting }, { folders: mine }, { links: made }] = await Promise.all([
        shares.invites(), shares.folders(), shares.links()]);
      invites.replaceChildren(...waiting.map((i) => h("tr", {},
        h("td", {}, h("bdi", { text: i.name })), h("td", { text: i.owner }),
        h("td", { text: i.role }), h("td", { text: formatTime(i.created_at) }),
        h("td", { class: "row-actions" },
          h("button", { type: "button", class: "primary", text: "Accept",
            onclick: () => act(() => shares.accept(i.invite_id), `${i.name} is in your files.`) }),
          h("button", { type: "button", text: "Decline",
            onclick: () => act(() => shares.decline(i.invite_id), "Declined.") })))));
      if (!waiting.length) empty(invites, "No invitations.", 5);
      folders.replaceChildren(...mine.map((f) => h("tr", {},
        h("td", {}, h("a", { href: "#", text: f.path, onclick: (event) => {
          event.preventDefault(); routeTo("files", f.path); } })),
        h("td", { text: f.owner }), h("td", { text: f.role }),
        h("td", { text: String(f.members) }),
        h("td", { class: "row-actions" }, f.role === "owner"
          ? h("button", { type: "button", text: "Unshare",
            onclick: () => act(() => shares.unshare(f.path), `${f.path} is no longer shared.`) })
          : h("button", { type: "button", text: "Leave",
            onclick: () => act(() => shares.leave(f.path), `You left ${f.path}.`) })))));
      if (!mine.length) empty(folders, "No shared folders.", 5);
      links.replaceChildren(...made.map((l) => h("tr", {},
        h("td", {}, h("bdi", { text: l.path })),
        h("td", { text: l.mode === "upload" ? "file drop" : l.type }),
        h("td", { text: l.password_protected ? "yes" : "no" }),
        h("td", { text: l.expires_at ? formatTime(l.expires_at) : "never" }),
        h("td", { text: l.max_downloads ? `${l.downloads} of ${l.max_downloads}`
          : String(l.downloads) }),
        h("td", { text: l.last_used_at ? formatTime(l.last_used_at) : "—" }),
        h("td", { class: "row-actions" }, h("button", { type: "button", class: "danger",
          text: "Revoke", onclick: () => act(() => shares.revoke(l.link_id), "Link revoked.") })))));
      if (!made.length) empty(links, "No links.", 7);
    } catch (error) {
      showError(error);
    }
  }

  async function act(call, message) {
    try {
      await call();
      toast(message);
      treeChanged([]);
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
