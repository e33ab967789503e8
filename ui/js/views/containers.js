// Containers: the list (state, image, ports, actions) and a detail panel with logs (follow),
// an interactive exec terminal (TTY, xterm.js) and live stats. Each open stream is stopped when
// its tab closes or another container is opened.

import { call, stream } from "../api.js";
import { $, h, actionButton, appendConsole, bytes, renderRows, showError, clearError } from "../dom.js";

let current = null; // { id, name, tab, handle, term }

// xterm.js, when scripts/install-gui-deps.sh has put it in ui/vendor/: a real terminal (full-screen
// programs, colours, keys). Without it the exec tab is a line console.
let xterm;
async function loadXterm() {
  if (xterm === undefined) {
    try {
      const [{ Terminal }, { FitAddon }] = await Promise.all([
        import("../../vendor/xterm.esm.js"),
        import("../../vendor/addon-fit.esm.js"),
      ]);
      xterm = { Terminal, FitAddon };
    } catch {
      xterm = null;
    }
  }
  return xterm;
}

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
  current?.term?.dispose();
  if (current) {
    current.handle = null;
    current.term = null;
  }
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
      const box = $("exec-terminal");
      const x = await loadXterm();
      box.hidden = !x;
      out.hidden = !!x;
      $("exec-form").hidden = !!x;
      out.textContent = "";
      let fit = null;
      if (x) {
        box.replaceChildren();
        me.term = new x.Terminal({
          cursorBlink: true,
          fontSize: 13,
          scrollback: 5000,
          theme: { background: "#0f172a" },
        });
        fit = new x.FitAddon();
        me.term.loadAddon(fit);
        me.term.open(box);
        fit.fit();
        me.term.onData((d) => sendInput(d).catch(showError));
      }
      const term = me.term;
      const write = (text) => (term ? term.write(text) : appendConsole(out, text));
      // Input typed while the session starts waits for it (sendInput awaits `ready`).
      me.ready = stream("containers_exec", { id: me.id, cmd: ["/bin/sh"] }, (m) => {
        if (m.kind === "output") write(m.text);
        else if (m.kind === "end") {
          write(term ? "\r\n[session ended]\r\n" : "\n[session ended]\n");
          if (m.error) showError(m.error);
        }
      });
      if (term) term.focus();
      else $("exec-input").focus();
      me.handle = await me.ready;
      const resize = (cols, rows) => {
        box.dataset.size = `${rows}x${cols}`;
        call("containers_exec_resize", { stream: me.handle.id, cols, rows }).catch(() => {});
      };
      if (term) {
        resize(term.cols, term.rows);
        term.onResize(({ cols, rows }) => resize(cols, rows));
        me.fit = fit;
      } else {
        // Size the TTY to the console (monospace 12px: about 7.2 x 16 px a cell).
        resize(Math.max(20, Math.floor(out.clientWidth / 7.2)), Math.max(5, Math.floor(out.clientHeight / 16)));
      }
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
  window.addEventListener("resize", () => current?.fit?.fit());
}
