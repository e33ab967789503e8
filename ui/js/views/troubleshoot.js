// Troubleshoot: the VM console log and the engine's lines in it, restarting only the engine
// (`berth restart --engine`) or the VM and its engine (`berth restart`), the diagnostics bundle (what `berth doctor` writes) saved to a
// file, and a reset to factory defaults that lists what it deletes before asking.

import { call } from "../api.js";
import { $, notice, showError } from "../dom.js";
import { confirmAction } from "../dialog.js";

export async function load() {
  await showLog();
}

async function showLog() {
  const kind = $("trouble-log-kind").value;
  const v = await call("troubleshoot_log", { kind });
  const pre = $("trouble-log");
  pre.textContent = v.lines.join("\n");
  pre.dataset.kind = kind;
  pre.dataset.state = v.missing ? "missing" : "loaded";
  pre.scrollTop = pre.scrollHeight;
  $("trouble-log-path").textContent = v.path;
  $("trouble-log-missing").textContent = v.missing || "";
  $("trouble-log-missing").hidden = !v.missing;
}

/** Runs `action` with `button` disabled and `what` in the status line. */
async function busy(button, what, action) {
  const status = $("trouble-status");
  button.disabled = true;
  status.textContent = what;
  try {
    await action();
  } catch (e) {
    status.textContent = "";
    showError(e);
  } finally {
    button.disabled = false;
  }
}

/** A restart: asked first (`ask` for the dialog), then `cmd`, whose answer `said` words. */
async function restart(button, ask, doing, cmd, said) {
  if (await confirmAction(ask) !== "confirm") return;
  await busy(button, doing, async () => {
    $("trouble-status").textContent = said(await call(cmd));
  });
}

const restartVm = (button) => restart(button, {
  title: "Restart Berth's VM?",
  message: "Stops every container, shuts the VM and its engine down in order, then boots it again (berth restart). Containers with a restart policy start again.",
  confirm: "Restart",
}, "Restarting the VM…", "vm_restart", (vm) => `VM ${vm.state}`);

const restartEngine = (button) => restart(button, {
  title: "Restart the engine?",
  message: "Restarts only the engine inside Berth's VM (berth restart --engine), not the VM: running containers keep running and are re-attached; the Docker API does not answer for a few seconds. The engine reads daemon.json again.",
  confirm: "Restart the engine",
}, "Restarting the engine…", "engine_restart", (r) => r.message);

async function saveBundle(button) {
  await busy(button, "Collecting diagnostics…", async () => {
    const path = await call("troubleshoot_bundle", { path: $("trouble-bundle-path").value.trim() || null });
    $("trouble-status").textContent = "";
    const saved = $("trouble-bundle-saved");
    saved.textContent = `Saved to ${path}`;
    saved.dataset.path = path;
    notice(`Diagnostics saved to ${path}`);
  });
}

async function reset(button) {
  const plan = await call("troubleshoot_reset_plan");
  if (plan.refusal) throw { code: "conflict", message: plan.refusal };
  if (!plan.items.length) {
    notice("Nothing to reset: Berth is at its factory defaults.");
    return;
  }
  const answer = await confirmAction({
    title: "Reset Berth to factory defaults?",
    message: "These are deleted for good (the VM image and tools are kept; the next start creates a new empty disk):",
    items: plan.items.map((i) => `${i.path} — ${i.what}`),
    confirm: "Delete and reset",
  });
  if (answer !== "confirm") return;
  await busy(button, "Resetting…", async () => {
    const done = await call("troubleshoot_reset");
    $("trouble-status").textContent = `Reset: ${done.length} deleted`;
    await showLog();
  });
}

export function init() {
  $("trouble-log-kind").addEventListener("change", () => showLog().catch(showError));
  $("trouble-log-refresh").addEventListener("click", () => showLog().catch(showError));
  const wire = (testid, action) => {
    const b = $(testid);
    b.addEventListener("click", () => action(b).catch(showError));
  };
  wire("trouble-restart-engine", restartEngine);
  wire("trouble-restart-vm", restartVm);
  wire("trouble-bundle", saveBundle);
  wire("trouble-reset", reset);
}
