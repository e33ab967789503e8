// What the UI is doing to containers right now ("stopping…"), shared by every view that shows
// containers: a row is marked the moment its action is clicked (the engine's events only say
// when it is done), and a stop started in one view shows in the others too.

const marks = new Map(); // container id -> label
const listeners = new Set();

const LABELS = {
  starting: "starting…", stopping: "stopping…", restarting: "restarting…", removing: "removing…",
  pausing: "pausing…", unpausing: "unpausing…",
};

/** What runs on container `id` now ("" when nothing). */
export const pendingOf = (id) => marks.get(id) || "";

/** Calls `fn` whenever a mark is set or cleared (views re-render their rows). */
export function onPending(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn();
}

/** Marks the containers of `list` (`{id}`s) as `verb` (starting, stopping, restarting, removing). */
export function mark(list, verb) {
  for (const c of list) marks.set(c.id, LABELS[verb]);
  changed();
}

export function unmark(list) {
  for (const c of list) marks.delete(c.id);
  changed();
}

/** Runs `action` with `list`'s containers marked as `verb` meanwhile. */
export async function runMarked(list, verb, action) {
  mark(list, verb);
  try {
    return await action();
  } finally {
    unmark(list);
  }
}
