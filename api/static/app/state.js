// What the pages share: the fleet as the live feed last told it, and who listens.

export const fleet = {
  vehicles: new Map(), // id → GET /api/v1/vehicles item
  positions: new Map(), // id → GeoJSON feature of GET /api/v1/positions
  alerts: [], // GET /api/v1/alerts?active=true
  stops: [], // GET /api/v1/stops
  link: "connecting",
};

const listeners = new Map();

/** topic: "vehicles", "positions", "alerts", "visits", "link", "language" */
export function on(topic, listener) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(listener);
}

export function emit(topic, payload) {
  for (const listener of listeners.get(topic) ?? []) {
    try {
      listener(payload);
    } catch (error) {
      console.error(`listener of ${topic} failed`, error);
    }
  }
}

export function setVehicles(list) {
  fleet.vehicles = new Map(list.map((v) => [v.id, v]));
  emit("vehicles", fleet.vehicles);
}

export function setPositions(collection) {
  fleet.positions = new Map(collection.features.map((f) => [f.id, f]));
  emit("positions", fleet.positions);
}

export function setAlerts(list) {
  fleet.alerts = list;
  emit("alerts", list);
}

export function activeAlertsOf(vehicle) {
  return fleet.alerts.filter((a) => a.vehicle === vehicle && a.active);
}

export function vehicleLabel(id) {
  return fleet.vehicles.get(id)?.label ?? id;
}

/** How a bus is doing: offline (the link says so), stale (no contact for a while),
 * moving, or parked. */
export const STALE_AFTER_S = 120;
export const MOVING_KMH = 3;

export function vehicleState(id, now = Date.now()) {
  const v = fleet.vehicles.get(id);
  const p = fleet.positions.get(id);
  const online = p?.properties.online ?? v?.online;
  if (online === false) return "offline";
  const last = v?.last_seen ?? p?.properties.last_seen ?? p?.properties.time;
  if (!last || now - new Date(last).getTime() > STALE_AFTER_S * 1000) return "stale";
  const speed = p?.properties.speed_kmh;
  return speed !== null && speed !== undefined && speed >= MOVING_KMH ? "moving" : "parked";
}
