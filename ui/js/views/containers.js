// Containers: the list (state, image, ports, actions) with search, a filter (all, running,
// stopped, one compose project), multi-select with bulk actions that run concurrently and show
// their progress, and confirmation before anything is removed. The detail panel (logs,
// terminal, stats) is ./container-detail.js.

import { call } from "../api.js";
import { $, h, actionButton, renderRows, showError, clearError } from "../dom.js";
import { confirmAction } from "../dialog.js";
import { mark, onPending, pendingOf, runMarked, unmark } from "../pending.js";
import { isUp, stateCell } from "../state.js";
import { closeDetail, follow, initDetail, openDetail } from "./container-detail.js";

export { closeDetail };

let rows = []; // the last list from the engine
const selected = new Set(); // ids

export async function load() {
  rows = await call("containers_list");
  const ids = new Set(rows.map((r) => r.id));
  for (const id of selected) if (!ids.has(id)) selected.delete(id);
  render();
  follow(rows);
}

/** Rows that pass the search box and the filter. */
function shown() {
  const q = $("container-search").value.trim().toLowerCase();
  const f = $("container-filter").value;
  return rows.filter((c) => {
    if (f === "running" && !isUp(c)) return false;
    if (f === "stopped" && isUp(c)) return false;
    if (f.startsWith("project:") && c.project !== f.slice(8)) return false;
    if (!q) return true;
    return [c.name, c.image, c.project, c.service, c.id.slice(0, 12)].some((s) => s && s.toLowerCase().includes(q));
  });
}

/** Renders the list from `rows` (no engine call): filter, project headers, pending actions. */
function render() {
  renderFilter();
  const visible = shown();
  // Compose projects come first (sorted by the app): a header row each.
  const items = [];
  for (const c of visible) {
    if (c.project && !items.some((i) => i.kind === "project" && i.project === c.project)) {
      const members = rows.filter((r) => r.project === c.project);
      const running = members.filter((m) => m.state === "running").length;
      const paused = members.filter((m) => m.state === "paused").length;
      items.push({ kind: "project", project: c.project, running, paused, total: members.length });
    }
    items.push({ ...c, pending: pendingOf(c.id) });
  }
  renderRows($("container-list"), items,
    (i) => (i.kind === "project" ? `project:${i.project}` : i.id),
    (i) => (i.kind === "project" ? projectRow(i) : row(i)));
  $("container-empty").hidden = rows.length > 0;
  $("container-none-shown").hidden = rows.length === 0 || visible.length > 0;
  renderSelection(visible);
}

/** The filter's options: the fixed ones and one per compose project. */
function renderFilter() {
  const sel = $("container-filter");
  const projects = [...new Set(rows.map((r) => r.project).filter(Boolean))];
  const want = ["all", "running", "stopped", ...projects.map((p) => `project:${p}`)];
  const have = [...sel.options].map((o) => o.value);
  if (want.join("\n") === have.join("\n")) return;
  const value = sel.value;
  sel.replaceChildren(
    h("option", { value: "all" }, "All"),
    h("option", { value: "running" }, "Running"),
    h("option", { value: "stopped" }, "Stopped"),
    ...projects.map((p) => h("option", { value: `project:${p}` }, `Project: ${p}`)),
  );
  sel.value = want.includes(value) ? value : "all";
}

function renderSelection(visible) {
  const n = selected.size;
  $("bulk-bar").hidden = n === 0 && !$("bulk-progress").textContent;
  $("bulk-count").textContent = n === 1 ? "1 selected" : `${n} selected`;
  for (const b of $("bulk-bar").querySelectorAll("button[data-bulk]")) b.disabled = n === 0;
  const all = $("container-select-all");
  const picked = visible.filter((c) => selected.has(c.id)).length;
  all.checked = visible.length > 0 && picked === visible.length;
  all.indeterminate = picked > 0 && picked < visible.length;
}

