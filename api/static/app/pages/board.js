// The coordinators' board: a day's visits (today in Paris by default), with confirmation,
// correction in local time, cancellation, patients seen, each visit's history, the
// unscheduled stops and the ETAs. Another board's change arrives through the live feed.

import { getJson, postJson } from "../api.js";
import { fmtDateTime, fmtDay, fmtDelay, fmtNumber, fmtTime, t } from "../i18n.js";
import { on, vehicleLabel } from "../state.js";
import { addDays, parisDay, parisInstant } from "../time.js";
import { UserError, errorBox, formDialog, h, infoDialog, table } from "../ui.js";

let day = null;
let dateInput = null;
let heading = null;
let content = null;
let updated = null;
let root = null;

export function mount(el) {
  root = el;
  dateInput = h("input", {
    id: "board-date",
    type: "date",
    onchange: () => {
      if (dateInput.value) location.hash = `#/passages/${dateInput.value}`;
    },
  });
  el.replaceChildren(
    h("h1", {}, t("board.title")),
    h(
      "div",
      { class: "controls" },
      h("p", { class: "field" }, h("label", { for: "board-date" }, t("board.day")), dateInput),
      h(
        "p",
        { class: "buttons" },
        h("button", { type: "button", class: "secondary", onclick: () => go(addDays(day, -1)) }, "◀ ", h("span", { class: "visually-hidden" }, t("board.day")), " −1"),
        h("button", { type: "button", class: "secondary", onclick: () => go(parisDay()) }, t("board.today")),
        h("button", { type: "button", class: "secondary", onclick: () => go(addDays(day, 1)) }, h("span", { class: "visually-hidden" }, t("board.day")), " +1 ▶"),
      ),
    ),
    (heading = h("h2", { id: "board-day" })),
    h("p", { class: "hint" }, t("board.live"), " ", (updated = h("span", { id: "board-updated" }))),
    (content = h("div", { id: "board-content" })),
  );
  on("visits", (change) => {
    if (!root.hidden && change.date === day) load();
  });
}

function go(next) {
  location.hash = `#/passages/${next}`;
}

export function show([wanted] = []) {
  day = /^\d{4}-\d{2}-\d{2}$/.test(wanted ?? "") ? wanted : parisDay();
  dateInput.value = day;
  heading.textContent = `${t("board.visits")} — ${fmtDay(day)}`;
  return load();
}

async function load() {
  const asked = day;
  let body;
  try {
    body = await getJson(`/api/v1/visits?date=${asked}`);
  } catch (error) {
    content.replaceChildren(errorBox(error));
    return;
  }
  if (asked !== day) return;
  render(body);
  updated.textContent = t("common.updated", { time: fmtTime(new Date().toISOString()) });
}

function statusChip(v) {
  return h("span", { class: `status ${v.status}` }, t(`status.${v.status}`));
}

function arrivalCell(v) {
  if (!v.arrival) return "—";
  const source = v.arrival_source === "corrected" ? t("board.corrected") : t("board.detected");
  return h(
    "span",
    {},
    v.arrival_estimated ? h("span", { class: "estimated" }, `${t("board.estimatedAbout")} `) : null,
    h("strong", { class: "arrival" }, fmtTime(v.arrival)),
    h("small", {}, ` (${source})`),
    estimateBounds(v),
    v.confirmed_arrival ? h("small", { class: "confirmed" }, ` ✓ ${t("board.confirmedBy", { who: v.confirmed_by })}`) : null,
  );
}

// An arrival estimated inside a GPS outage: its bounds and, when they allow more than one
// class, every class they allow.
function estimateBounds(v) {
  if (!v.arrival_estimated || !v.arrival_earliest || !v.arrival_latest) return null;
  const between = t("board.between", { from: fmtTime(v.arrival_earliest), to: fmtTime(v.arrival_latest) });
  const possible = v.status_certain
    ? null
    : h(
        "small",
        { class: "uncertain" },
        ` — ${t("board.possibly", { statuses: v.possible_statuses.map((s) => t(`status.${s}`).toLowerCase()).join(t("board.or")) })}`,
      );
  return h("span", { class: "bounds" }, h("small", {}, ` ${between}`), possible);
}

