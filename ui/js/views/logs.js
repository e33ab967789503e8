// The Logs view: the logs of many containers in one pane, followed, each line prefixed with
// its container's name in that container's colour. Shown: every running container, one
// compose project's containers (as `docker compose logs -f`) or one container. Each container
// is one `containers_logs` stream (../streams); a container that starts again is followed
// again from where its lines stopped. Search, regex and only-matching lines as in the detail's
// Logs tab (../logview.js); at most MAX lines are kept. Streams run only while the view is
// open.

import { call, stream } from "../api.js";
import { $, debounce, h, showError } from "../dom.js";
import { bindSearch, LogView } from "../logview.js";
import { navigate } from "../nav.js";

/** Lines kept in the pane (oldest dropped). */
const MAX = 5000;
/** Lines of history each container starts with. */
const TAIL = 200;
/** Source colours, readable on the dark pane; given in order of appearance. */
const COLOURS = ["#7cc7ff", "#ffd166", "#9be58a", "#f4a6ff", "#ff9f6e", "#6ee7d8", "#c3b5ff", "#f7e07a"];

let view = null;
let rows = []; // containers_list
let open = false; // the view is shown
let filter = "all";
const sources = new Map(); // container id -> { name, colour, handle, ended, failed }
// A stream ends when its container stops; if it runs again by then (a quick restart whose
// start event came first), it is followed again.
const recheck = debounce(() => load().catch(showError));

/** The containers the filter asks for. */
function wanted() {
  if (filter.startsWith("project:")) return rows.filter((c) => c.project === filter.slice(8));
  if (filter.startsWith("container:")) return rows.filter((c) => c.name === filter.slice(10));
  return rows.filter((c) => c.state === "running");
}

/** Shows the logs of `what` (`all`, `project:<name>` or `container:<name>`) in this view. */
export function showLogsOf(what) {
  filter = what;
  navigate("logs");
}

export async function load() {
  if (!open) return; // nothing runs for a hidden view
  rows = await call("containers_list");
  renderFilter();
  await follow();
}

export function enter() {
  open = true;
  renderFilter(); // says what is shown at once; the streams open with the list
}

/** Leaving the view stops every stream (its lines stay until it opens again). */
export function leave() {
  open = false;
  stopAll();
}

function stopAll() {
  for (const s of sources.values()) s.handle?.stop();
  sources.clear();
  view.reset();
  renderSources();
}

/** Opens a stream for each wanted container that has none, or whose stream ended and that
 * runs again. */
async function follow() {
  const list = wanted();
  $("unified-empty").hidden = list.length > 0 || sources.size > 0;
  await Promise.all(list.map((c) => {
    const s = sources.get(c.id);
    if (s && !(s.ended && !s.failed && c.state === "running")) return null;
    return openSource(c, s);
  }));
}

async function openSource(c, again) {
  const s = again || { name: c.name, colour: COLOURS[sources.size % COLOURS.length], handle: null, ended: false };
  sources.set(c.id, s);
  s.ended = false;
  view.setSource(c.id, c.name, s.colour);
  renderSources();
  // Again: from the second of the last line shown (the view drops what it already has).
  const last = view.lastStamp(c.id);
  const since = again && last ? Math.floor(Date.parse(last.replace(/\.\d+/, "")) / 1000) : null;
  if (since) view.skipShown(c.id);
  const handle = await stream("containers_logs",
    { id: c.id, tail: since ? null : TAIL, since, follow: true, timestamps: true }, (m) => {
      if (sources.get(c.id) !== s) return; // dropped (view left, filter changed) before its id came
      if (m.kind === "output") view.add(c.id, m.stream, m.text);
      else if (m.kind === "end") {
        view.flush(c.id);
        s.ended = true;
        s.failed = !!m.error;
        renderSources();
        if (m.error && m.error.code !== "not_found") showError(m.error);
        else if (open && sources.get(c.id) === s) recheck();
      }
    });
  // The view closed or the filter changed meanwhile.
  if (sources.get(c.id) !== s) handle.stop();
  else s.handle = handle;
}

/** The legend: each source's name in its colour, and whether it is still followed. */
function renderSources() {
  $("unified-sources").replaceChildren(...[...sources.values()].map((s) =>
    h("li", {
      testid: "unified-source", dataset: { source: s.name, state: s.ended ? "ended" : "following" },
      style: `--source: ${s.colour}`, title: s.ended ? "stopped: followed again when it starts" : "following",
    }, s.name)));
}

/** The filter's options: all running containers, each project, each container. */
function renderFilter() {
  const sel = $("unified-filter");
  const projects = [...new Set(rows.map((r) => r.project).filter(Boolean))];
  const want = ["all", ...projects.map((p) => `project:${p}`), ...rows.map((c) => `container:${c.name}`)];
  if (!want.includes(filter)) want.push(filter); // a container not listed yet keeps its choice
  const have = [...sel.options].map((o) => o.value);
  if (want.join("\n") !== have.join("\n")) {
    sel.replaceChildren(...want.map((v) => h("option", { value: v }, optionLabel(v))));
  }
  sel.value = filter;
}

function optionLabel(v) {
  if (v === "all") return "All running containers";
  if (v.startsWith("project:")) return `Project: ${v.slice(8)}`;
  return `Container: ${v.slice(10)}`;
}

export function init() {
  view = new LogView($("unified-output"), { max: MAX });
  bindSearch(view, "unified");
  $("unified-filter").addEventListener("change", () => {
    filter = $("unified-filter").value;
    stopAll();
    follow().catch(showError);
  });
  $("unified-timestamps").addEventListener("change", () => {
    $("unified-output").classList.toggle("show-ts", $("unified-timestamps").checked);
  });
  $("unified-clear").addEventListener("click", () => view.clear());
}
