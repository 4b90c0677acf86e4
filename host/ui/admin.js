// The operator's page (admin key): loaded plugins with their counters and load errors,
// upload of a component (.wasm) under a name, and removal.

import { call, session } from "./api.js";
import { describe, el, notice, say, table } from "./dom.js";

const enc = encodeURIComponent;

function adminLogin(main, done) {
  const error = notice("error");
  const input = el("input", { id: "admin-key", name: "admin-key", type: "password", autocomplete: "off", required: true });
  const form = el("form", { class: "card", "aria-labelledby": "admin-login-title" },
    el("h1", { id: "admin-login-title" }, "Plugins: admin key"),
    el("p", {}, "The plugin pages need the server's admin key (COPRA_ADMIN_KEY). It is kept in this tab's session only."),
    el("label", { for: "admin-key" }, "Admin key"),
    input,
    el("button", { type: "submit" }, "Open plugins"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    try {
      await call("GET", "/admin/plugins", { key: input.value });
      session.adminKey = input.value;
      done();
    } catch (err) {
      say(error, err.status === 401 ? `That admin key was refused: ${describe(err)}` : describe(err));
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}

function grantsText(grants) {
  if (grants === undefined || grants === null) return "—";
  return typeof grants === "string" ? grants : JSON.stringify(grants);
}

function pluginsTable(plugins, remove) {
  const rows = plugins.map((p) => {
    const button = el("button", { type: "button", class: "danger", "aria-label": `Remove plugin ${p.name}` }, "Remove");
    button.addEventListener("click", () => {
      // Two steps: the first click asks, the second removes.
      if (button.dataset.armed !== "yes") {
        button.dataset.armed = "yes";
        button.textContent = "Confirm removal";
        return;
      }
      remove(p.name, button);
    });
    return el("tr", { "data-plugin": p.name },
      el("th", { scope: "row" }, p.name),
      el("td", {}, p.kind || ""),
      el("td", {}, p.version || ""),
      el("td", {}, (p.provides || []).join(", ")),
      el("td", {}, el("code", { title: p.sha256 || "" }, (p.sha256 || "").slice(0, 12))),
      el("td", {}, grantsText(p.grants)),
      el("td", {}, String(p.calls ?? "")),
      el("td", {}, String(p.errors ?? "")),
      el("td", {}, p.stored ? "uploaded" : "plugin directory"),
      el("td", {}, button));
  });
  return table("Loaded plugins", ["Name", "Kind", "Version", "Provides", "SHA-256", "Grants", "Calls", "Errors", "Source", ""], rows, { id: "plugins-table" });
}

function pluginsPage(main) {
  const error = notice("error");
  const news = notice("status");
  const list = el("div", {}, el("p", {}, "Loading plugins…"));
  const loadErrors = el("div", {});
  const name = el("input", { id: "plugin-name", name: "plugin-name", required: true, pattern: "[A-Za-z0-9_-]{1,64}", "aria-describedby": "plugin-name-help" });
  const file = el("input", { id: "plugin-file", name: "plugin-file", type: "file", accept: ".wasm,application/wasm", required: true });
  const upload = el("form", { "aria-labelledby": "upload-title", class: "card" },
    el("h2", { id: "upload-title" }, "Upload a plugin"),
    el("label", { for: "plugin-name" }, "Name"),
    name,
    el("p", { id: "plugin-name-help", class: "help" }, "1–64 letters, digits, '-' or '_'. A plugin of the same name is replaced on every node."),
    el("label", { for: "plugin-file" }, "Component (.wasm)"),
    file,
    el("button", { type: "submit" }, "Upload"));
  const forget = el("button", { type: "button" }, "Forget admin key");

  async function refresh() {
    try {
      const answer = await call("GET", "/admin/plugins", { admin: true });
      list.replaceChildren(pluginsTable(answer.plugins || [], remove));
      const errors = answer.load_errors || [];
      loadErrors.replaceChildren(errors.length
        ? el("ul", { id: "load-errors" }, errors.map((e) => el("li", {}, typeof e === "string" ? e : JSON.stringify(e))))
        : el("p", {}, "No plugin failed to load."));
    } catch (err) {
      say(error, describe(err));
    }
  }

  async function remove(pluginName, button) {
    say(error, "");
    button.disabled = true;
    try {
      await call("DELETE", `/admin/plugins/${enc(pluginName)}`, { admin: true });
      say(news, `Removed plugin ${pluginName}.`);
      await refresh();
    } catch (err) {
      button.disabled = false;
      say(error, describe(err));
    }
  }

  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    say(news, "");
    const component = file.files[0];
    if (!component) { say(error, "Choose a .wasm file."); return; }
    try {
      const plugin = await call("POST", `/admin/plugins?name=${enc(name.value)}`, { admin: true, body: component, contentType: "application/wasm" });
      say(news, `Uploaded plugin ${plugin.name} (${plugin.kind} ${plugin.version || ""}).`);
      upload.reset();
      await refresh();
    } catch (err) {
      say(error, describe(err));
    }
  });
  forget.addEventListener("click", () => { session.adminKey = null; location.hash = "#/jobs"; });

  main.append(el("section", { "aria-labelledby": "plugins-title" },
    el("div", { class: "title-row" }, el("h1", { id: "plugins-title" }, "Plugins"), forget),
    error, news, list,
    el("h2", {}, "Load errors"), loadErrors,
    upload));
  refresh();
}

export function adminView(main) {
  if (session.adminKey) pluginsPage(main);
  else adminLogin(main, () => { main.replaceChildren(); pluginsPage(main); });
}
