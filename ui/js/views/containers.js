// Containers: the list (state, image, ports, actions) and a detail panel with logs (follow),
// an interactive exec console (TTY) and live stats. Each open stream is stopped when its tab
// closes or another container is opened.

import { call, stream } from "../api.js";
import { $, h, actionButton, appendConsole, bytes, renderRows, showError, clearError } from "../dom.js";

let current = null; // { id, name, tab, handle }

export async function load() {
  const rows = await call("containers_list");
  // Compose projects come first in the list (sorted by the app): a header row each.
  const items = [];
  for (const c of rows) {
    if (c.project && !items.some((i) => i.kind === "project" && i.project === c.project)) {
      const members = rows.filter((r) => r.project === c.project);
      const running = members.filter((m) => m.state === "running").length;
      items.push({ kind: "project", project: c.project, running, total: members.length });
    }
    items.push(c);
  }
  renderRows($("container-list"), items,
    (i) => (i.kind === "project" ? `project:${i.project}` : i.id),
    (i) => (i.kind === "project" ? projectRow(i) : row(i)));
  $("container-empty").hidden = rows.length > 0;
  if (current && !rows.some((r) => r.id === current.id)) closeDetail();
}

function projectRow(p) {
  const act = (label, testid, command, cls) =>
    actionButton(label, testid, () => call(command, { project: p.project }), cls);
  return h("tr", { testid: "project-row", class: "project", dataset: { project: p.project } },
    h("td", { colspan: "4" },
      h("strong", {}, p.project),
      h("span", { class: "muted", testid: "project-summary" }, ` · compose project · ${p.running}/${p.total} running`)),
    h("td", { class: "actions" },
      act("Start all", "project-start", "compose_start"),
      act("Stop all", "project-stop", "compose_stop"),
      act("Remove all", "project-remove", "compose_remove", "danger"),
    ),
  );
}

function row(c) {
  const running = c.state === "running";
  return h("tr", { testid: "container-row", dataset: { name: c.name, id: c.id, state: c.state } },
    h("td", {},
      h("strong", { testid: "container-name" }, c.name),
      h("div", { class: "muted mono" }, c.id.slice(0, 12)),
      c.project ? h("div", { class: "muted", testid: "container-project", title: "compose project · service" },
        `${c.project} · ${c.service}`) : null),
    h("td", { testid: "container-image" }, c.image),
    h("td", { testid: "container-state", class: `state-${c.state}`, title: c.status }, c.state),
    h("td", { testid: "container-ports", class: "mono" }, c.ports.join(", ")),
    h("td", { class: "actions" },
      running
        ? actionButton("Stop", "container-stop", () => call("containers_stop", { id: c.id }))
        : actionButton("Start", "container-start", () => call("containers_start", { id: c.id })),
      actionButton("Restart", "container-restart", () => call("containers_restart", { id: c.id })),
      actionButton("Logs", "container-logs", () => openDetail(c, "logs")),
      actionButton("Terminal", "container-exec", () => openDetail(c, "exec"), undefined),
      actionButton("Stats", "container-stats", () => openDetail(c, "stats")),
      actionButton("Remove", "container-remove", async () => {
        clearError();
        await call("containers_remove", { id: c.id, force: false });
      }, "danger"),
    ),
  );
}

function stopStream() {
  if (current?.handle) current.handle.stop();
  if (current) current.handle = null;
}

export function closeDetail() {
  stopStream();
  current = null;
  $("container-detail").hidden = true;
}

async function openDetail(c, tab) {
  stopStream();
  current = { id: c.id, name: c.name, tab, handle: null };
  $("detail-title").textContent = c.name;
  $("container-detail").hidden = false;
  await showTab(tab);
}

async function showTab(tab) {
  if (!current) return;
  stopStream();
  current.tab = tab;
  current.ready = null;
  const detail = $("container-detail");
  for (const p of detail.querySelectorAll("[data-pane]")) p.hidden = p.dataset.pane !== tab;
  for (const b of detail.querySelectorAll("[data-tab]")) b.classList.toggle("on", b.dataset.tab === tab);
  const me = current;
  try {
    if (tab === "logs") {
      const out = $("logs-output");
      out.textContent = "";
      me.handle = await stream("containers_logs", { id: me.id, tail: 500 }, (m) => {
        if (m.kind === "output") appendConsole(out, m.text);
        else if (m.kind === "end" && m.error) showError(m.error);
      });
    } else if (tab === "exec") {
      const out = $("exec-output");
      out.textContent = "";
      // Input typed while the session starts waits for it (sendInput awaits `ready`).
      me.ready = stream("containers_exec", { id: me.id, cmd: ["/bin/sh"] }, (m) => {
        if (m.kind === "output") appendConsole(out, m.text);
        else if (m.kind === "end") {
          appendConsole(out, "\n[session ended]\n");
          if (m.error) showError(m.error);
        }
      });
      $("exec-input").focus();
      me.handle = await me.ready;
      // Size the TTY to the console (monospace 12px: about 7.2 x 16 px a cell).
      const cols = Math.max(20, Math.floor(out.clientWidth / 7.2));
      const rows = Math.max(5, Math.floor(out.clientHeight / 16));
      call("containers_exec_resize", { stream: me.handle.id, cols, rows }).catch(() => {});
    } else if (tab === "stats") {
      $("stats-cpu").textContent = "–";
      $("stats-mem").textContent = "–";
      me.handle = await stream("containers_stats", { id: me.id }, (m) => {
        if (m.kind === "stats") {
          $("stats-cpu").textContent = `${m.cpuPercent.toFixed(2)} %`;
          $("stats-mem").textContent = `${bytes(m.memUsage)} / ${bytes(m.memLimit)} (${m.memPercent.toFixed(1)} %)`;
        } else if (m.kind === "end" && m.error) showError(m.error);
      });
    }
  } catch (e) {
    showError(e);
  }
  // Opened another tab meanwhile: drop this stream.
  if (current !== me || me.tab !== tab) me.handle?.stop();
}

async function sendInput(text) {
  if (!current || current.tab !== "exec" || !current.ready) return;
  const handle = await current.ready;
  await call("containers_exec_input", { stream: handle.id, data: text });
}

export function init() {
  const detail = $("container-detail");
  for (const b of detail.querySelectorAll("[data-tab]")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
  }
  $("detail-close").addEventListener("click", closeDetail);
  $("exec-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("exec-input");
    const line = input.value;
    input.value = "";
    try { await sendInput(line + "\n"); } catch (e) { showError(e); }
  });
  $("exec-interrupt").addEventListener("click", () => sendInput("\x03").catch(showError));
}
