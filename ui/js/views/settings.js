// Settings: the engine socket (app settings) and the VM's resources (Berth's config.json),
// plus VM start/stop through the `berth` CLI.

import { call } from "../api.js";
import { $, actionButton, notice, onSubmit } from "../dom.js";

const SOURCES = {
  berth_docker_host: "BERTH_DOCKER_HOST",
  settings: "these settings",
  docker_host: "DOCKER_HOST",
  berth_vm: "Berth VM",
};

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
    dirty = false;
  }
  $("settings-vm-file").textContent = s.vmConfigFile;
  $("settings-file").textContent = `App settings: ${s.settingsFile}`;
}

function showVm(v) {
  $("vm-state").textContent = v.state;
  $("vm-message").textContent = v.message || "";
}

export async function load() {
  fill(await call("settings_get"));
  showVm(await call("vm_status"));
}

export function init() {
  for (const ev of ["input", "change"]) $("settings-form").addEventListener(ev, () => { dirty = true; });
  onSubmit($("settings-form"), async () => {
    const update = {
      dockerHost: $("settings-docker-host").value,
      vm: {
        cpus: Number($("settings-cpus").value),
        memoryMib: Number($("settings-memory").value),
        diskGib: Number($("settings-disk").value),
      },
    };
    fill(await call("settings_save", { update }), { force: true });
    notice("Settings saved");
  });
  const wire = (testid, cmd, busy) => {
    const old = $(testid);
    const b = actionButton(old.textContent, testid, async () => {
      $("vm-state").textContent = busy;
      try { showVm(await call(cmd)); } catch (e) { showVm(await call("vm_status")); throw e; }
    });
    old.replaceWith(b);
  };
  wire("vm-start", "vm_start", "starting…");
  wire("vm-stop", "vm_stop", "stopping…");
}
