// A container's state as every list shows it: its word in its own colour (`state-<state>` in
// style.css; paused has its own), a paused one with a pause sign (hidden from screen readers,
// which read "paused"), what the app runs on it now ("stopping…") while that runs, and Docker's
// status line ("Up 5 minutes (Paused)") as a tooltip that ages by itself (../time.js).

import { h } from "./dom.js";
import { liveStatus } from "./time.js";

/** The state cell of container row `c` (`{state, status, pending}`). */
export function stateCell(c, testid) {
  let shown = c.state;
  if (c.pending) shown = h("span", { class: "pending" }, c.pending);
  else if (c.state === "paused") shown = [h("span", { "aria-hidden": "true" }, "⏸ "), "paused"];
  return h("td", { testid, class: `state-${c.state}`, ...liveStatus(c.status) }, shown);
}

/** Up: running or paused (its processes and ports are still there, frozen). */
export const isUp = (c) => c.state === "running" || c.state === "paused";
