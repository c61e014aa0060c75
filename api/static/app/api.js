// Calls to the API for the signed-in person: either a session opened with an e-mail and a
// password (an HttpOnly cookie the browser sends by itself, and a CSRF token kept in this
// page's memory that goes with every change), or a personal token, kept in sessionStorage
// (this tab only), that travels only in the Authorization header, never in an address.

import { t } from "./i18n.js";

const KEY = "medicobus.token";

export class ApiError extends Error {
  /** kind: refused (401), forbidden (403), notfound, conflict, invalid, throttled (429),
   * server, unreachable */
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

// The session's CSRF token: null when there is no session cookie (or it is not known yet).
let csrf = null;

/** Whether this tab is signed in, by a session or a token. */
export function signedIn() {
  return csrf !== null || token() !== null;
}

/** The headers that say who is asking: the token if there is one, else the session's
 * CSRF token for a change (the cookie goes by itself). */
export function authHeaders(method = "GET") {
  const value = token();
  if (value) return { Authorization: `Bearer ${value}` };
  if (csrf && !["GET", "HEAD"].includes(method)) return { "X-CSRF-Token": csrf };
  return {};
}

/** One call to the API as the signed-in person; its answer whatever its status, or an
 * "unreachable" ApiError when none comes. */
async function send(path, { method = "GET", body, accept = "application/json" } = {}) {
  const headers = { ...authHeaders(method), Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError("unreachable", 0, null);
  }
}

// The session's own calls answer for themselves: a refusal there is no news for the
// listeners of request().
function sessionCall(method, body) {
  return send("/api/v1/session", { method, body });
}

/** Signs in with an e-mail and a password. Throws an ApiError: "refused" (401) for a wrong
 * e-mail or password, "throttled" (429) after too many. */
export async function signIn(email, password) {
  const response = await sessionCall("POST", { email, password });
  if (!response.ok) throw await errorOf(response);
  forgetToken();
  csrf = (await response.json()).csrf_token;
}

/** Picks up the session of a cookie set earlier (a reload, another tab): true if open. */
export async function resumeSession() {
  const response = await sessionCall("GET");
  if (!response.ok) return false;
  csrf = (await response.json()).csrf_token;
  return csrf !== null;
}

/** Ends the session on the server (its cookie is then useless) and forgets the token. */
export async function signOut() {
  if (csrf !== null) {
    try {
      await sessionCall("DELETE");
    } catch {
      // Unreachable: the cookie expires by itself; this tab forgets it anyway.
    }
  }
  csrf = null;
  forgetToken();
}

/** Forgets who was signed in, without asking the server (it has refused them already). */
export function forget() {
  csrf = null;
  forgetToken();
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
  if (status === 429) return "throttled";
  if (status === 422 || status === 400) return "invalid";
  return "server";
}

export async function request(path, options = {}) {
  const response = await send(path, options);
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.kind === "refused") for (const l of listeners) l();
    throw error;
  }
  return response;
}

async function errorOf(response) {
  let detail = null;
  try {
    const payload = await response.json();
    detail = typeof payload.detail === "string" ? payload.detail : JSON.stringify(payload.detail);
  } catch {
    detail = response.statusText;
  }
  return new ApiError(kindOf(response.status), response.status, detail);
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function postJson(path, body) {
  return (await request(path, { method: "POST", body })).json();
}

/** Fetches a CSV as the signed-in person and saves it through a Blob, so no token is in
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
