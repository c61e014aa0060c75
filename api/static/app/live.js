// The live feed (GET /api/v1/live, Server-Sent Events) read with fetch() so a token goes
// in the Authorization header (a session's cookie goes by itself): EventSource cannot send
// headers, and would need the token in the URL. A short reader rather than the npm fetch-event-source package, whose ES build
// imports "./parse" without an extension, which a browser cannot load without a build step.

import { authHeaders } from "./api.js";

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;

/**
 * Connects and stays connected. handlers: { event(name, data, id), state(s) } where s is
 * "connecting", "connected", "reconnecting" or "refused". Returns a function that stops.
 */
export function connectLive(handlers, path = "/api/v1/live") {
  let lastId = null;
  let stopped = false;
  let controller = null;
  let retry = RETRY_MIN_MS;
  let timer = null;

  async function run() {
    controller = new AbortController();
    handlers.state(lastId === null ? "connecting" : "reconnecting");
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    try {
      const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
      if (response.status === 401) {
        handlers.state("refused");
        return;
      }
      if (!response.ok || !response.body) throw new Error(`live feed: HTTP ${response.status}`);
      handlers.state("connected");
      retry = RETRY_MIN_MS;
      await read(response.body);
    } catch (error) {
      if (stopped) return;
      console.warn("live feed interrupted", error);
    }
    if (stopped) return;
    handlers.state("reconnecting");
    timer = setTimeout(run, retry);
    retry = Math.min(retry * 2, RETRY_MAX_MS);
  }

  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { name: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (event.id !== null) lastId = event.id;
          if (event.data.length) dispatch(event.name, event.data.join("\n"), event.id ?? lastId);
          event = { name: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue; // a comment: the server's keep-alive ping
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "event") event.name = val;
        else if (field === "data") event.data.push(val);
        else if (field === "id" && !val.includes("\0")) event.id = val;
        else if (field === "retry" && /^\d+$/.test(val)) retry = Number(val);
      }
    }
  }

  function dispatch(name, raw, id) {
    let data;
    try {
      data = JSON.parse(raw);
    } catch {
      return;
    }
    handlers.event(name, data, id);
  }

  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    controller?.abort();
  };
}