function projectRow(p) {
  const members = () => rows.filter((r) => r.project === p.project);
  const act = (label, testid, command, verb, cls) =>
    actionButton(label, testid, () => runMarked(members(), verb, () => call(command, { project: p.project })), cls);
  return h("tr", { testid: "project-row", class: "project", dataset: { project: p.project } },
    h("td", {}),
    h("td", { colspan: "4" },
      h("strong", {}, p.project),
      h("span", { class: "muted", testid: "project-summary" }, ` · compose project · ${p.running}/${p.total} running` + (p.paused ? `, ${p.paused} paused` : ""))),
    h("td", { class: "actions" },
      act("Start all", "project-start", "compose_start", "starting"),
      act("Stop all", "project-stop", "compose_stop", "stopping"),
      actionButton("Remove all", "project-remove", async () => {
        const list = members();
        const running = list.filter((c) => c.state === "running").length;
        const answer = await confirmAction({
          title: `Remove project ${p.project}?`,
          message: `Its ${list.length} container${list.length === 1 ? "" : "s"} will be removed`
            + (running ? ` (${running} running: stopped first)` : "") + ". Volumes and networks stay.",
          items: list.map((c) => c.name),
          confirm: "Remove all",
        });
        if (answer === "confirm") await runMarked(list, "removing", () => call("compose_remove", { project: p.project }));
      }, "danger"),
    ),
  );
}

function row(c) {
  const running = c.state === "running";
  const paused = c.state === "paused";
  const check = h("input", {
    type: "checkbox", testid: "container-select", "aria-label": `Select ${c.name}`,
  });
  check.checked = selected.has(c.id);
  check.addEventListener("change", () => {
    if (check.checked) selected.add(c.id); else selected.delete(c.id);
    renderSelection(shown());
  });
  const one = (verb, command) => () => runMarked([c], verb, () => call(command, { id: c.id }));
  return h("tr", { testid: "container-row", dataset: { name: c.name, id: c.id, state: c.state, ...(c.pending ? { pending: c.pending } : {}) } },
    h("td", { class: "pick" }, check),
    h("td", {},
      h("strong", { testid: "container-name" }, c.name),
      h("div", { class: "muted mono" }, c.id.slice(0, 12)),
      c.project ? h("div", { class: "muted", testid: "container-project", title: "compose project · service" },
        `${c.project} · ${c.service}`) : null),
    h("td", { testid: "container-image" }, c.image),
    stateCell(c, "container-state"),
    h("td", { testid: "container-ports", class: "mono" }, c.ports.join(", ")),
    h("td", { class: "actions" },
      isUp(c)
        ? actionButton("Stop", "container-stop", one("stopping", "containers_stop"))
        : actionButton("Start", "container-start", one("starting", "containers_start")),
      running ? actionButton("Pause", "container-pause", one("pausing", "containers_pause"), undefined, `Pause ${c.name}`) : null,
      paused ? actionButton("Unpause", "container-unpause", one("unpausing", "containers_unpause"), undefined, `Unpause ${c.name}`) : null,
      actionButton("Restart", "container-restart", one("restarting", "containers_restart")),
      actionButton("Details", "container-details", () => openDetail(c, "overview")),
      actionButton("Logs", "container-logs", () => openDetail(c, "logs")),
      terminalButton(c),
      actionButton("Stats", "container-stats", () => openDetail(c, "stats")),
      actionButton("Remove", "container-remove", async () => {
        clearError();
        const running = isUp(c);
        const answer = await confirmAction(running
          ? {
            title: `${c.name} is running`,
            message: "Stop it (as docker stop), then remove it? Or force-remove it now: killed and removed, as docker rm -f. Its writable layer is deleted either way.",
            confirm: "Force remove",
            alternative: "Stop and remove",
          }
          : { title: `Remove ${c.name}?`, message: "The container and its writable layer are deleted.", confirm: "Remove" });
        if (answer === "alternative") await runMarked([c], "stopping", () => removeOne(c, true));
        else if (answer) await runMarked([c], "removing", () => call("containers_remove", { id: c.id, force: running }));
      }, "danger"),
    ),
  );
}

