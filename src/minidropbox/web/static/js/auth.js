// The signed-out screen: log in, or sign up and log in.

import { api } from "./api.js";
import { h } from "./dom.js";

export function renderLogin(container, onLoggedIn) {
  let mode = "login";
  const error = h("p", { class: "form-error", role: "alert" });
  const username = h("input", { id: "username", name: "username", autocomplete: "username",
    required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { id: "password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary", text: "Log in" });
  const other = h("button", { type: "button", class: "link", text: "Sign up" });
  const heading = h("h1", { text: "Log in to Mini-Dropbox" });
  const hint = h("span", { class: "muted", text: "No account yet?" });

  function setMode(next) {
    mode = next;
    heading.textContent = mode === "login" ? "Log in to Mini-Dropbox" : "Create your account";
    submit.textContent = mode === "login" ? "Log in" : "Sign up";
    other.textContent = mode === "login" ? "Sign up" : "Log in";
    hint.textContent = mode === "login" ? "No account yet?" : "Have an account?";
    password.autocomplete = mode === "login" ? "current-password" : "new-password";
    error.textContent = "";
  }
  other.addEventListener("click", () => setMode(mode === "login" ? "signup" : "login"));

  const form = h("form", { class: "login-form stack", novalidate: true },
    h("img", { src: "/static/icons/logo.svg", alt: "", class: "logo", width: 48, height: 48 }),
    heading,
    h("label", { for: "username" }, "Username"), username,
    h("label", { for: "password" }, "Password"), password,
    error, submit, h("p", { class: "switch" }, hint, " ", other));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!username.value.trim() || !password.value) {
      error.textContent = "Enter a username and a password.";
      return;
    }
    submit.disabled = true;
    try {
      if (mode === "signup") await api.signup(username.value.trim(), password.value);
      const session = await api.login(username.value.trim(), password.value);
      password.value = "";
      onLoggedIn(session);
    } catch (caught) {
      error.textContent = caught.status === 401 ? "Wrong username or password." : caught.message;
      submit.disabled = false;
    }
  });
  container.replaceChildren(h("main", { class: "login" }, form));
  username.focus();
}
