// One bus's day: its track with a time slider and a play button, the stops and the stays
// the ingest detected — what a fleet manager needs to explain a missed visit.

import { getJson } from "../api.js";
import { fmtDay, fmtNumber, fmtTime, fmtTimeSeconds, t } from "../i18n.js";
import { fleet, vehicleLabel } from "../state.js";
import { parisDay } from "../time.js";
import { baseLayer } from "../tiles.js";
import { errorBox, h, option } from "../ui.js";

const PLAY_STEP_MS = 100;

let map = null;
let layer = null;
let cursor = null;
let form = null;
let slider = null;
let playButton = null;
let clock = null;
let summary = null;
let stays = null;
let problems = null;
let track = null;
let timer = null;
// The latest track asked for: an answer to an earlier one, still on its way, is dropped.
let asked = 0;

export function mount(el) {
  const vehicleSelect = h("select", { id: "track-vehicle", name: "vehicle" });
  const dateInput = h("input", { id: "track-date", name: "date", type: "date", required: true });
  form = h(
    "form",
    { class: "controls", onsubmit: (e) => { e.preventDefault(); location.hash = `#/trajet/${encodeURIComponent(vehicleSelect.value)}/${dateInput.value}`; } },
    h("p", { class: "field" }, h("label", { for: "track-vehicle" }, t("common.vehicle")), vehicleSelect),
    h("p", { class: "field" }, h("label", { for: "track-date" }, t("common.date")), dateInput),
    h("p", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("common.show"))),
  );
  slider = h("input", { id: "track-slider", type: "range", min: 0, max: 0, value: 0, step: 1, disabled: true, oninput: () => moveTo(+slider.value) });
  playButton = h("button", { type: "button", class: "primary", id: "track-play", disabled: true, onclick: togglePlay }, t("track.play"));
  clock = h("output", { id: "track-clock", for: "track-slider", class: "clock" }, "—");
  el.replaceChildren(
    h("h1", {}, t("track.title")),
    h("p", {}, h("a", { href: "#/carte" }, t("track.back"))),
    form,
    (problems = h("div")),
    h(
      "div",
      { class: "map-layout" },
      h("div", { id: "track-map", class: "map", role: "region", "aria-label": t("track.title") }),
      h(
        "aside",
        { class: "map-side" },
        h("div", { class: "replay" }, h("label", { for: "track-slider" }, t("track.slider")), slider, h("p", {}, playButton, " ", clock)),
        (summary = h("p", { class: "summary" })),
        h("h2", {}, t("track.stays")),
        (stays = h("ol", { class: "stays" })),
      ),
    ),
  );
  map = L.map("track-map").setView([49.4, 1.2], 9);
  baseLayer().then((tiles) => tiles?.addTo(map));
  layer = L.layerGroup().addTo(map);
}

export async function show([vehicle, day] = []) {
  const select = form.querySelector("#track-vehicle");
  const ids = [...fleet.vehicles.keys()].sort();
  vehicle = vehicle && ids.includes(vehicle) ? vehicle : ids[0];
  day = /^\d{4}-\d{2}-\d{2}$/.test(day ?? "") ? day : parisDay();
  select.replaceChildren(...ids.map((id) => option(id, vehicleLabel(id), id === vehicle)));
  form.querySelector("#track-date").value = day;
  setTimeout(() => map.invalidateSize(), 0);
  stop();
  problems.replaceChildren();
  if (!vehicle) return;
  const mine = ++asked;
  let found;
  try {
    found = await getJson(`/api/v1/vehicles/${encodeURIComponent(vehicle)}/track?date=${day}`);
  } catch (error) {
    if (mine === asked) problems.replaceChildren(errorBox(error));
    return;
  }
  if (mine !== asked) return;
  track = found;
  draw(vehicle, day);
}

function draw(vehicle, day) {
  layer.clearLayers();
  stays.replaceChildren();
  const line = track.features.find((f) => f.id === "track");
  const points = line ? line.geometry.coordinates.map(([lon, lat]) => [lat, lon]) : [];
  for (const s of fleet.stops) {
    L.circle([s.lat, s.lon], { radius: s.radius_m, color: "#555", weight: 1, fillOpacity: 0.12 }).bindTooltip(s.name).addTo(layer);
  }
  for (const f of track.features.filter((x) => x.properties?.kind === "stay")) {
    const [lon, lat] = f.geometry.coordinates;
    const p = f.properties;
    const text = `${p.stop_name ?? p.stop_id ?? t("track.stay")} : ${t("track.arrival")} ${fmtTime(p.arrival)}, ${t("track.departure")} ${fmtTime(p.departure)}`;
    L.circleMarker([lat, lon], { radius: 7, color: "#1f7a3a", weight: 2, fillColor: "#7fd197", fillOpacity: 0.9 }).bindTooltip(text).addTo(layer);
    stays.append(h("li", {}, text));
  }
  if (!points.length) {
    summary.textContent = `${vehicleLabel(vehicle)} — ${fmtDay(day)} : ${t("track.empty")}`;
    slider.disabled = playButton.disabled = true;
    clock.textContent = "—";
    if (fleet.stops.length) map.fitBounds(L.latLngBounds(fleet.stops.map((x) => [x.lat, x.lon])), { padding: [20, 20] });
    return;
  }
  L.polyline(points, { color: "#0b5cad", weight: 4, opacity: 0.85 }).addTo(layer);
  cursor = L.circleMarker(points[0], { radius: 8, color: "#fff", weight: 3, fillColor: "#d9480f", fillOpacity: 1 }).addTo(layer);
  summary.textContent = `${vehicleLabel(vehicle)} — ${fmtDay(day)} — ${t("track.points", {
    points: fmtNumber(line.properties.points, 0),
    raw: fmtNumber(line.properties.points_raw, 0),
  })}`;
  slider.max = String(points.length - 1);
  slider.value = "0";
  slider.disabled = playButton.disabled = false;
  moveTo(0);
  map.fitBounds(L.latLngBounds(points), { padding: [20, 20] });
}

function moveTo(i) {
  const line = track?.features.find((f) => f.id === "track");
  if (!line || !cursor) return;
  const [lon, lat] = line.geometry.coordinates[i];
  cursor.setLatLng([lat, lon]);
  const when = line.properties.times?.[i];
  const speed = line.properties.speeds_kmh?.[i];
  const text = `${fmtTimeSeconds(when)}${speed === null || speed === undefined ? "" : ` — ${fmtNumber(speed, 0)} km/h`}`;
  clock.textContent = text;
  slider.setAttribute("aria-valuetext", text);
}

function togglePlay() {
  if (timer) {
    stop();
    return;
  }
  if (+slider.value >= +slider.max) slider.value = "0";
  playButton.textContent = t("track.pause");
  timer = setInterval(() => {
    const next = +slider.value + 1;
    if (next > +slider.max) {
      stop();
      return;
    }
    slider.value = String(next);
    moveTo(next);
  }, PLAY_STEP_MS);
}

function stop() {
  clearInterval(timer);
  timer = null;
  if (playButton) playButton.textContent = t("track.play");
}
