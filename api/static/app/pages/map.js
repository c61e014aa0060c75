// The fleet map: base tiles from a configurable source, the stops with their zones, the
// day's routes and the buses (heading, moving or parked, stale, offline, alert badges).
// The view is fitted once, then moves only when the user asks.

import { getJson } from "../api.js";
import { fmtAge, fmtNumber, t } from "../i18n.js";
import { activeAlertsOf, fleet, on, vehicleLabel, vehicleState } from "../state.js";
import { parisDay } from "../time.js";
import { baseLayer } from "../tiles.js";
import { h } from "../ui.js";

const ROUTE_COLOURS = ["#0b5cad", "#9b2c8c", "#1f7a3a", "#b45309"];

let map = null;
let busLayer = null;
let stopLayer = null;
let routeLayer = null;
let fitted = false;
const markers = new Map();
let list = null;
let notice = null;
let routesDay = null;

export function mount(el) {
  el.replaceChildren(
    h("h1", { class: "visually-hidden", "data-i18n": "map.title" }, t("map.title")),
    h(
      "div",
      { class: "map-layout" },
      h("div", { id: "fleet-map", class: "map", role: "region", "aria-label": t("map.title") }),
      h(
        "aside",
        { class: "map-side", "aria-labelledby": "fleet-heading" },
        h(
          "div",
          { class: "side-head" },
          h("h2", { id: "fleet-heading" }, t("map.vehicles")),
          h("button", { type: "button", class: "secondary", id: "fit-fleet", onclick: fitAll }, t("map.fit")),
        ),
        (list = h("ul", { class: "fleet-list" })),
        legend(),
        (notice = h("p", { class: "notice", hidden: true })),
      ),
    ),
  );
  map = L.map("fleet-map", { zoomControl: true, attributionControl: true }).setView([49.4, 1.2], 9);
  baseLayer().then((layer) => {
    if (!layer) {
      showNotice("map.tiles.none");
      return;
    }
    layer.on("tileerror", () => showNotice("map.tiles.failed"));
    layer.addTo(map);
  });
  map.on("zoomend moveend", declutter);
  routeLayer = L.layerGroup().addTo(map);
  stopLayer = L.layerGroup().addTo(map);
  busLayer = L.layerGroup().addTo(map);
  drawStops();
  on("positions", drawBuses);
  on("vehicles", drawBuses);
  on("alerts", drawBuses);
  on("visits", (change) => {
    if (change.date === parisDay()) drawRoutes(true);
  });
  // Ages ("il y a 12 s") and staleness move with the clock, not only with events.
  setInterval(() => {
    if (!el.hidden) drawBuses();
  }, 5000);
}

export function show() {
  drawBuses();
  drawRoutes(false);
  // A map laid out while its page was hidden has no size yet.
  return new Promise((resolve) =>
    setTimeout(() => {
      map.invalidateSize();
      if (!fitted) fitAll();
      resolve();
    }, 0),
  );
}

function showNotice(key) {
  notice.hidden = false;
  notice.textContent = t(key);
  notice.dataset.key = key;
}

function legend() {
  return h(
    "div",
    { class: "legend" },
    h("h2", {}, t("map.legend")),
    h(
      "ul",
      {},
      ["moving", "parked", "stale", "offline"].map((s) =>
        h("li", {}, h("span", { class: `bus-dot ${s}`, "aria-hidden": "true" }), t(`map.legend.${s}`)),
      ),
      h("li", {}, h("span", { class: "stop-dot", "aria-hidden": "true" }), t("map.stops")),
      h("li", {}, h("span", { class: "route-dash", "aria-hidden": "true" }), t("map.route")),
    ),
  );
}

