// The terminal: xterm.js (from npm, copied to ui/vendor/ by scripts/install-gui-deps.sh) over a
// TTY session: an exec (`containers_exec`), the container's own TTY (`containers_attach`) or the
// debug shell's sidecar (`containers_debug_shell`, whose image pull shows as progress lines).
//
// The order of things is what makes it reliable:
//   1. the terminal is opened and fitted first, so the TTY starts at its size and no output can
//      arrive before there is a terminal to write it to;
//   2. the session command resolves once the process runs and its hijacked stream is
//      connected (the box's data-state turns "attached");
//   3. keys and size changes go through one queue, one call at a time, after the attach. Tauri
//      runs each command as its own task, so calls sent without waiting could reach the
//      engine out of order: a key per call, as xterm gives them, came out shuffled.
// The xterm instance is the box's `term` property, for tests that read its buffer.

import { call, stream } from "./api.js";

let modules;
/** xterm.js and its fit addon, or null when ui/vendor/ was not filled. */
export async function loadXterm() {
  if (modules === undefined) {
    try {
      const [{ Terminal }, { FitAddon }] = await Promise.all([
        import("../vendor/xterm.js"),
        import("../vendor/addon-fit.js"),
      ]);
      modules = { Terminal, FitAddon };
    } catch (e) {
      console.error("berth: xterm.js not loaded", e);
      modules = null;
    }
  }
  return modules;
}

const THEME = {
  background: "#0f172a", foreground: "#d7e0ea", cursor: "#d7e0ea", selectionBackground: "#33507a",
  black: "#1e293b", red: "#ef4444", green: "#22c55e", yellow: "#eab308", blue: "#3b82f6",
  magenta: "#d946ef", cyan: "#06b6d4", white: "#e2e8f0", brightBlack: "#64748b",
  brightRed: "#f87171", brightGreen: "#4ade80", brightYellow: "#facc15", brightBlue: "#60a5fa",
  brightMagenta: "#e879f9", brightCyan: "#22d3ee", brightWhite: "#f8fafc",
};

/** One call at a time, in order. */
class Serial {
  #tail = Promise.resolve();
  run(fn) {
    const p = this.#tail.then(fn);
    this.#tail = p.catch(() => {});
    return p;
  }
}

/**
 * A terminal in `box` attached to a session (`attach`). `onError` gets `{code, message}`
 * errors. `close()` ends the session (the app hangs up a shell it started).
 */
export class ExecTerminal {
  #x; #fit; #box; #serial = new Serial(); #handle = null; #closed = false;
  #pendingInput = ""; #inputQueued = false; #sentSize = ""; #resizeObserver; #onError;
  #progressShown = false;

  constructor(x, box, onError) {
    this.#x = x;
    this.#box = box;
    this.#onError = onError;
    this.term = new x.Terminal({
      cursorBlink: true,
      fontSize: 13,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
      scrollback: 5000,
      theme: THEME,
    });
    this.#fit = new x.FitAddon();
    this.term.loadAddon(this.#fit);
    // Copy and paste as in desktop terminals: Ctrl+Shift+C / Ctrl+Shift+V.
    this.term.attachCustomKeyEventHandler((ev) => this.#clipboardKey(ev));
    box.replaceChildren();
    box.term = this.term;
    box.dataset.state = "starting";
    delete box.dataset.error;
    this.term.open(box);
    this.#fitNow();
    this.term.onData((d) => this.input(d));
    this.term.onResize(() => this.#queueResize());
    this.#resizeObserver = new ResizeObserver(() => this.#fitNow());
    this.#resizeObserver.observe(box);
  }

  /**
   * Starts a session with `command` (containers_exec, containers_attach, containers_debug_shell)
   * and its `args`; resolves when attached or failed (the error goes to onError).
   */
  attach(command, args) {
    const { cols, rows } = this.term;
    return this.#serial.run(async () => {
      const onEvent = (m) => {
        if (m.kind === "output") this.#write(m.text);
        else if (m.kind === "progress") this.#progress(m);
        else if (m.kind === "end") this.#ended(m.error);
      };
      const handle = await stream(command, { ...args, cols, rows }, onEvent);
      if (this.#closed) { handle.stop(); return; }
      this.#handle = handle;
      this.#sentSize = `${rows}x${cols}`;
      this.#box.dataset.size = this.#sentSize;
      if (this.#box.dataset.state === "starting") this.#box.dataset.state = "attached";
      this.term.focus();
    }).catch((e) => this.#ended(e));
  }

  /** Sends keys: queued behind the attach and any call in flight, batched meanwhile. */
  input(data) {
    if (this.#closed) return;
    this.#pendingInput += data;
    if (this.#inputQueued) return;
    this.#inputQueued = true;
    this.#serial.run(async () => {
      this.#inputQueued = false;
      const data = this.#pendingInput;
      this.#pendingInput = "";
      if (!this.#handle || this.#box.dataset.state !== "attached") return;
      await call("containers_exec_input", { stream: this.#handle.id, data });
    }).catch((e) => this.#onError(e));
  }

  focus() { this.term.focus(); }

  /** Ends the session and frees the terminal. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#resizeObserver.disconnect();
    this.#handle?.stop();
    this.term.dispose();
    delete this.#box.term;
    this.#box.dataset.state = "closed";
  }

  #write(text) {
    if (this.#progressShown) this.term.write("\r\n");
    this.#progressShown = false;
    this.term.write(text);
  }

  /** A pull progress line (the debug image), written over the previous one. */
  #progress(m) {
    const words = [m.status, m.id, m.progress].filter(Boolean).join(" ");
    this.term.write(`\r\x1b[2K\x1b[2m${words}\x1b[0m`);
    this.#progressShown = true;
  }

  #fitNow() {
    if (this.#closed || this.#box.clientWidth === 0) return; // hidden: keep the last size
    try { this.#fit.fit(); } catch { /* not measurable yet */ }
  }

  /** Sends the terminal's size when it differs from the TTY's, after what is queued. */
  #queueResize() {
    this.#serial.run(async () => {
      const { cols, rows } = this.term;
      const size = `${rows}x${cols}`;
      if (!this.#handle || this.#closed || size === this.#sentSize) return;
      await call("containers_exec_resize", { stream: this.#handle.id, cols, rows });
      this.#sentSize = size;
      this.#box.dataset.size = size;
    }).catch(() => {}); // a session that has ended has no TTY to resize
  }

  #ended(error) {
    if (this.#closed || this.#box.dataset.state === "ended") return;
    this.#box.dataset.state = "ended";
    if (this.#progressShown) this.term.write("\r\n");
    // Why it ended, in the terminal itself too (a shell the container lacks, a failed pull).
    if (error) this.term.write(`\r\n\x1b[31m${error.message}\x1b[0m`);
    this.term.write("\r\n\x1b[2m[session ended]\x1b[0m\r\n");
    if (error) {
      this.#box.dataset.error = error.code;
      this.#onError(error);
    }
  }

  #clipboardKey(ev) {
    if (ev.type !== "keydown" || !ev.ctrlKey || !ev.shiftKey) return true;
    const key = ev.key.toLowerCase();
    if (key === "c" && this.term.hasSelection()) {
      navigator.clipboard?.writeText(this.term.getSelection()).catch(() => {});
      return false;
    }
    if (key === "v") {
      navigator.clipboard?.readText().then((t) => this.term.paste(t)).catch(() => {});
      return false;
    }
    return true;
  }
}