function etaCell(v) {
  const state = v.eta_state ? h("span", { class: `eta-state ${v.eta_state}` }, t(`eta.${v.eta_state}`)) : null;
  if (!v.eta) return state ?? "—";
  let interval = null;
  if (v.eta_earliest && v.eta_latest) {
    interval = t("board.between", { from: fmtTime(v.eta_earliest), to: fmtTime(v.eta_latest) });
  } else if (v.eta_earliest) {
    interval = t("board.notBefore", { from: fmtTime(v.eta_earliest) });
  }
  interval = interval ? h("small", { class: "eta-interval" }, ` ${interval}`) : null;
  return h(
    "span",
    { class: "eta" },
    h("strong", {}, fmtTime(v.eta)),
    interval,
    v.eta_delay_min !== null ? h("small", {}, ` (${fmtDelay(v.eta_delay_min)})`) : null,
    v.eta_distance_km !== null ? h("small", {}, ` — ${fmtNumber(v.eta_distance_km, 1)} km`) : null,
    state ? h("br") : null,
    state,
    v.eta_source ? h("small", { class: "eta-source" }, ` ${t(`eta.source.${v.eta_source}`)}`) : null,
  );
}

function actions(v) {
  const buttons = [];
  const label = `${v.stop_name}, ${fmtTime(v.scheduled_arrival)}`;
  const button = (key, action, cls = "secondary") =>
    h("button", { type: "button", class: cls, dataset: { action: key }, "aria-label": `${t(`board.${key}`)} — ${label}`, onclick: () => action(v) }, t(`board.${key}`));
  if (v.status !== "cancelled") {
    if (v.arrival && !v.confirmed_arrival) buttons.push(button("confirm", confirm, "primary"));
    buttons.push(button("correct", correct));
    if (!v.arrival) buttons.push(button("cancel", cancel));
    if (v.arrival) buttons.push(button("attendance", attendance));
  }
  buttons.push(button("notice", notice));
  buttons.push(button("history", history));
  return h("div", { class: "row-actions" }, buttons);
}

function render(body) {
  const visits = [...body.visits].sort(
    (a, b) => a.vehicle.localeCompare(b.vehicle) || a.scheduled_arrival.localeCompare(b.scheduled_arrival),
  );
  const rows = visits.map((v) =>
    h(
      "tr",
      { id: `visit-${v.id}`, dataset: { visit: v.id, status: v.status } },
      h("td", {}, vehicleLabel(v.vehicle)),
      h("th", { scope: "row" }, v.stop_name),
      h("td", {}, `${fmtTime(v.scheduled_arrival)}–${fmtTime(v.scheduled_departure)}`),
      h("td", { class: "arrival-cell" }, arrivalCell(v)),
      h("td", {}, v.departure ? fmtTime(v.departure) : "—"),
      h(
        "td",
        {},
        statusChip(v),
        v.cancelled_reason ? h("small", {}, ` ${v.cancelled_reason}`) : null,
        v.public_message ? h("small", { class: "public-message" }, ` — ${t("board.publicShort")} : « ${v.public_message} »`) : null,
      ),
      h("td", {}, fmtDelay(v.delay_min)),
      h("td", {}, etaCell(v)),
      h("td", { class: "patients" }, v.patients_seen === null ? "—" : fmtNumber(v.patients_seen, 0)),
      h("td", {}, actions(v)),
    ),
  );
  const unscheduled = body.unscheduled_stops.map((u) =>
    h(
      "tr",
      {},
      h("td", {}, vehicleLabel(u.vehicle)),
      h("th", { scope: "row" }, u.stop_name),
      h("td", {}, fmtTime(u.arrival)),
      h("td", {}, u.departure ? fmtTime(u.departure) : "—"),
    ),
  );
  content.replaceChildren(
    visits.length
      ? table(
          [
            t("common.vehicle"),
            t("board.stop"),
            t("board.scheduled"),
            t("board.arrival"),
            t("board.departure"),
            t("board.status"),
            t("board.delay"),
            t("board.eta"),
            t("board.patients"),
            t("board.actions"),
          ],
          rows,
        )
      : h("p", { class: "empty" }, t("board.empty")),
    h("h2", {}, t("board.unscheduled")),
    unscheduled.length
      ? table([t("common.vehicle"), t("board.stop"), t("board.arrival"), t("board.departure")], unscheduled)
      : h("p", { class: "empty" }, t("board.unscheduledEmpty")),
  );
}

