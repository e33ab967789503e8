// The terminal's shell picker: sh, bash (offered only when the container has it), a custom
// command line, attach (the container's own TTY, when it was started with -it) and the debug
// shell (a sidecar of the debug image for containers with no shell). The choice is remembered
// per image (localStorage); without one, sh when the container has it, else the debug shell.

import { call } from "./api.js";
import { $ } from "./dom.js";

const key = (image) => `berth.shell:${image}`;

function remembered(image) {
  try {
    return JSON.parse(localStorage.getItem(key(image)) || "null");
  } catch {
    return null;
  }
}

function remember() {
  const image = $("exec-shell").dataset.image;
  if (!image) return;
  const choice = { shell: $("exec-shell").value, command: $("exec-command").value.trim() };
  localStorage.setItem(key(image), JSON.stringify(choice));
}

function option(value) {
  return $("exec-shell").querySelector(`option[value="${value}"]`);
}

/** Shows or hides an option (a hidden one cannot be chosen either). */
function offer(value, on) {
  const o = option(value);
  o.hidden = !on;
  o.disabled = !on;
}

/** Asks what container `id` offers and sets the picker for it; returns the choices. */
export async function offerShells(id) {
  const s = await call("containers_shells", { id });
  const select = $("exec-shell");
  offer("bash", !!s.bash);
  offer("attach", s.attach);
  option("sh").textContent = s.sh ? "sh" : "sh (not in this container)";
  option("debug").textContent = `debug shell (${s.debugImage})`;
  select.dataset.image = s.image;
  const saved = remembered(s.image);
  const usable = saved && !option(saved.shell)?.disabled;
  const pick = usable ? saved : { shell: s.sh ? "sh" : "debug", command: "" };
  select.value = pick.shell;
  $("exec-command").value = pick.command || "";
  $("exec-command").hidden = pick.shell !== "custom";
  return s;
}

/** The command to run for the picker's choice: `{command, args}` for the terminal's attach. */
export function session(id, shells) {
  const shell = $("exec-shell").value;
  if (shell === "attach") return { command: "containers_attach", args: { id } };
  if (shell === "debug") return { command: "containers_debug_shell", args: { id } };
  return { command: "containers_exec", args: { id, cmd: execCommand(shell, shells) } };
}

function execCommand(shell, shells) {
  if (shell === "bash") return [shells.bash || "/bin/bash"];
  if (shell === "custom") {
    const words = $("exec-command").value.trim().split(/\s+/).filter(Boolean);
    if (words.length) return words;
  }
  return [shells.sh || "/bin/sh"];
}

/** Wires the picker: a change (or Reconnect) remembers the choice and calls `reconnect`. */
export function initShellPicker(reconnect) {
  $("exec-shell").addEventListener("change", () => {
    const custom = $("exec-shell").value === "custom";
    $("exec-command").hidden = !custom;
    if (custom) {
      $("exec-command").focus();
      return;
    }
    remember();
    reconnect();
  });
  $("exec-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    remember();
    reconnect();
  });
}
