// The base map's tiles, from /static/app/config.json: "ign" (Géoplateforme, Plan IGN v2),
// "osm", or "none". A "?tiles=" query on the page's address overrides it for one visit.

let config = null;

export async function tileConfig() {
  if (!config) {
    try {
      const response = await fetch("/static/app/config.json", { cache: "no-store" });
      config = await response.json();
    } catch {
      config = { tiles: "none", tile_sources: {} };
    }
  }
  return config;
}

/** A Leaflet tile layer, or null when tiles are switched off. */
export async function baseLayer() {
  const c = await tileConfig();
  const chosen = new URLSearchParams(location.search).get("tiles") || c.tiles;
  const source = c.tile_sources?.[chosen];
  if (!source) return null;
  return L.tileLayer(source.url, {
    attribution: source.attribution,
    maxZoom: source.max_zoom ?? 19,
    crossOrigin: true,
  });
}
