// The bridge to the Rust side: commands (`area_verb`), streams over Tauri channels, and the
// events the engine watcher pushes. Errors from commands are `{code, message}`.

const tauri = window.__TAURI__;

/**
 * Calls a command; rejects with `{code, message}`. `args` may be raw bytes (a Uint8Array, sent
 * as the request body) with `options.headers` naming the rest.
 */
export async function call(cmd, args = {}, options = undefined) {
  try {
    return await tauri.core.invoke(cmd, args, options);
  } catch (e) {
    if (e && typeof e === "object" && "code" in e) throw e;
    throw { code: "internal", message: String(e) };
  }
}

/**
 * Starts a stream command (`containers_logs`, `images_pull`, …) with a fresh channel.
 * `onEvent` gets each `{kind, …}` message; `kind: "end"` is the last. Returns a handle whose
 * `stop()` cancels the stream on the Rust side.
 */
export async function stream(cmd, args, onEvent) {
  const channel = new tauri.core.Channel();
  let stopped = false;
  channel.onmessage = (m) => { if (!stopped) onEvent(m); };
  const id = await call(cmd, { ...args, channel });
  return {
    id,
    stop() {
      if (stopped) return;
      stopped = true;
      call("system_stream_stop", { id }).catch(() => {});
    },
  };
}

/** Subscribes to a Tauri event; returns the unlisten promise. */
export function on(event, handler) {
  return tauri.event.listen(event, (e) => handler(e.payload));
}

export const EVENTS = { status: "engine://status", event: "engine://event" };
