// Boot: find out whether a session exists, then show the login screen or the app shell.

import { api, setCsrfToken } from "./api.js";
import { app, currentRoute, routeTo } from "./app.js";
import { renderLogin } from "./auth.js";
import { clear, formatSize, h, showError, toast } from "./dom.js";
import { startLive, stopLive } from "./live.js";
import { forgetPendingUploads, uploadPanel } from "./upload.js";
// Views and actions register themselves when imported.
import "./views/files.js";
import "./views/trash.js";
import "./views/shared.js";
import "./views/webdav.js";
import "./actions.js";
import "./share.js";

const root = document.getElementById("app");
let cleanupView = null;

async function boot() {
  try {
    const session = await api.session();
    startApp(session);
  } catch (error) {
    if (error.status === 401) showLogin();
    else {
      root.replaceChildren(h("main", { class: "login" },
        h("p", { class: "form-error", role: "alert", text: error.message }),
        h("button", { type: "button", text: "Try again", onclick: boot })));
    }
  }
}

function showLogin() {
  stopLive();
  app.session = null;
  setCsrfToken("");
  if (cleanupView) cleanupView();
  cleanupView = null;
  document.title = "Mini-Dropbox";
  renderLogin(root, (session) => startApp(session));
}

function startApp(session) {
  app.session = session;
  setCsrfToken(session.csrf_token);
  const quota = h("div", { class: "quota" });
  const nav = h("nav", { class: "sidebar", "aria-label": "Views" },
    app.views.map((view) => h("a", { href: `#/${view.id}/`, class: "nav-link",
      dataset: { view: view.id } }, view.label)));
  const main = h("main", { id: "view", class: "view" });
  const logout = h("button", { type: "button", class: "ghost", text: "Log out",
    onclick: logOut });
  const header = h("header", { class: "topbar" },
    h("a", { href: "#/files/", class: "brand" },
      h("img", { src: "/static/icons/logo.svg", alt: "", width: 28, height: 28 }),
      h("span", { text: "Mini-Dropbox" })),
    quota,
    h("span", { class: "user", text: session.username }), logout);
  root.replaceChildren(header, h("div", { class: "body" }, nav, main), uploadPanel());
  renderQuota(quota, session);
  app.events.addEventListener("session", () => renderQuota(quota, app.session));
  window.onhashchange = () => renderRoute(main, nav);
  renderRoute(main, nav);
  startLive();
}

function renderQuota(el, session) {
  if (!session) return;
  const used = session.used_bytes || 0;
  clear(el);
  if (session.quota_bytes) {
    const fraction = Math.min(1, used / session.quota_bytes);
    el.append(h("meter", { min: 0, max: 1, value: fraction.toFixed(3), high: 0.9,
      "aria-label": "Storage used" }),
    h("span", { text: `${formatSize(used)} of ${formatSize(session.quota_bytes)} used` }));
  } else {
    el.append(h("span", { text: `${formatSize(used)} used` }));
  }
}

export async function refreshSession() {
  try {
    app.session = await api.session();
    app.events.dispatchEvent(new Event("session"));
  } catch { /* session-ended is handled by its own event */ }
}
app.refreshSession = refreshSession;

function renderRoute(main, nav) {
  if (!app.session) return;
  const route = currentRoute();
  const view = app.views.find((v) => v.id === route.view);
  if (!view) { routeTo("files", "/"); return; }
  for (const link of nav.querySelectorAll(".nav-link")) {
    if (link.dataset.view === view.id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (cleanupView) cleanupView();
  cleanupView = view.render(main, route) || null;
}

async function logOut() {
  try {
    await api.logout();
  } catch (error) {
    if (error.status !== 401) { showError(error); return; }
  }
  forgetPendingUploads();
  // A fresh document: nothing of the session stays in memory, and history entries of the
  // app reload from the server (which asks for a login) rather than from the page's state.
  location.replace("/");
}

window.addEventListener("session-ended", () => { if (app.session) showLogin(); });
let offlineNotice = null;
window.addEventListener("offline", () => {
  offlineNotice = toast("You are offline. Uploads wait, and carry on when the connection is back.",
    { error: true, timeout: 0 });
});
window.addEventListener("online", () => { offlineNotice?.remove(); offlineNotice = null; });
boot();
