// Settings › daemon.json: the engine's configuration as JSON, checked as you type by the app
// (berth_host::daemon_json, the same check as `berth start`), saved only when valid, and
// applied after a confirmation by restarting the engine in Berth's VM (not the VM).

import { call } from "../api.js";
import { $, h, debounce, notice, showError } from "../dom.js";
import { confirmAction } from "../dialog.js";

let saved = null; // the last view from the app
let edited = false; // the text differs from the saved file by the user's hand

function showCheck(c) {
  const status = $("daemon-json-status");
  status.dataset.state = c.valid ? "valid" : "invalid";
  const area = $("daemon-json-text");
  area.setAttribute("aria-invalid", String(!c.valid));
  if (c.valid) {
    delete status.dataset.line;
    delete status.dataset.column;
    status.textContent = c.warnings.length ? "Valid, with warnings:" : "Valid.";
  } else {
    const at = c.error.at;
    if (at) {
      status.dataset.line = at.line;
      status.dataset.column = at.column;
    }
    status.textContent = at
      ? `Line ${at.line}, column ${at.column}: ${c.error.message}`
      : c.error.message;
  }
  $("daemon-json-warnings").replaceChildren(...c.warnings.map((w) =>
    h("li", { testid: "daemon-json-warning", dataset: { key: w.key } },
      w.at ? `Line ${w.at.line}: ${w.message}` : w.message)));
  $("daemon-json-save").disabled = !c.valid;
}

function show(v, { force = false } = {}) {
  saved = v;
  $("daemon-json-path").textContent = v.path;
  $("daemon-json-apply-note").textContent = v.apply.message;
  $("daemon-json-apply-note").dataset.how = v.apply.how;
  if (force || !edited) {
    $("daemon-json-text").value = v.text;
    edited = false;
    showCheck(v.check);
  }
}

export async function load() {
  show(await call("daemon_json_get"));
}

const check = debounce(async () => {
  try {
    showCheck(await call("daemon_json_check", { text: $("daemon-json-text").value }));
  } catch (e) {
    showError(e);
  }
}, 150);

async function save(button) {
  const text = $("daemon-json-text").value;
  const engine = saved?.apply.how === "engine";
  const answer = await confirmAction({
    title: engine ? "Save daemon.json and restart the engine?" : "Save daemon.json?",
    message: engine
      ? saved.apply.message
      : `${saved?.apply.message || ""} Saving writes ${saved?.path || "daemon.json"}.`,
    confirm: engine ? "Save and restart the engine" : "Save",
    alternative: engine ? "Save only (applies at the next start)" : null,
  });
  if (!answer) return;
  button.disabled = true;
  try {
    show(await call("daemon_json_save", { text }), { force: true });
    const done = $("daemon-json-status");
    if (engine && answer === "confirm") {
      done.textContent = "Saved; restarting the engine…";
      const r = await call("engine_restart");
      notice(r.message);
      done.textContent = `Saved and applied. ${r.message}`;
    } else {
      notice("daemon.json saved");
    }
    done.dataset.saved = "true";
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = !saved || $("daemon-json-status").dataset.state !== "valid";
  }
}

export function init() {
  const area = $("daemon-json-text");
  area.addEventListener("input", () => {
    edited = true;
    delete $("daemon-json-status").dataset.saved;
    $("daemon-json-status").dataset.state = "checking";
    check();
  });
  $("daemon-json-save").addEventListener("click", (ev) => save(ev.currentTarget).catch(showError));
  $("daemon-json-revert").addEventListener("click", () => {
    if (saved) show(saved, { force: true });
  });
}
