// Builds: build an image from a folder (context, Dockerfile, tags, build args, target, no-cache,
// pull) with its output streamed into a log pane and the step reached shown; Cancel drops the
// build's connection, which stops it in the engine. Below, the history of builds made here,
// each with its saved log and "Build again".

import { call } from "../api.js";
import { $, h, actionButton, renderRows, showError, clearError } from "../dom.js";
import { LogView } from "../logview.js";

const tauri = window.__TAURI__;
const STEP = /^Step (\d+)\/(\d+) : /m;
const FIELDS = {
  context: "build-context",
  dockerfile: "build-dockerfile",
  tags: "build-tags",
  buildArgs: "build-args",
  target: "build-target",
};

let log = null;
let running = null; // { stream, cancelled }

function setStatus(state, text) {
  const s = $("build-status");
  s.dataset.state = state;
  s.textContent = text;
}

function formRequest() {
  const r = Object.fromEntries(Object.entries(FIELDS).map(([k, id]) => [k, $(id).value]));
  r.noCache = $("build-no-cache").checked;
  r.pull = $("build-pull").checked;
  return r;
}

function fillForm(r) {
  for (const [k, id] of Object.entries(FIELDS)) $(id).value = r[k] || "";
  $("build-no-cache").checked = !!r.noCache;
  $("build-pull").checked = !!r.pull;
}

function showStep(text) {
  const m = STEP.exec(text);
  if (!m) return;
  const bar = $("build-steps");
  bar.max = Number(m[2]);
  bar.value = Number(m[1]);
  bar.hidden = false;
  bar.dataset.step = m[1];
  bar.dataset.total = m[2];
  $("build-step-text").textContent = `Step ${m[1]} of ${m[2]}`;
}

function setRunning(on) {
  $("build-submit").disabled = on;
  $("build-cancel").disabled = !on;
}

/** Starts a build of `request`; its lines go to the log pane as they come. */
async function start(request) {
  if (running) throw { code: "conflict", message: "a build is running: cancel it or wait for it to end" };
  clearError();
  log.reset();
  $("build-log").dataset.source = "live";
  $("build-steps").hidden = true;
  $("build-step-text").textContent = "";
  setStatus("building", "Building…");
  const channel = new tauri.core.Channel();
  const me = { stream: null, cancelled: false };
  channel.onmessage = (m) => {
    if (m.kind === "output") {
      showStep(m.text);
      log.add("build", "stdout", m.text);
    } else if (m.kind === "end") {
      log.flush("build");
      running = null;
      setRunning(false);
      if (me.cancelled) setStatus("cancelled", "Build cancelled");
      else if (m.error) {
        log.add("build", "stderr", `${m.error.message}\n`);
        setStatus("failed", `Build failed: ${m.error.message}`);
        showError(m.error);
      } else setStatus("succeeded", "Build finished");
      load().catch(showError);
    }
  };
  running = me;
  setRunning(true);
  try {
    const started = await call("images_build", { request, channel });
    me.stream = started.stream;
    $("build-log").dataset.build = started.build;
  } catch (e) {
    running = null;
    setRunning(false);
    setStatus("failed", `Build failed: ${e.message}`);
    throw e;
  }
}

/** Drops the build's connection; the stream then ends as cancelled (after it is recorded). */
async function cancel() {
  if (!running || running.stream === null) return;
  running.cancelled = true;
  setStatus("cancelling", "Cancelling…");
  await call("system_stream_stop", { id: running.stream });
}

function seconds(ms) {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const OUTCOME = { succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled" };

function row(b) {
  const r = b.request;
  const when = new Date(b.started).toLocaleString();
  const what = r.tags || (b.imageId ? b.imageId.slice(7, 19) : "(untagged)");
  return h("tr", { testid: "build-row", dataset: { id: b.id, outcome: b.outcome, image: b.imageId || "" } },
    h("td", {}, when),
    h("td", { class: "mono", title: r.dockerfile ? `Dockerfile: ${r.dockerfile}` : "" }, r.context),
    h("td", { class: "mono", testid: "build-row-tags" }, what),
    h("td", { testid: "build-row-outcome", title: b.error || "" }, OUTCOME[b.outcome] || b.outcome),
    h("td", {}, seconds(b.durationMs)),
    h("td", { class: "actions" },
      actionButton("Log", "build-log-open", () => openLog(b), null, `Saved log of the build of ${what}`),
      actionButton("Build again", "build-again", () => { fillForm(r); return start(r); }, null, `Build ${what} again`),
    ),
  );
}

async function openLog(b) {
  const text = await call("builds_log", { id: b.id });
  log.reset();
  const pane = $("build-log");
  pane.dataset.source = "history";
  pane.dataset.build = b.id;
  log.add("build", "stdout", text.endsWith("\n") || !text ? text : `${text}\n`);
  if (b.error) log.add("build", "stderr", `${b.error}\n`);
  pane.focus();
}

export async function load() {
  const all = await call("builds_list");
  renderRows($("build-history"), all, (b) => b.id, row);
  $("build-history-empty").hidden = all.length > 0;
}

export function init() {
  log = new LogView($("build-log"), { max: 20000 });
  $("build-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    start(formRequest()).catch(showError);
  });
  $("build-cancel").addEventListener("click", () => cancel().catch(showError));
}
