// Small DOM helpers shared by the pages: element builder, dialogs, notices.

import { describe } from "./api.js";
import { t } from "./i18n.js";

/** h("button", {class: "x", onclick: f}, "text", child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An error shown where it happened: a French sentence, the server's words folded away. */
export function errorBox(error) {
  const { text, detail } = describe(error);
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", {}, text),
    detail ? h("details", {}, h("summary", {}, t("error.detail")), h("p", { lang: "en" }, detail)) : null,
  );
}

let dialogCounter = 0;

/**
 * A modal form. fields: [{name, label, type ("text", "textarea", "number", "time"),
 * required, hint, value, min, max}]. submit(values) may throw to keep the dialog open
 * with the error shown; it resolves when the change is saved.
 */
export function formDialog({ title, intro, fields, submitLabel, submit }) {
  const dialog = h("dialog", { class: "form-dialog", "aria-labelledby": `dlg-${++dialogCounter}` });
  const problems = h("div", { class: "problems", "aria-live": "assertive" });
  const inputs = {};
  const form = h(
    "form",
    { method: "dialog", novalidate: true },
    h("h2", { id: `dlg-${dialogCounter}` }, title),
    intro ? h("p", { class: "intro" }, intro) : null,
    ...fields.map((f) => {
      const id = `f-${dialogCounter}-${f.name}`;
      const hintId = f.hint ? `${id}-hint` : null;
      const common = {
        id,
        name: f.name,
        required: f.required,
        "aria-describedby": hintId,
      };
      let input;
      if (f.type === "textarea") input = h("textarea", { ...common, rows: 3, maxlength: 500 });
      else if (f.type === "number")
        input = h("input", { ...common, type: "number", inputmode: "numeric", min: f.min, max: f.max, step: 1 });
      else if (f.type === "time")
        input = h("input", {
          ...common,
          type: "text",
          inputmode: "numeric",
          pattern: "([01][0-9]|2[0-3]):[0-5][0-9]",
          placeholder: "HH:MM",
          maxlength: 5,
          size: 6,
          autocomplete: "off",
        });
      else input = h("input", { ...common, type: "text", maxlength: 500 });
      if (f.value !== undefined && f.value !== null) input.value = f.value;
      inputs[f.name] = input;
      return h(
        "p",
        { class: "field" },
        h("label", { for: id }, f.label),
        input,
        f.hint ? h("small", { id: hintId }, f.hint) : null,
      );
    }),
    problems,
    h(
      "p",
      { class: "buttons" },
      h("button", { type: "button", class: "secondary", onclick: () => close() }, t("common.close")),
      h("button", { type: "submit", class: "primary" }, submitLabel),
    ),
  );
  dialog.append(form);
  document.body.append(dialog);

  function close() {
    dialog.close();
    dialog.remove();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    const values = {};
    for (const [name, input] of Object.entries(inputs)) values[name] = input.value.trim();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await submit(values);
      close();
    } catch (error) {
      problems.replaceChildren(error instanceof UserError ? h("p", { class: "error", role: "alert" }, error.message) : errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  dialog.addEventListener("cancel", () => dialog.remove());
  dialog.showModal();
  return dialog;
}

/** An input the page itself refuses, with a sentence already in the page's language. */
export class UserError extends Error {}

/** A dialog that only shows content. */
export function infoDialog(title, content) {
  const id = `dlg-${++dialogCounter}`;
  const dialog = h(
    "dialog",
    { class: "form-dialog", "aria-labelledby": id },
    h("h2", { id }, title),
    content,
    h(
      "p",
      { class: "buttons" },
      h("button", { type: "button", class: "primary", onclick: () => { dialog.close(); dialog.remove(); } }, t("common.close")),
    ),
  );
  dialog.addEventListener("cancel", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

export function table(headers, rows, caption) {
  // Each cell carries its column's name, shown beside it where a phone stacks the rows.
  for (const row of rows) {
    [...row.children].forEach((cell, i) => {
      if (headers[i] !== undefined) cell.dataset.label = headers[i];
    });
  }
  // Focusable, so a keyboard can scroll a table wider than a phone.
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption ?? headers.join(", ") },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows),
    ),
  );
}

export function option(value, label, selected) {
  return h("option", { value, selected: selected ? true : undefined }, label);
}