/** Removes a container; `stopFirst` stops it gracefully before (as `docker stop` does). */
async function removeOne(c, stopFirst) {
  if (stopFirst) await call("containers_stop", { id: c.id });
  await call("containers_remove", { id: c.id, force: false });
}

function terminalButton(c) {
  const b = actionButton("Terminal", "container-exec", () => openDetail(c, "exec"));
  if (c.state !== "running") {
    b.disabled = true;
    b.title = "Start the container to open a terminal";
  }
  return b;
}

const BULK = {
  start: { verb: "starting", done: "Started", run: (c) => call("containers_start", { id: c.id }) },
  stop: { verb: "stopping", done: "Stopped", run: (c) => call("containers_stop", { id: c.id }) },
  restart: { verb: "restarting", done: "Restarted", run: (c) => call("containers_restart", { id: c.id }) },
  // Only the running ones are paused and only the paused ones unpaused; the others are left.
  pause: { verb: "pausing", done: "Paused", pick: (c) => c.state === "running", run: (c) => call("containers_pause", { id: c.id }) },
  unpause: { verb: "unpausing", done: "Unpaused", pick: (c) => c.state === "paused", run: (c) => call("containers_unpause", { id: c.id }) },
  remove: { verb: "removing", done: "Removed", run: (c) => removeOne(c, isUp(c)) },
};

/** A bulk action on the selected containers: all at once, progress as each ends. */
async function bulk(kind) {
  const spec = BULK[kind];
  const list = rows.filter((r) => selected.has(r.id) && (!spec.pick || spec.pick(r)));
  if (!list.length) return;
  if (kind === "remove") {
    const running = list.filter(isUp).length;
    const answer = await confirmAction({
      title: `Remove ${list.length} container${list.length === 1 ? "" : "s"}?`,
      message: running ? `${running} running: they are stopped first.` : "They and their writable layers are deleted.",
      items: list.map((c) => c.name),
      confirm: running ? "Stop and remove" : "Remove",
    });
    if (answer !== "confirm") return;
  }
  clearError();
  const progress = $("bulk-progress");
  let done = 0;
  const failed = [];
  const show = () => {
    progress.textContent = `${spec.done} ${done - failed.length} of ${list.length}` + (failed.length ? `, ${failed.length} failed` : "");
    progress.dataset.state = done === list.length ? "done" : "running";
  };
  show();
  for (const b of $("bulk-bar").querySelectorAll("button[data-bulk]")) b.disabled = true;
  mark(list, spec.verb);
  await Promise.all(list.map(async (c) => {
    try {
      await spec.run(c);
    } catch (e) {
      failed.push({ ...e, message: `${c.name}: ${e.message}` });
    } finally {
      done += 1;
      show();
      unmark([c]);
    }
  }));
  if (failed.length) showError(failed[0]);
  if (kind === "remove") for (const c of list) if (!failed.some((f) => f.message.startsWith(`${c.name}:`))) selected.delete(c.id);
  render();
}

export function init() {
  initDetail();
  onPending(render);
  $("container-search").addEventListener("input", render);
  $("container-filter").addEventListener("change", render);
  $("container-select-all").addEventListener("change", (ev) => {
    for (const c of shown()) {
      if (ev.target.checked) selected.add(c.id); else selected.delete(c.id);
    }
    render();
  });
  for (const b of $("bulk-bar").querySelectorAll("button[data-bulk]")) {
    b.addEventListener("click", () => bulk(b.dataset.bulk).catch(showError));
  }
  $("bulk-clear").addEventListener("click", () => {
    selected.clear();
    $("bulk-progress").textContent = "";
    render();
  });
}
