// Reports, each with a chart (uPlot) and its CSV: punctuality, footprint, cold chain and
// the funder's year. The CSV is fetched with the token and saved through a Blob.

import { downloadCsv, getJson } from "../api.js";
import { fmtDay, fmtNumber, fmtPercent, fmtShortDay, t } from "../i18n.js";
import { fleet, vehicleLabel } from "../state.js";
import { addDays, parisDay } from "../time.js";
import { errorBox, h, option, table } from "../ui.js";

const KINDS = ["ponctualite", "empreinte", "froid", "financeur"];
const TITLE = { ponctualite: "reports.punctuality", empreinte: "reports.footprint", froid: "reports.coldchain", financeur: "reports.funder" };
const GROUPS = ["vehicle", "stop", "weekday", "day", "week", "month"];

let root = null;
let kind = "ponctualite";
let chart = null;
// Each load's number: an answer that comes back after a later request was made (the page's
// first report, say, still on its way when the form is sent) is dropped.
let loads = 0;

export function mount(el) {
  root = el;
}

export function show([wanted] = []) {
  kind = KINDS.includes(wanted) ? wanted : "ponctualite";
  const today = parisDay();
  const ids = [...fleet.vehicles.keys()].sort();
  const fields = [];
  // Punctuality may cover every bus of the operator; the other reports are per bus.
  fields.push(
    h(
      "p",
      { class: "field" },
      h("label", { for: "report-vehicle" }, t("common.vehicle")),
      h("select", { id: "report-vehicle", name: "vehicle" }, kind === "ponctualite" ? option("", "—") : null, ids.map((id) => option(id, vehicleLabel(id)))),
    ),
  );
  if (kind === "financeur") {
    fields.push(h("p", { class: "field" }, h("label", { for: "report-year" }, t("common.year")), h("input", { id: "report-year", name: "year", type: "number", min: 2000, max: 2100, value: today.slice(0, 4) })));
  } else {
    fields.push(
      h("p", { class: "field" }, h("label", { for: "report-from" }, t("common.from")), h("input", { id: "report-from", name: "from", type: "date", required: true, value: addDays(today, -29) })),
      h("p", { class: "field" }, h("label", { for: "report-to" }, t("common.to")), h("input", { id: "report-to", name: "to", type: "date", required: true, value: today })),
    );
  }
  if (kind === "ponctualite") {
    fields.push(
      h(
        "p",
        { class: "field" },
        h("label", { for: "report-group" }, t("reports.groupBy")),
        h("select", { id: "report-group", name: "group_by" }, GROUPS.map((g) => option(g, t(`reports.group.${g}`), g === "day"))),
      ),
    );
  }
  const form = h(
    "form",
    { class: "controls", id: "report-form", onsubmit: (e) => { e.preventDefault(); load(form); } },
    ...fields,
    h(
      "p",
      { class: "buttons" },
      h("button", { type: "submit", class: "primary" }, t("common.show")),
      h("button", { type: "button", class: "secondary", id: "report-csv", onclick: () => csv(form) }, t("reports.csv")),
    ),
  );
  root.replaceChildren(
    h("h1", {}, t("reports.title")),
    h(
      "nav",
      { class: "tabs", "aria-label": t("reports.title") },
      h("ul", {}, KINDS.map((k) => h("li", {}, h("a", { href: `#/rapports/${k}`, "aria-current": k === kind ? "page" : undefined }, t(TITLE[k]))))),
    ),
    h("h2", {}, t(TITLE[kind])),
    form,
    h("p", { id: "report-status", role: "status" }),
    h("div", { id: "report-chart", class: "chart" }),
    h("div", { id: "report-body" }),
  );
  return load(form);
}

function query(form) {
  const data = new FormData(form);
  const q = new URLSearchParams();
  for (const [key, value] of data) if (value) q.set(key, value);
  return q;
}

function endpoint(form) {
  const q = query(form);
  if (kind === "ponctualite") return `/api/v1/reports/punctuality?${q}`;
  if (kind === "empreinte") return `/api/v1/reports/footprint?${q}`;
  if (kind === "froid") return `/api/v1/reports/coldchain?${q}`;
  return `/api/v1/reports/funder?${q}`;
}

async function csv(form) {
  const status = root.querySelector("#report-status");
  try {
    const q = query(form);
    q.set("format", "csv");
    const name = await downloadCsv(endpoint(form).split("?")[0] + `?${q}`);
    status.textContent = t("reports.downloaded", { name });
  } catch (error) {
    status.replaceChildren(errorBox(error));
  }
}

