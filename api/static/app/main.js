// The staff web app: signing in, navigation between pages, and the live feed that keeps
// every page up to date without reloading.

import {
  ApiError,
  forget,
  getJson,
  onRefused,
  resumeSession,
  setToken,
  signIn,
  signOut,
  signedIn,
  takeTokenFromFragment,
  token,
} from "./api.js";
import { language, setLanguage, t, translatePage } from "./i18n.js";
import { connectLive } from "./live.js";
import { emit, fleet, on, setAlerts, setPositions, setVehicles } from "./state.js";
import * as alerts from "./pages/alerts.js";
import * as board from "./pages/board.js";
import * as fridge from "./pages/fridge.js";
import * as map from "./pages/map.js";
import * as notifications from "./pages/notifications.js";
import * as reports from "./pages/reports.js";
import * as track from "./pages/track.js";

const PAGES = {
  carte: map,
  trajet: track,
  passages: board,
  alertes: alerts,
  frigo: fridge,
  rapports: reports,
  notifications,
};
const mounted = new Set();
let stopLive = null;

function $(id) {
  return document.getElementById(id);
}

function showLink(state) {
  fleet.link = state;
  const el = $("link-state");
  el.textContent = t(`link.${state}`);
  el.dataset.state = state;
  emit("link", state);
}

function route() {
  const [name, ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { name: PAGES[name] ? name : "carte", params: params.filter(Boolean) };
}

function show() {
  if (!signedIn()) return;
  const { name, params } = route();
  for (const section of document.querySelectorAll("main > .page")) section.hidden = section.id !== `page-${name}`;
  for (const a of document.querySelectorAll("#main-nav a")) {
    const here = a.dataset.page === name || (name === "trajet" && a.dataset.page === "carte");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = PAGES[name];
  const el = $(`page-${name}`);
  if (!mounted.has(name)) {
    page.mount(el);
    mounted.add(name);
  }
  // aria-busy tells assistive technology (and the browser tests) when the page's data is in.
  el.setAttribute("aria-busy", "true");
  Promise.resolve(page.show(params)).finally(() => el.setAttribute("aria-busy", "false"));
  document.title = `${t(`title.${name}`)} — Médicobus`;
  closeMenu();
}

function closeMenu() {
  $("main-nav").classList.remove("open");
  $("menu-button").setAttribute("aria-expanded", "false");
}

function showSignIn(messageKey) {
  stopLive?.();
  stopLive = null;
  for (const section of document.querySelectorAll("main > .page")) section.hidden = section.id !== "page-signin";
  document.body.classList.add("signed-out");
  $("sign-out").hidden = true;
  const message = $("signin-message");
  message.hidden = !messageKey;
  message.textContent = messageKey ? t(messageKey) : "";
  message.dataset.key = messageKey ?? "";
  document.title = `${t("signin.title")} — Médicobus`;
  $("email-input").focus();
}

/** The API refused who is signed in: back to sign-in, saying whether the token was
 * refused or the session has ended. Requests made together (and the live stream) are
 * refused together: the first refusal is answered. */
function refused() {
  if (!signedIn()) return;
  const wasToken = token() !== null;
  forget();
  showSignIn(wasToken ? "signin.refused" : "signin.ended");
}

/** Checks who is signed in with a real call; says whether they are refused or the API
 * unreachable. */
async function start() {
  try {
    const [vehicles, positions, alertList, stops] = await Promise.all([
      getJson("/api/v1/vehicles"),
      getJson("/api/v1/positions"),
      getJson("/api/v1/alerts?active=true"),
      getJson("/api/v1/stops"),
    ]);
    fleet.stops = stops;
    setVehicles(vehicles);
    setPositions(positions);
    setAlerts(alertList);
  } catch (error) {
    // A refusal has been answered already, by the onRefused listener.
    if (!(error instanceof ApiError && error.kind === "refused")) showSignIn("signin.unreachable");
    return;
  }
  document.body.classList.remove("signed-out");
  $("sign-out").hidden = false;
  $("page-signin").hidden = true;
  stopLive?.();
  stopLive = connectLive({
    state: (s) => {
      showLink(s);
      if (s === "refused") refused();
    },
    event: (name, data) => {
      if (name === "positions") setPositions(data);
      else if (name === "vehicles") setVehicles(data);
      else if (name === "alerts") setAlerts(data);
      else if (name === "visits") emit("visits", data);
    },
  });
  show();
}

/** A button to sign in through the organisation's identity provider, where there is one. */
async function offerProvider() {
  try {
    const response = await fetch("/api/v1/session/providers", { cache: "no-store" });
    const { oidc } = await response.json();
    if (!oidc) return;
    const link = $("oidc-link");
    link.href = oidc.url;
    link.textContent = t("signin.withProvider", { label: oidc.label });
    $("oidc-signin").hidden = false;
  } catch {
    // No provider offered: passwords and tokens remain.
  }
}

function updateAlertCount(list) {
  const count = $("alert-count");
  const n = list.filter((a) => a.active && !a.acknowledged).length;
  count.hidden = n === 0;
  count.textContent = String(n);
  count.setAttribute("aria-label", t("vehicle.alerts", { n }));
}

function init() {
  setLanguage(language());
  translatePage();
  $("lang-select").value = language();
  $("lang-select").addEventListener("change", (event) => {
    // Every page is drawn again in the new language; the session or token stays.
    setLanguage(event.target.value);
    location.reload();
  });
  $("menu-button").addEventListener("click", () => {
    const open = $("main-nav").classList.toggle("open");
    $("menu-button").setAttribute("aria-expanded", String(open));
  });
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("signin-message");
    message.hidden = false;
    message.textContent = t("signin.checking");
    try {
      await signIn($("email-input").value.trim(), $("password-input").value);
    } catch (error) {
      const kind = error instanceof ApiError ? error.kind : "unreachable";
      const key = { refused: "signin.wrong", throttled: "signin.throttled" }[kind];
      message.textContent = t(key ?? "signin.unreachable");
      message.dataset.key = key ?? "signin.unreachable";
      return;
    } finally {
      $("password-input").value = "";
    }
    start();
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    setToken(value);
    $("token-input").value = "";
    $("signin-message").hidden = false;
    $("signin-message").textContent = t("signin.checking");
    start();
  });
  $("sign-out").addEventListener("click", async () => {
    await signOut();
    showSignIn(null);
  });
  onRefused(refused);
  on("alerts", updateAlertCount);
  window.addEventListener("hashchange", () => {
    if (takeTokenFromFragment()) start();
    else show();
  });
  offerProvider();
  takeTokenFromFragment();
  if (location.hash === "#/connexion-refusee") {
    // Back from the identity provider, which did not sign anyone in.
    history.replaceState(null, "", location.pathname + location.search);
    showSignIn("signin.providerRefused");
  } else if (token()) start();
  else resumeSession().then(
    (open) => (open ? start() : showSignIn(null)),
    () => showSignIn("signin.unreachable"),
  );
}

init();
