// The container detail's Logs tab: the engine's log stream (`docker logs --follow --tail
// --since --timestamps`) in a LogView (../logview.js) with search, regex, only-matching,
// timestamps and download (`docker logs > file`, saved by the app to the Downloads folder).

import { call, stream } from "../api.js";
import { $, notice, showError } from "../dom.js";
import { bindSearch, LogView } from "../logview.js";

let view = null;

function logView() {
  if (!view) {
    view = new LogView($("logs-output"));
    bindSearch(view, "logs");
  }
  return view;
}

/** The options the controls name, as the commands take them. */
function options() {
  const since = Number($("logs-since").value);
  const tail = $("logs-tail").value;
  return {
    since: since ? Math.floor(Date.now() / 1000) - since : null,
    tail: tail === "all" ? null : Number(tail),
  };
}

/** Starts the log stream of container `id` into the pane; returns the stream's handle. */
export async function openLogs(id) {
  const v = logView();
  v.clear();
  const out = $("logs-output");
  out.dataset.state = "loading";
  out.dataset.source = id;
  const follow = $("logs-follow").checked;
  const handle = await stream("containers_logs", { id, ...options(), follow, timestamps: true }, (m) => {
    if (m.kind === "output") v.add(id, m.stream, m.text);
    else if (m.kind === "end") {
      v.flush(id);
      out.dataset.state = "ended";
      if (m.error) showError(m.error);
    }
  });
  out.dataset.state = follow ? "following" : out.dataset.state;
  return handle;
}

/** `restart()` opens the stream again (the tab's current container) after an option change. */
export function initLogs(currentId, restart) {
  logView();
  $("logs-timestamps").addEventListener("change", () => {
    $("logs-output").classList.toggle("show-ts", $("logs-timestamps").checked);
  });
  for (const id of ["logs-follow", "logs-since", "logs-tail"]) $(id).addEventListener("change", restart);
  $("logs-download").addEventListener("click", async () => {
    const id = currentId();
    if (!id) return;
    const b = $("logs-download");
    b.disabled = true;
    try {
      const path = await call("containers_logs_save", { id, ...options(), timestamps: $("logs-timestamps").checked });
      $("logs-saved").textContent = path;
      notice(`Logs saved to ${path}`);
    } catch (e) {
      showError(e);
    } finally {
      b.disabled = false;
    }
  });
}