const path = (v, what) => `/api/v1/visits/${encodeURIComponent(v.id)}/${what}`;

async function confirm(v) {
  const row = document.getElementById(`visit-${v.id}`);
  try {
    await postJson(path(v, "confirm"), {});
    await load();
  } catch (error) {
    row?.querySelector(".row-actions")?.append(errorBox(error));
  }
}

/** A time typed on the visit's day, as an instant with that day's Paris offset. */
function localTime(visitDay, value) {
  const iso = parisInstant(visitDay, value);
  if (!iso) throw new UserError(t("board.badTime"));
  return iso;
}

function correct(v) {
  formDialog({
    title: `${t("board.correctTitle")} — ${v.stop_name}, ${fmtDay(v.day)}`,
    fields: [
      { name: "arrival", label: t("board.arrivalTime"), type: "time", required: true, hint: t("board.timeHint"), value: v.arrival ? fmtTime(v.arrival) : "" },
      { name: "departure", label: t("board.departureTime"), type: "time", hint: t("board.timeHint"), value: v.departure ? fmtTime(v.departure) : "" },
      { name: "reason", label: t("common.reason"), type: "textarea", required: true },
    ],
    submitLabel: t("common.save"),
    submit: async (values) => {
      const arrival = localTime(v.day, values.arrival);
      const departure = values.departure ? localTime(v.day, values.departure) : null;
      if (departure && new Date(departure) <= new Date(arrival)) throw new UserError(t("board.departureBeforeArrival"));
      if (!values.reason) throw new UserError(t("board.reasonRequired"));
      await postJson(path(v, "correct"), { arrival, departure, reason: values.reason });
      await load();
    },
  });
}

function cancel(v) {
  formDialog({
    title: `${t("board.cancelTitle")} — ${v.stop_name}, ${fmtDay(v.day)}`,
    fields: [
      { name: "reason", label: t("common.reason"), type: "textarea", required: true },
      { name: "public_message", label: t("board.publicMessage"), hint: t("board.publicMessageHint"), type: "textarea" },
    ],
    submitLabel: t("board.cancel"),
    submit: async (values) => {
      if (!values.reason) throw new UserError(t("board.reasonRequired"));
      await postJson(path(v, "cancel"), { reason: values.reason, public_message: values.public_message || null });
      await load();
    },
  });
}

function notice(v) {
  formDialog({
    title: `${t("board.noticeTitle")} — ${v.stop_name}, ${fmtDay(v.day)}`,
    fields: [
      { name: "public_message", label: t("board.publicMessage"), hint: t("board.noticeHint"), type: "textarea", value: v.public_message ?? "" },
    ],
    submitLabel: t("common.save"),
    submit: async (values) => {
      await postJson(path(v, "notice"), { public_message: values.public_message || "" });
      await load();
    },
  });
}

let followUpSettings = null;

async function followUpOf(operator) {
  if (followUpSettings === null) {
    try {
      followUpSettings = await getJson("/api/v1/reports/follow-up/settings");
    } catch {
      // Without the ingest's settings the count alone can be entered.
      followUpSettings = {};
    }
  }
  return followUpSettings[operator] ?? null;
}

const COUNT = /^\d{1,4}$/;

function count(text) {
  if (!COUNT.test(text)) throw new UserError(t("error.invalid"));
  return Number(text);
}

