// Local days and times in the itinerary's zone (Europe/Paris), whatever the browser's zone.

import { ZONE } from "./i18n.js";

const parts = new Intl.DateTimeFormat("en-CA", {
  timeZone: ZONE,
  hourCycle: "h23",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

function fields(instant) {
  const out = {};
  for (const p of parts.formatToParts(instant)) out[p.type] = p.value;
  return out;
}

/** The local day in Paris, "YYYY-MM-DD", of an instant (now by default). */
export function parisDay(instant = new Date()) {
  const f = fields(instant);
  return `${f.year}-${f.month}-${f.day}`;
}

/** "HH:MM" in Paris of an ISO instant. */
export function parisClock(iso) {
  const f = fields(new Date(iso));
  return `${f.hour}:${f.minute}`;
}

/** Minutes east of UTC that Paris is at an instant (60 in winter, 120 in summer). */
export function parisOffsetMinutes(instant) {
  const f = fields(instant);
  const asUtc = Date.UTC(+f.year, +f.month - 1, +f.day, +f.hour, +f.minute, +f.second);
  return Math.round((asUtc - Math.floor(instant.getTime() / 1000) * 1000) / 60000);
}

/**
 * A wall-clock time on a Paris day as an ISO instant with its offset, e.g.
 * ("2026-10-26", "09:07") → "2026-10-26T09:07:00+01:00". The offset is the one Paris has
 * at that moment of that day, so a day either side of a daylight-saving change gets its
 * own. Returns null for a time that is not HH:MM on 24 hours, or that does not exist that
 * day (the skipped hour in spring).
 */
export function parisInstant(day, hhmm) {
  const time = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm.trim());
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!time || !date) return null;
  const [y, mo, d] = [+date[1], +date[2], +date[3]];
  if (new Date(Date.UTC(y, mo - 1, d)).toISOString().slice(0, 10) !== day) return null;
  const [h, mi] = [+time[1], +time[2]];
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  // Two passes: the offset at the first guess may differ from the one at the answer.
  let offset = parisOffsetMinutes(new Date(wall - 60 * 60000));
  offset = parisOffsetMinutes(new Date(wall - offset * 60000));
  const instant = new Date(wall - offset * 60000);
  if (parisClock(instant.toISOString()) !== `${time[1]}:${time[2]}`) return null;
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${day}T${pad(h)}:${pad(mi)}:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}
