// Settings: the engine socket (app settings) and the VM's resources (Berth's config.json),
// plus VM start/stop through the `berth` CLI, the engine's daemon.json, the docker CLI's
// context and the system socket link (each in its own module).

import { call } from "../api.js";
import { $, notice, onSubmit, showError } from "../dom.js";
import { SOURCES } from "../engine-state.js";
import * as daemonJson from "./daemon-json.js";
import * as contexts from "./contexts.js";
import * as systemSocket from "./system-socket.js";

let engine = null; // the last engine status
let vm = null; // the last VM status

// Set once the user edits the form: a reload (navigation, engine reconnect) then leaves the
// inputs alone until the form is saved.
let dirty = false;

function fill(s, { force = false } = {}) {
  $("settings-socket").textContent = s.socket.path;
  $("settings-socket-source").textContent = SOURCES[s.socket.source] || s.socket.source;
  if (force || !dirty) {
    $("settings-docker-host").value = s.dockerHost;
    $("settings-cpus").value = s.vm.cpus;
    $("settings-memory").value = s.vm.memoryMib;
    $("settings-disk").value = s.vm.diskGib;
    $("settings-login").checked = s.startAtLogin;
    $("settings-debug-image").value = s.debugImage === "busybox:latest" ? "" : s.debugImage;
    dirty = false;
  }
  $("settings-vm-file").textContent = s.vmConfigFile;
  $("settings-login-item").textContent = s.loginItem;
  $("settings-file").textContent = `App settings: ${s.settingsFile}`;
}

function showVm(v) {
  vm = v;
  $("vm-state").textContent = v.state;
  $("vm-message").textContent = v.message || "";
  $("vm-start").disabled = !["stopped", "failed"].includes(v.state);
  $("vm-stop").disabled = ["stopped", "failed"].includes(v.state);
  explain();
}

/** The engine's state as the status bar has it (called on every change). */
export function showEngine(s) {
  engine = s;
  const el = $("settings-engine-state");
  el.dataset.state = s.state;
  el.textContent = s.state === "ready" ? `running${s.version ? ` (${s.version})` : ""}` : "not answering";
  explain();
}

/** Says how the VM and the engine relate, so "VM stopped" never sits unexplained beside a running engine. */
function explain() {
  const note = $("vm-note");
  if (!engine || !vm) return;
  const ready = engine.state === "ready";
  const where = `${engine.socket.path} (${SOURCES[engine.socket.source] || engine.socket.source})`;
  let text = "";
  if (engine.socket.source !== "berth_vm") {
    text = `Not in use: the app talks to the engine at ${where}, not to Berth's VM.`;
  } else if (ready && vm.state !== "running") {
    text = `An engine answers at ${where}, but this Berth home has no VM ${vm.state === "stopped" ? "running" : vm.state}.`;
  } else if (!ready && vm.state === "running") {
    text = "The VM runs but its engine does not answer yet.";
  }
  note.textContent = text;
  note.hidden = !text;
}

export async function load() {
  fill(await call("settings_get"));
  showVm(await call("vm_status"));
  await Promise.all([daemonJson.load(), contexts.load(), systemSocket.load()]);
}

export function init() {
  daemonJson.init();
  contexts.init();
  systemSocket.init();
  for (const ev of ["input", "change"]) $("settings-form").addEventListener(ev, () => { dirty = true; });
  onSubmit($("settings-form"), async () => {
    const update = {
      dockerHost: $("settings-docker-host").value,
      vm: {
        cpus: Number($("settings-cpus").value),
        memoryMib: Number($("settings-memory").value),
        diskGib: Number($("settings-disk").value),
      },
      startAtLogin: $("settings-login").checked,
      debugImage: $("settings-debug-image").value,
    };
    fill(await call("settings_save", { update }), { force: true });
    notice("Settings saved");
  });
  const wire = (testid, cmd, busy) => {
    $(testid).addEventListener("click", async () => {
      for (const b of ["vm-start", "vm-stop"]) $(b).disabled = true;
      $("vm-state").textContent = busy;
      try { showVm(await call(cmd)); } catch (e) { showError(e); showVm(await call("vm_status")); }
    });
  };
  wire("vm-start", "vm_start", "starting…");
  wire("vm-stop", "vm_stop", "stopping…");
}
