// Calls to the API with the signed-in person's token. The token lives in sessionStorage
// (this tab only) and travels only in the Authorization header, never in an address.

import { t } from "./i18n.js";

const KEY = "medicobus.token";

export class ApiError extends Error {
  /** kind: refused (401), forbidden (403), notfound, conflict, invalid, server, unreachable */
  constructor(kind, status, detail) {
    super(detail || kind);
    this.kind = kind;
    this.status = status;
    this.detail = detail;
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  sessionStorage.setItem(KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

/** A token handed over in the page's fragment (#token=…), taken once and wiped from the
 * address bar and history; the fragment itself is never sent to a server. */
export function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search + "#/carte");
  return true;
}

const listeners = new Set();

/** Called with no argument whenever the API refuses the token. */
export function onRefused(listener) {
  listeners.add(listener);
}

function kindOf(status) {
  if (status === 401) return "refused";
  if (status === 403) return "forbidden";
  if (status === 404) return "notfound";
  if (status === 409) return "conflict";
  if (status === 422 || status === 400) return "invalid";
  return "server";
}

export async function request(path, { method = "GET", body, accept = "application/json" } = {}) {
  const headers = { Authorization: `Bearer ${token() ?? ""}`, Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError("unreachable", 0, null);
  }
  if (!response.ok) {
    let detail = null;
    try {
      const payload = await response.json();
      detail = typeof payload.detail === "string" ? payload.detail : JSON.stringify(payload.detail);
    } catch {
      detail = response.statusText;
    }
    const error = new ApiError(kindOf(response.status), response.status, detail);
    if (error.kind === "refused") for (const l of listeners) l();
    throw error;
  }
  return response;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function postJson(path, body) {
  return (await request(path, { method: "POST", body })).json();
}

/** Fetches a CSV with the token and saves it through a Blob, so the token stays out of
 * the link. Returns the file name. */
export async function downloadCsv(path) {
  const response = await request(path, { accept: "text/csv" });
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] || "rapport.csv";
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  return name;
}

/** A French (or English) sentence for an error, with the server's detail apart. */
export function describe(error) {
  if (error instanceof ApiError) return { text: t(`error.${error.kind}`), detail: error.detail };
  return { text: t("error.server"), detail: String(error) };
}
