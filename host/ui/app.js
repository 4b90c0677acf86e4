// The dashboard's shell: hash routes (#/jobs, #/jobs/ID, #/submit, #/webhooks, #/admin), the login
// form, and the navigation. Each view renders into <main> and returns a function that
// stops its work (open event streams) when the user leaves it.

import { call, session } from "./api.js";
import { clear, describe, el, notice, say } from "./dom.js";
import { jobsView } from "./jobs.js";
import { jobView } from "./job.js";
import { submitView } from "./submit.js";
import { webhooksView } from "./webhooks.js";
import { adminView } from "./admin.js";

const main = document.getElementById("main");
const logout = document.getElementById("logout");
let leave = () => {};

function loginView(main) {
  const error = notice("error");
  const input = el("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true });
  const form = el("form", { class: "card", "aria-labelledby": "login-title" },
    el("h1", { id: "login-title" }, "Log in"),
    el("p", {}, "Use one of the server's API keys. It is kept in this tab's session only and sent with every request as the Basic auth username."),
    el("label", { for: "api-key" }, "API key"),
    input,
    el("button", { type: "submit" }, "Log in"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    try {
      await call("GET", "/v2/jobs?limit=1", { key: input.value });
      session.key = input.value;
      location.hash = "#/jobs";
      route();
    } catch (err) {
      say(error, err.status === 401 ? `That API key was refused: ${describe(err)}` : describe(err));
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}

function route() {
  leave();
  leave = () => {};
  clear(main);
  const hash = location.hash.replace(/^#\/?/, "");
  const [page, ...rest] = hash.split("/");
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === (page || "jobs")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  logout.hidden = !session.key && !session.adminKey;
  if (page === "admin") {
    leave = adminView(main) || leave;
    return;
  }
  if (!session.key) {
    loginView(main);
    return;
  }
  const controller = new AbortController();
  leave = () => controller.abort();
  if (page === "jobs" && rest.length) jobView(main, decodeURIComponent(rest.join("/")), controller.signal);
  else if (page === "submit") submitView(main);
  else if (page === "webhooks") webhooksView(main);
  else jobsView(main, controller.signal);
}

logout.addEventListener("click", () => {
  session.key = null;
  session.adminKey = null;
  location.hash = "#/jobs";
  route();
});
window.addEventListener("hashchange", () => { main.focus(); route(); });
route();
