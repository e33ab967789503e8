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

function fill(s) {
  $("settings-docker-host").value = s.dockerHost;
  $("settings-socket").textContent = s.socket.path;
  $("settings-socket-source").textContent = SOURCES[s.socket.source] || s.socket.source;
  $("settings-cpus").value = s.vm.cpus;
  $("settings-memory").value = s.vm.memoryMib;
  $("settings-disk").value = s.vm.diskGib;
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
  onSubmit($("settings-form"), async () => {
    const update = {
      dockerHost: $("settings-docker-host").value,
      vm: {
        cpus: Number($("settings-cpus").value),
        memoryMib: Number($("settings-memory").value),
        diskGib: Number($("settings-disk").value),
      },
    };
    fill(await call("settings_save", { update }));
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
