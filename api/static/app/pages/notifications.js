// Who is told of which alert: each operator's people, roles and routes, read from the
// API and changed there (PUT), in place of the routes of the ingest's settings file.

import { getJson, request } from "../api.js";
import { t } from "../i18n.js";
import { fleet } from "../state.js";
import { errorBox, h } from "../ui.js";

let content = null;
let inForce = null;

export function mount(el) {
  el.replaceChildren(
    h("h1", {}, t("notify.title")),
    h("p", {}, t("notify.intro")),
    (content = h("div", { id: "notify-content" })),
  );
}

function operators() {
  return [...new Set([...fleet.vehicles.values()].map((v) => v.operator))].sort();
}

function routingOf(operator) {
  const routes = inForce.routes.filter((r) => r.operator === operator);
  const named = new Set(routes.flatMap((r) => r.steps.flat()));
  const roles = Object.fromEntries(Object.entries(inForce.roles).filter(([k]) => named.has(k)));
  const members = new Set([...named].flatMap((n) => roles[n] ?? [n]));
  const people = Object.fromEntries(Object.entries(inForce.people).filter(([k]) => members.has(k)));
  return { people, roles, routes };
}

export async function show() {
  try {
    inForce = await getJson("/api/v1/alerts/routing");
  } catch (error) {
    content.replaceChildren(errorBox(error));
    return;
  }
  const select = h(
    "select",
    { id: "notify-operator", onchange: () => fill() },
    operators().map((o) => h("option", { value: o }, o)),
  );
  const editor = h("textarea", { id: "notify-json", rows: 18, spellcheck: "false", "aria-describedby": "notify-hint" });
  const status = h("p", { id: "notify-status", role: "status" });
  const problems = h("div", { id: "notify-problems" });
  const fill = () => {
    editor.value = JSON.stringify(routingOf(select.value), null, 2);
    status.textContent = "";
    problems.replaceChildren();
  };
  const save = async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    status.textContent = "";
    let body;
    try {
      body = JSON.parse(editor.value);
    } catch (error) {
      problems.replaceChildren(h("p", { class: "error", role: "alert" }, `${t("notify.badJson")} ${error.message}`));
      return;
    }
    try {
      const response = await request(`/api/v1/alerts/routing/${encodeURIComponent(select.value)}`, { method: "PUT", body });
      inForce = await response.json();
      fill();
      status.textContent = t("notify.saved");
    } catch (error) {
      problems.replaceChildren(errorBox(error));
    }
  };
  const changed = inForce.set_from_the_api ?? {};
  content.replaceChildren(
    h(
      "form",
      { id: "notify-form", onsubmit: save },
      h("label", { for: "notify-operator" }, t("notify.operator")),
      select,
      h("label", { for: "notify-json" }, t("notify.routing")),
      h("p", { id: "notify-hint", class: "hint" }, t("notify.hint")),
      editor,
      problems,
      h("button", { type: "submit", class: "primary" }, t("common.save")),
      status,
    ),
    h(
      "p",
      { class: "hint" },
      Object.entries(changed)
        .map(([op, c]) => t("notify.changed", { operator: op, who: c.by }))
        .join(" "),
    ),
  );
  fill();
}