async function load(form) {
  const body = root.querySelector("#report-body");
  const status = root.querySelector("#report-status");
  status.textContent = t("common.loading");
  const mine = ++loads;
  let report;
  try {
    report = await getJson(endpoint(form));
  } catch (error) {
    if (mine !== loads) return;
    status.replaceChildren(errorBox(error));
    body.replaceChildren();
    drawChart(null);
    return;
  }
  if (mine !== loads) return;
  status.textContent = "";
  if (kind === "ponctualite") punctuality(report, body);
  else if (kind === "empreinte") footprint(report, body);
  else if (kind === "froid") coldchain(report, body);
  else funder(report, body);
}

function groupLabel(group, by) {
  if (by === "vehicle") return vehicleLabel(group);
  if (by === "day" && /^\d{4}-\d{2}-\d{2}$/.test(group)) return fmtDay(group, { weekday: "short", day: "2-digit", month: "2-digit" });
  return group;
}

function punctuality(r, body) {
  const rows = [...r.groups, r.total].map((g, i) =>
    h(
      "tr",
      { dataset: { group: g.group } },
      h("th", { scope: "row" }, i === r.groups.length ? t("reports.total") : groupLabel(g.group, r.group_by)),
      h("td", { class: "n-visits" }, fmtNumber(g.visits, 0)),
      h("td", { class: "n-held" }, fmtNumber(g.held, 0)),
      h("td", {}, fmtNumber(g.on_time, 0)),
      h("td", {}, fmtNumber(g.late, 0)),
      h("td", {}, fmtNumber(g.missed, 0)),
      h("td", { class: "n-cancelled" }, fmtNumber(g.cancelled, 0)),
      h("td", { class: "on-time-rate" }, fmtPercent(g.on_time_rate)),
      h("td", {}, fmtNumber(g.mean_delay_min, 1)),
      h("td", {}, fmtNumber(g.p90_delay_min, 1)),
    ),
  );
  body.replaceChildren(
    table(
      [t("reports.group"), t("reports.visits"), t("reports.held"), t("status.on_time"), t("status.late"), t("status.missed"), t("reports.cancelled"), t("reports.onTimeRate"), t("reports.meanDelay"), t("reports.p90Delay")],
      rows,
    ),
  );
  if (r.group_by === "day") {
    const days = r.groups.filter((g) => /^\d{4}-\d{2}-\d{2}$/.test(g.group));
    drawChart(
      days.map((g) => g.group),
      [
        { label: `${t("reports.onTimeRate")} (%)`, values: days.map((g) => (g.on_time_rate === null ? null : g.on_time_rate * 100)), colour: "#1f7a3a" },
        { label: t("reports.meanDelay"), values: days.map((g) => g.mean_delay_min), colour: "#b45309" },
      ],
    );
  } else drawChart(null);
}

function footprint(r, body) {
  body.replaceChildren(
    table(
      [t("common.date"), t("reports.distance"), t("reports.co2e")],
      [
        ...r.days.map((d) => h("tr", {}, h("th", { scope: "row" }, fmtDay(d.date, { day: "2-digit", month: "2-digit", year: "numeric" })), h("td", {}, fmtNumber(d.distance_km, 1)), h("td", {}, fmtNumber(d.co2e.wtw_kgco2e, 1)))),
        h("tr", {}, h("th", { scope: "row" }, t("reports.total")), h("td", {}, fmtNumber(r.totals.distance_km, 1)), h("td", {}, fmtNumber(r.totals.co2e?.wtw_kgco2e, 1))),
      ],
    ),
  );
  if (!r.days.length) body.prepend(h("p", { class: "empty no-data" }, t("reports.noData")));
  drawChart(
    r.days.map((d) => d.date),
    [
      { label: t("reports.distance"), values: r.days.map((d) => d.distance_km), colour: "#0b5cad" },
      { label: t("reports.co2e"), values: r.days.map((d) => d.co2e.wtw_kgco2e), colour: "#9b2c8c" },
    ],
  );
}

function coldchain(r, body) {
  body.replaceChildren(
    h("p", {}, `${t("reports.inRange")} : ${fmtNumber(r.summary.in_range, 0)} / ${fmtNumber(r.summary.days, 0)}`),
    table(
      [t("common.date"), t("board.status"), t("reports.minC"), t("reports.maxC")],
      r.days.map((d) => h("tr", {}, h("th", { scope: "row" }, fmtDay(d.date, { day: "2-digit", month: "2-digit", year: "numeric" })), h("td", {}, t(`fridge.status.${d.status}`)), h("td", {}, fmtNumber(d.min_c, 1)), h("td", {}, fmtNumber(d.max_c, 1)))),
    ),
  );
  drawChart(
    r.days.map((d) => d.date),
    [
      { label: t("reports.minC"), values: r.days.map((d) => d.min_c), colour: "#0b5cad" },
      { label: t("reports.maxC"), values: r.days.map((d) => d.max_c), colour: "#c92a2a" },
    ],
  );
}

