// Per bus, the medical fridge: the logger's last 30 days and its alarms, each acknowledged
// with the comment the pharmacy's file requires.

import { getJson, postJson } from "../api.js";
import { fmtDateTime, fmtNumber, fmtShortDay, t } from "../i18n.js";
import { fleet, vehicleLabel } from "../state.js";
import { UserError, errorBox, formDialog, h, option, table } from "../ui.js";

let select = null;
let content = null;
let vehicle = null;

export function mount(el) {
  select = h("select", {
    id: "fridge-vehicle",
    onchange: () => {
      location.hash = `#/frigo/${encodeURIComponent(select.value)}`;
    },
  });
  el.replaceChildren(
    h("h1", {}, t("fridge.title")),
    h("div", { class: "controls" }, h("p", { class: "field" }, h("label", { for: "fridge-vehicle" }, t("common.vehicle")), select)),
    (content = h("div", { id: "fridge-content" })),
  );
}

export function show([wanted] = []) {
  const ids = [...fleet.vehicles.keys()].sort();
  vehicle = wanted && ids.includes(wanted) ? wanted : ids[0];
  select.replaceChildren(...ids.map((id) => option(id, vehicleLabel(id), id === vehicle)));
  return load();
}

async function load() {
  if (!vehicle) return;
  const asked = vehicle;
  let history;
  let alarms;
  try {
    [history, alarms] = await Promise.all([
      getJson(`/api/v1/coldchain/history?vehicle=${encodeURIComponent(asked)}&days=30`),
      getJson(`/api/v1/coldchain/alarms?vehicle=${encodeURIComponent(asked)}`),
    ]);
  } catch (error) {
    content.replaceChildren(errorBox(error));
    return;
  }
  if (asked !== vehicle) return;
  content.replaceChildren(
    h("h2", {}, `${t("fridge.days")} — ${vehicleLabel(asked)}`),
    h(
      "ol",
      { class: "logger", id: "fridge-days" },
      history.days.map((d) => {
        const label = `${fmtShortDay(d.date)} : ${t(`fridge.status.${d.status}`)}`;
        return h(
          "li",
          { class: `day ${d.status}`, title: label, dataset: { date: d.date, status: d.status } },
          h("span", { class: "date" }, fmtShortDay(d.date)),
          h("span", { class: "visually-hidden" }, ` : ${t(`fridge.status.${d.status}`)}`),
        );
      }),
    ),
    h(
      "ul",
      { class: "legend inline" },
      ["ok", "incomplete", "warning", "alarm", "no_data"].map((s) => h("li", {}, h("span", { class: `day-dot ${s}`, "aria-hidden": "true" }), t(`fridge.status.${s}`))),
    ),
    h("h2", {}, t("fridge.alarms")),
    alarms.length
      ? table(
          [t("alerts.kind"), t("fridge.start"), t("fridge.end"), t("fridge.duration"), t("fridge.peak"), t("board.actions")],
          alarms.map((a) =>
            h(
              "tr",
              { id: `alarm-${a.id}`, dataset: { alarm: String(a.id) } },
              h("th", { scope: "row" }, t(`alarm.${a.kind}`)),
              h("td", {}, fmtDateTime(a.start)),
              h("td", {}, a.ongoing ? t("fridge.ongoing") : fmtDateTime(a.end)),
              h("td", {}, `${fmtNumber(a.duration_min, 0)} min`),
              h("td", {}, `${fmtNumber(a.peak_c, 1)} °C`),
              h(
                "td",
                {},
                a.acknowledged
                  ? h("span", {}, t("alerts.acked", { who: a.acknowledged.by, when: fmtDateTime(a.acknowledged.at) }), h("small", {}, ` « ${a.acknowledged.comment ?? ""} »`))
                  : h("button", { type: "button", class: "primary", "aria-label": `${t("fridge.ack")} — ${t(`alarm.${a.kind}`)} ${fmtDateTime(a.start)}`, onclick: () => acknowledge(a) }, t("fridge.ack")),
              ),
            ),
          ),
        )
      : h("p", { class: "empty" }, t("fridge.noAlarms")),
  );
}

function acknowledge(alarm) {
  formDialog({
    title: `${t("fridge.ackTitle")} — ${vehicleLabel(alarm.vehicle)}`,
    fields: [{ name: "comment", label: t("common.comment"), type: "textarea", required: true, hint: t("fridge.ackHint") }],
    submitLabel: t("fridge.ack"),
    submit: async (values) => {
      if (!values.comment) throw new UserError(t("fridge.commentRequired"));
      await postJson(`/api/v1/coldchain/alarms/${alarm.id}/ack`, { comment: values.comment });
      await load();
    },
  });
}
