// Active alerts of the caller's buses, kept current by the live feed, with acknowledgement.

import { postJson } from "../api.js";
import { fmtDateTime, t } from "../i18n.js";
import { fleet, on, setAlerts, vehicleLabel } from "../state.js";
import { formDialog, h, table } from "../ui.js";

let content = null;

export function mount(el) {
  el.replaceChildren(h("h1", {}, t("alerts.title")), (content = h("div", { id: "alerts-content" })));
  on("alerts", render);
}

export function show() {
  render();
}

function render() {
  const list = fleet.alerts.filter((a) => a.active);
  if (!list.length) {
    content.replaceChildren(h("p", { class: "empty" }, t("alerts.empty")));
    return;
  }
  content.replaceChildren(
    table(
      [t("alerts.severity"), t("common.vehicle"), t("alerts.kind"), t("alerts.since"), t("board.actions")],
      list.map((a) =>
        h(
          "tr",
          { id: `alert-${a.id}`, dataset: { alert: String(a.id) } },
          h("td", {}, h("span", { class: `severity ${a.severity}` }, t(`severity.${a.severity}`))),
          h("td", {}, vehicleLabel(a.vehicle)),
          h("th", { scope: "row" }, t(`kind.${a.kind}`)),
          h("td", {}, fmtDateTime(a.since)),
          h(
            "td",
            { class: "ack" },
            a.acknowledged
              ? h(
                  "span",
                  {},
                  t("alerts.acked", { who: a.acknowledged.by, when: fmtDateTime(a.acknowledged.at) }),
                  a.acknowledged.comment ? h("small", {}, ` « ${a.acknowledged.comment} »`) : null,
                )
              : h(
                  "button",
                  {
                    type: "button",
                    class: "primary",
                    "aria-label": `${t("alerts.ack")} — ${t(`kind.${a.kind}`)}, ${vehicleLabel(a.vehicle)}`,
                    onclick: () => acknowledge(a),
                  },
                  t("alerts.ack"),
                ),
          ),
        ),
      ),
    ),
  );
}

function acknowledge(alert) {
  formDialog({
    title: `${t("alerts.ackTitle")} — ${t(`kind.${alert.kind}`)}, ${vehicleLabel(alert.vehicle)}`,
    fields: [{ name: "comment", label: t("common.comment"), type: "textarea" }],
    submitLabel: t("alerts.ack"),
    submit: async (values) => {
      const updated = await postJson(`/api/v1/alerts/${alert.id}/ack`, { comment: values.comment || null });
      setAlerts(fleet.alerts.map((a) => (a.id === updated.id ? updated : a)));
    },
  });
}
