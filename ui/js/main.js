// Berth's UI: navigation, the engine status indicator, and routing of pushed Docker events to
// the views (each list reloads when an event of its type arrives; no polling).

import { on, EVENTS, call } from "./api.js";
import { $, debounce, showError, clearError } from "./dom.js";
import * as containers from "./views/containers.js";
import * as projects from "./views/projects.js";
import * as logs from "./views/logs.js";
import * as images from "./views/images.js";
import * as builds from "./views/builds.js";
import * as volumes from "./views/volumes.js";
import * as networks from "./views/networks.js";
import * as settings from "./views/settings.js";
import * as disk from "./views/disk.js";
import * as troubleshoot from "./views/troubleshoot.js";
import { applyEngineState, WITHOUT_ENGINE } from "./engine-state.js";
import { watchNames } from "./names.js";
import { watchTimes } from "./time.js";
import { setNavigator } from "./nav.js";

const views = { containers, projects, logs, images, builds, volumes, networks, settings, disk, troubleshoot };
let shown = null;
let engineState = "unknown";
// Lists need the engine: while it is down they are not loaded (the hint says why), so no
// error banner per list; Settings (socket, VM) always loads.
const reload = Object.fromEntries(
  Object.entries(views).map(([name, v]) => [name, debounce(() => {
    if (engineState === "down" && !WITHOUT_ENGINE.has(name)) return;
    v.load().catch(showError);
  })]),
);

// Container events that change nothing a list shows (exec sessions, attach, resize…).
const QUIET = /^(exec_|attach|resize|top|archive-path|extract-to-dir|export)/;

// Which lists an event type touches.
const AFFECTS = {
  container: ["containers", "projects", "logs", "images", "volumes", "disk"],
  image: ["images", "disk"],
  volume: ["volumes", "disk"],
  network: ["networks", "projects"],
};

function show(name) {
  if (shown && shown !== name) views[shown].leave?.();
  shown = name;
  views[name].enter?.();
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === name);
  for (const [n] of Object.entries(views)) document.getElementById(`view-${n}`).hidden = n !== name;
  document.body.dataset.view = name;
  clearError();
  reload[name]();
}

function showStatus(s) {
  engineState = s.state;
  applyEngineState(s, Object.keys(views));
  settings.showEngine(s);
  const el = $("engine-status");
  el.dataset.state = s.state;
  el.textContent = s.state === "ready" ? `Engine ${s.version || ""}`.trim() : "Engine stopped";
  el.title = s.state === "ready" ? `unix://${s.socket.path}` : s.message || "";
  if (s.state === "ready") for (const r of Object.values(reload)) r();
}

async function start() {
  // A reloaded page: end the streams the previous one left.
  await call("system_stream_stop_all");
  for (const v of Object.values(views)) v.init();
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.view));
  setNavigator(show);
  $("error-dismiss").addEventListener("click", clearError);
  await on(EVENTS.status, showStatus);
  watchTimes();
  await on(EVENTS.event, (ev) => {
    watchNames(ev);
    if (ev.type === "container" && QUIET.test(ev.action)) return;
    for (const name of AFFECTS[ev.type] || []) reload[name]();
  });
  showStatus(await call("system_status"));
  show("containers");
  document.body.dataset.ready = "true";
}

start().catch(showError);