function funder(r, body) {
  const line = (key, value) => [h("dt", {}, t(key)), h("dd", {}, value)];
  body.replaceChildren(
    h(
      "dl",
      { class: "figures", "aria-label": `${t("reports.funder")} ${r.year}` },
        line("reports.distance", fmtNumber(r.distance_km, 0)),
        line("reports.operatingDays", fmtNumber(r.operating_days, 0)),
        line("reports.co2e", fmtNumber(r.co2e?.wtw_kgco2e, 0)),
        line("reports.avoided", r.avoided ? fmtNumber(r.avoided.kgco2e, 0) : "—"),
        line("reports.scheduled", r.visits ? fmtNumber(r.visits.scheduled, 0) : "—"),
        line("reports.held", r.visits ? fmtNumber(r.visits.held, 0) : "—"),
        line("reports.cancelled", r.visits ? fmtNumber(r.visits.cancelled, 0) : "—"),
        line("reports.patients", r.patients_seen === null ? "—" : fmtNumber(r.patients_seen, 0)),
        line("reports.inRange", `${fmtNumber(r.coldchain.days.in_range, 0)} / ${fmtNumber(r.coldchain.days.days, 0)}`),
        line("reports.alarms", fmtNumber(Object.values(r.coldchain.alarms).reduce((a, b) => a + b, 0), 0)),
    ),
  );
  // The year's punctuality where visits are recorded, else its cold-chain days.
  const p = r.punctuality;
  if (p) {
    const keys = ["early", "on_time", "late", "missed"];
    drawBars(keys.map((k) => t(`status.${k}`)), keys.map((k) => p[k]), t("reports.visits"));
  } else {
    const days = r.coldchain.days;
    const keys = [["ok", "in_range"], ["incomplete", "incomplete"], ["no_data", "no_data"], ["warning", "with_warnings"], ["alarm", "with_alarms"]];
    drawBars(keys.map(([k]) => t(`fridge.status.${k}`)), keys.map(([, f]) => days[f]), t("reports.coldchain"));
  }
}

function dayStamp(day) {
  const [y, m, d] = day.split("-").map(Number);
  return Date.UTC(y, m - 1, d, 12) / 1000;
}

function destroy() {
  chart?.destroy();
  chart = null;
  root.querySelector("#report-chart")?.replaceChildren();
}

/** A line chart of daily series; days is a list of "YYYY-MM-DD". */
function drawChart(days, series = []) {
  destroy();
  const target = root.querySelector("#report-chart");
  if (!days || !days.length || typeof uPlot === "undefined") return;
  const width = Math.max(280, Math.min(900, target.clientWidth || 600));
  const stamps = days.map(dayStamp);
  chart = new uPlot(
    {
      width,
      height: 260,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "UTC"),
      series: [{ label: t("common.date"), value: (_, ts) => (ts === null ? "—" : fmtShortDay(new Date(ts * 1000).toISOString().slice(0, 10))) }, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, points: { show: true }, value: (_, v) => fmtNumber(v, 1) }))],
      axes: [
        {
          // One tick per day (every few days over a long period), never two per day.
          splits: () => stamps.filter((_, i) => i % Math.ceil(stamps.length / 10) === 0),
          values: (_, ticks) => ticks.map((ts) => fmtShortDay(new Date(ts * 1000).toISOString().slice(0, 10))),
        },
        { values: (_, ticks) => ticks.map((v) => fmtNumber(v, 1)) },
      ],
    },
    [stamps, ...series.map((s) => s.values)],
    target,
  );
}

/** A bar chart of a few counts, drawn with uPlot's bars path. */
function drawBars(labels, values, label) {
  destroy();
  const target = root.querySelector("#report-chart");
  if (typeof uPlot === "undefined") return;
  const width = Math.max(280, Math.min(600, target.clientWidth || 500));
  chart = new uPlot(
    {
      width,
      height: 240,
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] } },
      series: [{ label: t("reports.group"), value: (_, i) => labels[i] ?? "—" }, { label, fill: "#0b5cad88", stroke: "#0b5cad", paths: uPlot.paths.bars({ size: [0.6] }), points: { show: false }, value: (_, v) => fmtNumber(v, 0) }],
      // Category names are slanted so that they never run into one another on a phone.
      axes: [
        { values: (_, ticks) => ticks.map((i) => labels[i] ?? ""), splits: () => labels.map((_, i) => i), rotate: -30, size: 70 },
        { values: (_, ticks) => ticks.map((v) => fmtNumber(v, 0)) },
      ],
    },
    [labels.map((_, i) => i), values],
    target,
  );
}
