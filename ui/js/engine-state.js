// What the app says and allows while the engine is down: which socket it points at and why,
// and which views stay usable (the rest are inert and dimmed until the engine answers).

import { $, h } from "./dom.js";

/** Views that work without an engine. */
export const WITHOUT_ENGINE = new Set(["settings", "disk", "troubleshoot", "builds"]);

export const SOURCES = {
  berth_docker_host: "BERTH_DOCKER_HOST",
  settings: "the socket saved in Settings",
  docker_host: "DOCKER_HOST",
  berth_vm: "Berth's VM",
};

/** The hint's content for a down engine (`s` is the engine status). */
export function downHint(s) {
  const path = h("code", { testid: "engine-down-socket" }, s.socket.path);
  if (s.socket.source === "berth_vm") {
    return [
      "Berth's VM is not running: nothing answers at ", path, ". Start it from Settings or the tray (or run ",
      h("code", {}, "berth start"), "); the lists fill in as soon as it answers.",
    ];
  }
  return [
    "No engine answers at ", path, ` (set by ${SOURCES[s.socket.source] || s.socket.source}). `,
    "Start that engine, or change the socket in Settings; the lists fill in as soon as it answers.",
  ];
}

/** Marks the engine state on the page: hint, and every view that needs the engine inert. */
export function applyEngineState(s, viewNames) {
  const down = s.state === "down";
  document.body.dataset.engine = s.state;
  const hint = $("engine-down-hint");
  hint.hidden = !down;
  if (down) {
    hint.replaceChildren(...downHint(s));
    if (s.message) hint.title = s.message;
  }
  for (const name of viewNames) {
    if (WITHOUT_ENGINE.has(name)) continue;
    const section = document.getElementById(`view-${name}`);
    if (!section) continue;
    section.inert = down;
    section.classList.toggle("offline", down);
    section.setAttribute("aria-disabled", String(down));
  }
}
