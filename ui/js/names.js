// Containers by name in error messages: the engine names a container by its 64-character id in
// some errors ("container 3f…e1 is not running", as dockerd does); the UI shows its name.
// Names come from container events (each carries the name) and, for an id not seen yet, one
// container listing.

import { call } from "./api.js";

const names = new Map(); // full id -> name
const ID = /\b[0-9a-f]{64}\b/g;

/** Records the name of the container an event is about. */
export function watchNames(ev) {
  if (ev.type === "container" && ev.id && ev.name) names.set(ev.id, ev.name);
}

/** `text` with every container id replaced by the container's name (ids of unknown ones stay). */
export async function withNames(text) {
  const ids = text.match(ID) || [];
  if (ids.some((id) => !names.has(id))) {
    try {
      for (const c of await call("containers_list")) names.set(c.id, c.name);
    } catch { /* the engine is gone: keep the ids */ }
  }
  return text.replace(ID, (id) => names.get(id) || id);
}

/** Whether `text` names something by a full id. */
export const hasIds = (text) => /\b[0-9a-f]{64}\b/.test(text);
