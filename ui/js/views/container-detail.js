// The container detail panel: overview and inspect (./container-overview.js), logs
// (./container-logs.js), files (./container-files.js), a terminal (xterm.js, see ../terminal.js;
// its shell picker is ../shell-picker.js) and live stats. Each open stream is stopped when its
// tab closes or another container is opened.
//
// An open terminal survives a page reload: the container it was on is kept in sessionStorage
// and, once the list shows that container running, its terminal opens again with a new session
// of the same shell (the previous page's session was hung up by `system_stream_stop_all`).

import { $, showError } from "../dom.js";
import { runMarked } from "../pending.js";
import { call } from "../api.js";
import { ExecTerminal, loadXterm } from "../terminal.js";
import { isUp } from "../state.js";
import { initShellPicker, offerShells, session } from "../shell-picker.js";
import { showInspect, showOverview } from "./container-overview.js";
import { initLogs, openLogs } from "./container-logs.js";
import { initFiles, openFiles } from "./container-files.js";
import { openStats } from "./container-stats.js";

let current = null; // { id, name, state, tab, handle, term, shells }

/** sessionStorage key: the container whose terminal was open (reopened after a reload). */
const OPEN_TERMINAL = "berth.terminal.open";
let restoring = sessionStorage.getItem(OPEN_TERMINAL);

/** The container whose detail is open, if any. */
export const openId = () => current?.id;

/** Follows the list: closes the panel when its container is gone, else updates its state. */
export function follow(rows) {
  if (restoring) reopenTerminal(rows);
  if (!current) return;
  const open = rows.find((r) => r.id === current.id);
  if (!open) closeDetail();
  else if (open.state !== current.state) {
    setDetailState(open.state);
    // The overview shows the state (and ports, which change with it): draw it again.
    if (current.tab === "overview") showTab("overview");
  }
}

/** The state beside the title, Pause/Unpause for a running/paused container; a terminal is
 * offered on running containers only (an exec needs a running, unpaused process). */
function setDetailState(state) {
  current.state = state;
  const shown = $("detail-state");
  shown.textContent = state === "paused" ? "⏸ paused" : state;
  shown.className = `state-${state}`;
  const pause = $("detail-pause");
  pause.hidden = !isUp({ state });
  pause.textContent = state === "paused" ? "Unpause" : "Pause";
  pause.setAttribute("aria-label", `${pause.textContent} ${current.name}`);
  const tab = $("detail-tab-exec");
  tab.disabled = state !== "running";
  tab.title = tab.disabled ? "Start the container to open a terminal" : "";
}

/** After a page reload: the terminal that was open opens again (once, if still running). */
function reopenTerminal(rows) {
  const c = rows.find((r) => r.id === restoring);
  restoring = null;
  if (c?.state === "running" && !current) openDetail(c, "exec");
  else sessionStorage.removeItem(OPEN_TERMINAL);
}

function stopStream() {
  if (current?.handle) current.handle.stop();
  current?.term?.close();
  if (current) {
    current.handle = null;
    current.term = null;
  }
}

export function closeDetail() {
  stopStream();
  sessionStorage.removeItem(OPEN_TERMINAL);
  current = null;
  $("container-detail").hidden = true;
}

export async function openDetail(c, tab) {
  stopStream();
  current = { id: c.id, name: c.name, tab, handle: null, term: null, shells: null };
  $("detail-title").textContent = c.name;
  $("container-detail").hidden = false;
  setDetailState(c.state);
  await showTab(tab);
}

async function showTab(tab) {
  if (!current) return;
  stopStream();
  current.tab = tab;
  if (tab === "exec") sessionStorage.setItem(OPEN_TERMINAL, current.id);
  else sessionStorage.removeItem(OPEN_TERMINAL);
  const detail = $("container-detail");
  for (const p of detail.querySelectorAll("[data-pane]")) p.hidden = p.dataset.pane !== tab;
  for (const b of detail.querySelectorAll("[data-tab]")) b.classList.toggle("on", b.dataset.tab === tab);
  const me = current;
  try {
    const isCurrent = () => current === me && me.tab === tab;
    if (tab === "overview") {
      await showOverview(me.id, isCurrent);
    } else if (tab === "inspect") {
      await showInspect(me.id, isCurrent);
    } else if (tab === "logs") {
      me.handle = await openLogs(me.id);
    } else if (tab === "files") {
      await openFiles(me.id);
    } else if (tab === "exec") {
      await openTerminal(me);
    } else if (tab === "stats") {
      me.handle = await openStats(me.id);
    }
  } catch (e) {
    showError(e);
  }
  // Opened another tab meanwhile: drop this stream.
  if (current !== me || me.tab !== tab) me.handle?.stop();
}

async function openTerminal(me) {
  const box = $("exec-terminal");
  const x = await loadXterm();
  $("exec-missing").hidden = !!x;
  box.hidden = !x;
  if (!x || current !== me || me.tab !== "exec") return;
  if (me.state !== "running") {
    box.replaceChildren();
    box.dataset.state = "closed";
    return;
  }
  if (!me.shells) me.shells = await offerShells(me.id);
  if (current !== me || me.tab !== "exec") return;
  me.term = new ExecTerminal(x, box, showError);
  const { command, args } = session(me.id, me.shells);
  await me.term.attach(command, args);
}

/** Starts a new session in the open terminal tab (after a shell change). */
function reconnect() {
  if (!current || current.tab !== "exec") return;
  showTab("exec");
}

export function initDetail() {
  const detail = $("container-detail");
  for (const b of detail.querySelectorAll("[data-tab]")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
  }
  $("detail-close").addEventListener("click", closeDetail);
  $("detail-pause").addEventListener("click", () => {
    if (!current) return;
    const unpause = current.state === "paused";
    const c = { id: current.id };
    runMarked([c], unpause ? "unpausing" : "pausing", () => call(unpause ? "containers_unpause" : "containers_pause", c))
      .catch(showError);
  });
  initLogs(() => current?.id, () => current?.tab === "logs" && showTab("logs"));
  initFiles();
  initShellPicker(reconnect);
}
