// The app's shared state and its extension points.
//
// A view (a screen in the side bar: "Files", "Trash") and an action (a toolbar button that
// acts on the selected entries: "Rename", "Move") each live in their own module and register
// themselves here; main.js imports the modules. To add one, write the module and add its
// import to main.js.

export const app = {
  session: null, // {username, csrf_token, quota_bytes, used_bytes, is_admin}
  views: [], // {id, label, render(container, route) -> optional cleanup function}
  actions: [], // {id, label, when(entries) -> bool, run(entries, context), order}
  events: new EventTarget(), // "tree-changed" {paths}, "session" — see live.js
};

export function registerView(view) {
  app.views.push(view);
}

export function registerAction(action) {
  app.actions.push({ order: 100, ...action });
  app.actions.sort((a, b) => a.order - b.order);
}

// The route is the URL's hash: #/files/<folder path>, #/trash, #/<view id>...
export function currentRoute() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, "")) || "/files/";
  const match = hash.match(/^\/([a-z-]+)(\/.*)?$/);
  if (!match) return { view: "files", path: "/" };
  return { view: match[1], path: normalizeFolder(match[2] || "/") };
}

export function routeTo(view, path = "/") {
  const target = `#/${view}${encodePath(path)}`;
  if (location.hash !== target) location.hash = target;
  else window.dispatchEvent(new HashChangeEvent("hashchange"));
}

export function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

function normalizeFolder(path) {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

export function treeChanged(paths = []) {
  app.events.dispatchEvent(new CustomEvent("tree-changed", { detail: { paths } }));
}