function drawStops() {
  stopLayer.clearLayers();
  for (const s of fleet.stops) {
    L.circle([s.lat, s.lon], { radius: s.radius_m, color: "#555", weight: 1, fillOpacity: 0.12, interactive: false })
      .bindTooltip(s.name, { permanent: true, direction: "right", offset: [6, 0], className: "stop-label" })
      .addTo(stopLayer);
    L.circleMarker([s.lat, s.lon], { radius: 4, color: "#333", weight: 1, fillColor: "#fff", fillOpacity: 1 })
      .bindTooltip(s.name)
      .addTo(stopLayer);
  }
}

async function drawRoutes(force) {
  const day = parisDay();
  if (!force && routesDay === day) return;
  routesDay = day;
  let body;
  try {
    body = await getJson(`/api/v1/visits?date=${day}`);
  } catch {
    return;
  }
  const stops = new Map(fleet.stops.map((s) => [s.id, s]));
  const byVehicle = new Map();
  for (const v of body.visits) {
    if (!byVehicle.has(v.vehicle)) byVehicle.set(v.vehicle, []);
    byVehicle.get(v.vehicle).push(v);
  }
  routeLayer.clearLayers();
  [...byVehicle.entries()].forEach(([vehicle, visits], i) => {
    visits.sort((a, b) => a.scheduled_arrival.localeCompare(b.scheduled_arrival));
    const points = visits.map((v) => stops.get(v.stop)).filter(Boolean).map((s) => [s.lat, s.lon]);
    if (points.length < 2) return;
    L.polyline(points, { color: ROUTE_COLOURS[i % ROUTE_COLOURS.length], weight: 3, dashArray: "6 6", opacity: 0.8 })
      .bindTooltip(`${t("map.route")} — ${vehicleLabel(vehicle)}`)
      .addTo(routeLayer);
  });
}

function arrow(heading, state) {
  // An SVG transform, not a style attribute: the page's CSP allows no inline style.
  const rotate = heading === null || heading === undefined ? "" : ` transform="rotate(${Math.round(heading)} 12 12)"`;
  const shape =
    state === "moving" && heading !== null && heading !== undefined
      ? '<path d="M12 2 L20 21 L12 16 L4 21 Z"/>'
      : '<rect x="5" y="5" width="14" height="14" rx="3"/>';
  return `<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><g${rotate}>${shape}</g></svg>`;
}

function busIcon(id, feature) {
  const state = vehicleState(id);
  const alerts = activeAlertsOf(id).length;
  const badge = alerts ? `<span class="badge" aria-hidden="true">${alerts}</span>` : "";
  return {
    key: `${state}|${Math.round(feature.properties.heading_deg ?? -1)}|${alerts}`,
    icon: L.divIcon({
      className: `bus-icon ${state}`,
      html: `${arrow(feature.properties.heading_deg, state)}${badge}`,
      iconSize: [30, 30],
      iconAnchor: [15, 15],
      tooltipAnchor: [0, -14],
    }),
  };
}

function drawBuses() {
  if (!map) return;
  for (const [id, feature] of fleet.positions) {
    const [lon, lat] = feature.geometry.coordinates;
    const { key, icon } = busIcon(id, feature);
    const last = fleet.vehicles.get(id)?.last_seen ?? feature.properties.last_seen ?? feature.properties.time;
    const name = `${vehicleLabel(id)} — ${t(`state.${vehicleState(id)}`)} — ${t("vehicle.lastContact")} ${fmtAge(last)}`;
    let marker = markers.get(id);
    if (!marker) {
      marker = L.marker([lat, lon], { icon, title: name, alt: name, keyboard: true, riseOnHover: true });
      marker.bindTooltip(name, { direction: "top" });
      marker.on("click", () => focusCard(id));
      marker.addTo(busLayer);
      marker.iconKey = key;
      markers.set(id, marker);
    } else {
      marker.setLatLng([lat, lon]);
      if (marker.iconKey !== key) {
        marker.setIcon(icon);
        marker.iconKey = key;
      }
      marker.setTooltipContent(name);
      const el = marker.getElement();
      if (el) {
        el.title = name;
        el.setAttribute("alt", name);
      }
    }
    marker.getElement()?.setAttribute("data-vehicle", id);
  }
  for (const [id, marker] of markers) {
    if (!fleet.positions.has(id)) {
      marker.remove();
      markers.delete(id);
    }
  }
  drawList();
  declutter();
}

