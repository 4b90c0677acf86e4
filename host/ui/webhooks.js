// Webhooks: the caller's own signing secret (each API key has its own), hidden until
// asked for, with a copy button and rotation. After a rotation the previous secret keeps
// signing beside the new one until the time shown, so receivers can switch over.

import { call } from "./api.js";
import { describe, el, notice, say } from "./dom.js";

export function webhooksView(main) {
  const error = notice("error");
  const news = notice("status");
  const secret = el("input", { id: "webhook-secret", type: "password", readonly: true, autocomplete: "off", spellcheck: "false", value: "" });
  const show = el("button", { type: "button", "aria-controls": "webhook-secret", "aria-pressed": "false" }, "Show");
  const copy = el("button", { type: "button" }, "Copy");
  const rotate = el("button", { type: "button", class: "danger", id: "rotate-secret" }, "Rotate secret");
  const state = el("p", { class: "help", id: "webhook-secret-state" });

  const render = (answer) => {
    secret.value = answer.secret;
    const parts = [];
    if (answer.configured) parts.push("Set by the operator in the server's config file: it is rotated there.");
    if (answer.rotated_at) parts.push(`Last rotated ${answer.rotated_at}.`);
    if (answer.previous_secret_expires_at) parts.push(`The previous secret also signs deliveries until ${answer.previous_secret_expires_at}.`);
    state.textContent = parts.join(" ");
    rotate.hidden = !!answer.configured;
  };

  show.addEventListener("click", () => {
    const hidden = secret.type === "password";
    secret.type = hidden ? "text" : "password";
    show.textContent = hidden ? "Hide" : "Show";
    show.setAttribute("aria-pressed", String(hidden));
  });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret.value);
      say(news, "Copied.");
    } catch {
      say(error, "The browser did not allow copying; show the secret and copy it by hand.");
    }
  });
  rotate.addEventListener("click", async () => {
    // Two steps: the first click asks, the second rotates.
    if (rotate.dataset.armed !== "yes") {
      rotate.dataset.armed = "yes";
      rotate.textContent = "Confirm rotation";
      return;
    }
    rotate.dataset.armed = "";
    rotate.textContent = "Rotate secret";
    say(error, "");
    try {
      render(await call("POST", "/v2/webhooks/secret/rotate", { json: {} }));
      say(news, "A new secret signs your webhooks from now on.");
    } catch (err) {
      say(error, describe(err));
    }
  });

  main.append(el("section", { class: "card", "aria-labelledby": "webhooks-title" },
    el("h1", { id: "webhooks-title" }, "Webhook signing secret"),
    el("p", {}, "Your webhooks are signed as Standard Webhooks with this secret, your API key's own. Verify each delivery with it, e.g. in Python: ",
      el("code", {}, "standardwebhooks.Webhook(secret).verify(body, headers)"), "."),
    el("label", { for: "webhook-secret" }, "Secret"),
    secret,
    el("div", { class: "buttons" }, show, copy, rotate),
    state, news, error));

  call("GET", "/v2/webhooks/secret").then(render).catch((err) => say(error, describe(err)));
}