async function attendance(v) {
  const settings = await followUpOf(v.operator);
  const known = v.consultations ?? null;
  const profiles = settings?.profiles ?? [];
  const offerings = settings ? ["general", ...settings.specialities.map((s) => s.id)] : [];
  const offeringHint = settings
    ? [`general (${t("board.generalPractice")})`, ...settings.specialities.map((s) => `${s.id} (${s.label})`)].join(", ")
    : "";
  const fields = [
    { name: "patients_seen", label: t("board.patientsCount"), type: "number", required: true, min: 0, max: 1000, value: v.patients_seen ?? "" },
    ...profiles.map((p) => ({
      name: `profile:${p.id}`,
      label: p.label,
      type: "number",
      min: 0,
      max: 1000,
      value: known?.by_profile?.[p.id] ?? "",
    })),
  ];
  if (settings) {
    fields.push(
      { name: "sas_referred", label: t("board.sasReferred"), type: "number", min: 0, max: 1000, value: known?.sas_referred ?? "" },
      { name: "cpam_directed", label: t("board.cpamDirected"), type: "number", min: 0, max: 1000, value: known?.cpam_directed ?? "" },
      { name: "offering", label: t("board.offering"), type: "text", hint: offeringHint, value: known?.offering ?? "" },
      {
        name: "professionals",
        label: t("board.professionals"),
        type: "text",
        hint: settings.professionals.length
          ? `${t("board.professionalsHint")} ${settings.professionals.join(", ")}`
          : t("board.noProfessionals"),
        value: (known?.professionals ?? []).join(", "),
      },
    );
  }
  fields.push({ name: "note", label: t("board.note"), type: "textarea" });
  formDialog({
    title: `${t("board.attendanceTitle")} — ${v.stop_name}, ${fmtDay(v.day)}`,
    intro: settings ? t("board.countsOnly") : undefined,
    fields,
    submitLabel: t("common.save"),
    submit: async (values) => {
      const body = { patients_seen: count(values.patients_seen), note: values.note || null };
      const filled = profiles.filter((p) => values[`profile:${p.id}`] !== "");
      const extra = ["sas_referred", "cpam_directed", "offering", "professionals"].some((k) => (values[k] ?? "") !== "");
      if (filled.length || extra) {
        const offering = (values.offering ?? "").trim();
        if (offering && !offerings.includes(offering)) throw new UserError(`${t("board.offering")} : ${offeringHint}`);
        body.consultations = {
          by_profile: filled.length ? Object.fromEntries(profiles.map((p) => [p.id, values[`profile:${p.id}`] === "" ? 0 : count(values[`profile:${p.id}`])])) : {},
          sas_referred: values.sas_referred ? count(values.sas_referred) : 0,
          cpam_directed: values.cpam_directed ? count(values.cpam_directed) : 0,
          offering: offering || null,
          professionals: (values.professionals ?? "").split(",").map((x) => x.trim()).filter(Boolean),
        };
      }
      await postJson(path(v, "attendance"), body);
      await load();
    },
  });
}

function describeChange(c) {
  const parts = [t(`change.${c.kind}`)];
  if (c.arrival) parts.push(`${t("board.arrival")} ${fmtTime(c.arrival)}`);
  if (c.departure) parts.push(`${t("board.departure")} ${fmtTime(c.departure)}`);
  if (c.patients_seen !== null) parts.push(`${t("board.patients")} : ${fmtNumber(c.patients_seen, 0)}`);
  if (c.consultations && Object.keys(c.consultations.by_profile).length)
    parts.push(Object.entries(c.consultations.by_profile).map(([k, n]) => `${k} ${n}`).join(", "));
  if (c.reason) parts.push(`« ${c.reason} »`);
  if (c.public_message) parts.push(`${t("board.publicMessage")} : « ${c.public_message} »`);
  else if (c.public_message === "") parts.push(t("board.noticeWithdrawn"));
  return parts.join(" — ");
}

async function history(v) {
  let body;
  try {
    body = await getJson(path(v, "history"));
  } catch (error) {
    infoDialog(t("board.historyTitle"), errorBox(error));
    return;
  }
  const d = body.detected;
  infoDialog(
    `${t("board.historyTitle")} — ${v.stop_name}, ${fmtDay(v.day)}`,
    h(
      "div",
      { class: "history" },
      h("p", {}, `${t("board.scheduled")} : ${fmtTime(v.scheduled_arrival)}–${fmtTime(v.scheduled_departure)}`),
      h("p", {}, `${t("board.detection")} : ${t("board.arrival")} ${fmtTime(d.arrival)}, ${t("board.departure")} ${fmtTime(d.departure)}`),
      body.changes.length
        ? h(
            "ol",
            {},
            body.changes.map((c) => h("li", {}, h("strong", {}, `${fmtDateTime(c.at)} — ${c.who}`), h("br"), describeChange(c))),
          )
        : h("p", {}, t("board.noChanges")),
    ),
  );
}