function drawList() {
  const ids = [...new Set([...fleet.vehicles.keys(), ...fleet.positions.keys()])].sort();
  list.replaceChildren(
    ...ids.map((id) => {
      const v = fleet.vehicles.get(id);
      const p = fleet.positions.get(id)?.properties;
      const state = vehicleState(id);
      const alerts = activeAlertsOf(id);
      return h(
        "li",
        { class: `fleet-card ${state}`, id: `card-${id}`, dataset: { vehicle: id, state } },
        h(
          "h3",
          {},
          h("span", { class: `bus-dot ${state}`, "aria-hidden": "true" }),
          vehicleLabel(id),
          alerts.length
            ? h("a", { class: "badge", href: "#/alertes", title: t("vehicle.alerts", { n: alerts.length }) }, String(alerts.length))
            : null,
        ),
        h("p", { class: "state" }, t(`state.${state}`)),
        h(
          "dl",
          {},
          h("dt", {}, t("vehicle.lastContact")),
          h("dd", { class: "age" }, fmtAge(v?.last_seen ?? p?.last_seen ?? p?.time)),
          p ? [h("dt", {}, t("vehicle.speed")), h("dd", { class: "speed" }, `${fmtNumber(p.speed_kmh ?? 0, 0)} km/h`)] : null,
          p?.heading_deg !== null && p?.heading_deg !== undefined
            ? [h("dt", {}, t("vehicle.heading")), h("dd", {}, `${fmtNumber(p.heading_deg, 0)}°`)]
            : null,
          v?.soc_pct !== null && v?.soc_pct !== undefined
            ? [h("dt", {}, t("vehicle.battery")), h("dd", {}, `${fmtNumber(v.soc_pct, 0)} %`)]
            : null,
          v?.fridge_temp_c !== null && v?.fridge_temp_c !== undefined
            ? [
                h("dt", {}, t("vehicle.fridge")),
                h("dd", {}, `${fmtNumber(v.fridge_temp_c, 1)} °C${v.fridge_door_open ? ` — ${t("vehicle.doorOpen")}` : ""}`),
              ]
            : null,
        ),
        h(
          "p",
          { class: "card-actions" },
          p
            ? h("button", { type: "button", class: "secondary", onclick: () => centreOn(id) }, `${t("map.center")} ${vehicleLabel(id)}`)
            : h("span", {}, t("map.noPosition")),
          h("a", { href: `#/trajet/${encodeURIComponent(id)}/${parisDay()}` }, `${t("map.track")} — ${vehicleLabel(id)}`),
        ),
      );
    }),
  );
}

/** Stop names stay on the map while they have room: a name that would overlap a bus or a
 * name already placed is hidden (it still shows on hover or tap of its stop). */
function declutter() {
  const taken = [...document.querySelectorAll("#fleet-map .bus-icon")].map((el) => el.getBoundingClientRect());
  const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  for (const label of document.querySelectorAll("#fleet-map .stop-label")) {
    label.style.visibility = "";
    const box = label.getBoundingClientRect();
    if (taken.some((other) => overlaps(box, other))) label.style.visibility = "hidden";
    else taken.push(box);
  }
}

function focusCard(id) {
  document.getElementById(`card-${id}`)?.scrollIntoView({ block: "nearest" });
}

function centreOn(id) {
  const f = fleet.positions.get(id);
  if (!f) return;
  const [lon, lat] = f.geometry.coordinates;
  map.setView([lat, lon], Math.max(map.getZoom(), 13));
  markers.get(id)?.openTooltip();
}

function fitAll() {
  const points = [
    ...fleet.stops.map((s) => [s.lat, s.lon]),
    ...[...fleet.positions.values()].map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]),
  ];
  if (!points.length) return;
  map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom: 13, animate: false });
  fitted = true;
}
