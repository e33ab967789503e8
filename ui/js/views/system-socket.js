// Settings › System socket: whether /var/run/docker.sock links to Berth, and making or
// removing that link (never replacing what is not Berth's; the command to run when the app
// may not write there).

import { call } from "../api.js";
import { $, notice, showError } from "../dom.js";

const STATES = {
  free: "free (nothing there)",
  ours: "links to Berth",
  other: "taken by something else (left alone)",
  unsupported: "not available here",
};

function show(v) {
  $("syssock-path").textContent = v.path;
  const st = $("syssock-state");
  st.dataset.state = v.state;
  st.textContent = STATES[v.state] || v.state;
  $("syssock-what").textContent = v.what || "";
  $("syssock-target").textContent = v.target;
  $("syssock-command").textContent = v.command || "";
  $("syssock-command-line").hidden = !v.command;
  $("syssock-link").disabled = v.state !== "free";
  $("syssock-unlink").disabled = v.state !== "ours";
}

export async function load() {
  show(await call("system_socket_status"));
}

export function init() {
  const wire = (testid, cmd, done) => {
    const b = $(testid);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        show(await call(cmd));
        notice(done);
      } catch (e) {
        showError(e);
        await load().catch(showError);
      }
    });
  };
  wire("syssock-link", "system_socket_link", "Linked the system socket to Berth");
  wire("syssock-unlink", "system_socket_unlink", "Removed Berth's system socket link");
}
