// A log pane: lines from one or many sources (containers), each tagged with its stream (stdout
// or stderr) and its time, searchable with highlighting (plain text or a regular expression),
// optionally showing only the matching lines. Used by the container detail's Logs tab and the
// unified Logs view. Nothing runs while no data arrives: lines are added when a chunk comes in.

import { $, h } from "./dom.js";

// Terminal control sequences the plain console does not render.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;
// The time the engine puts before each line when asked for timestamps (RFC 3339).
const STAMP = /^(\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)) ?/;

export class LogView {
  /**
   * `pre`: where the lines go. `opts.max`: lines kept (oldest dropped). `opts.onCount(n, total)`:
   * called with the number of matching lines after each change (for the status line).
   */
  constructor(pre, opts = {}) {
    this.pre = pre;
    this.max = opts.max || 5000;
    this.onCount = opts.onCount || (() => {});
    this.lines = []; // { source, stream, ts, text, el }
    this.partial = new Map(); // source|stream -> text not yet ended by \n
    this.search = null; // RegExp (global) or null
    this.onlyMatches = false;
    this.sources = new Map(); // source -> { label, colour }
    this.last = new Map(); // source -> the time of its last line (stampKey)
    this.floor = new Map(); // source -> lines up to this time are already shown (stampKey)
  }

  /** The time of the last line shown from `source` (as given by the engine), or "". */
  lastStamp(source) {
    return this.last.get(source)?.raw || "";
  }

  /**
   * Drops `source`'s lines up to its last shown one from now on: a stream opened again with a
   * `since` in whole seconds repeats the lines of that second.
   */
  skipShown(source) {
    const last = this.last.get(source);
    if (last) this.floor.set(source, last.key);
  }

  /** Names and colours a source (shown at the start of its lines when there are many). */
  setSource(source, label, colour) {
    this.sources.set(source, { label, colour });
  }

  /** Drops the lines shown (a source's place is kept: see `skipShown`). */
  clear() {
    this.lines = [];
    this.partial.clear();
    this.pre.replaceChildren();
    this.count();
  }

  /** Drops the lines and every source's place. */
  reset() {
    this.last.clear();
    this.floor.clear();
    this.clear();
  }

  /** Drops the half line a source left (its stream ended). */
  flush(source) {
    for (const k of [...this.partial.keys()]) {
      if (k.startsWith(`${source}|`)) {
        const [, stream] = k.split("|");
        const rest = this.partial.get(k);
        this.partial.delete(k);
        if (rest) this.addLine(source, stream, rest);
      }
    }
    this.count();
  }

  /** Adds a chunk of output: complete lines are shown, a trailing half line waits. */
  add(source, stream, chunk) {
    const key = `${source}|${stream}`;
    const text = (this.partial.get(key) || "") + chunk.replace(ANSI, "").replace(/\r\n/g, "\n");
    const parts = text.split("\n");
    this.partial.set(key, parts.pop());
    const atBottom = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
    for (const p of parts) this.addLine(source, stream, p.replace(/\r/g, ""));
    while (this.lines.length > this.max) this.lines.shift().el.remove();
    if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
    this.count();
  }

  addLine(source, stream, raw) {
    const m = STAMP.exec(raw);
    const line = { source, stream, ts: m ? m[1] : "", text: m ? raw.slice(m[0].length) : raw };
    if (line.ts) {
      const key = stampKey(line.ts);
      const floor = this.floor.get(source);
      if (floor && key <= floor) return;
      this.last.set(source, { key, raw: line.ts });
    }
    line.el = this.build(line);
    this.lines.push(line);
    this.pre.append(line.el);
  }

  build(line) {
    const src = this.sources.get(line.source);
    const el = h("span", { class: `ln ${line.stream === "stderr" ? "err" : "out"}`, dataset: { stream: line.stream, source: line.source } });
    if (src) el.append(h("span", { class: "src", style: `color: ${src.colour}` }, `${src.label} | `));
    if (line.ts) el.append(h("span", { class: "ts" }, `${line.ts} `));
    const hit = this.mark(el, line.text);
    el.append("\n");
    el.hidden = this.onlyMatches && !!this.search && !hit;
    line.hit = hit;
    return el;
  }

  /** Appends `text` to `el` with the search's matches in <mark>; says whether any matched. */
  mark(el, text) {
    const re = this.search;
    if (!re) {
      el.append(text);
      return false;
    }
    re.lastIndex = 0;
    let at = 0;
    let hit = false;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m[0] === "") { re.lastIndex++; continue; }
      hit = true;
      el.append(text.slice(at, m.index), h("mark", {}, m[0]));
      at = m.index + m[0].length;
    }
    el.append(text.slice(at));
    return hit;
  }

  /**
   * Sets the search: `query` as plain text or (with `regex`) a regular expression, case
   * insensitive. Throws a SyntaxError for a bad expression (the view keeps the old search).
   */
  setSearch(query, regex, onlyMatches) {
    let re = null;
    if (query) re = new RegExp(regex ? query : query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi");
    this.search = re;
    this.onlyMatches = onlyMatches;
    this.redraw();
  }

  redraw() {
    for (const l of this.lines) {
      const el = this.build(l);
      l.el.replaceWith(el);
      l.el = el;
    }
    this.count();
  }

  count() {
    const hits = this.search ? this.lines.filter((l) => l.hit).length : this.lines.length;
    this.onCount(hits, this.lines.length);
  }
}

/** An RFC 3339 UTC time (as the engine stamps lines) as a string that sorts by time. */
export function stampKey(ts) {
  const [secs, frac = ""] = ts.replace(/Z$/, "").split(".");
  return `${secs}.${frac.padEnd(9, "0")}`;
}

/**
 * Wires a LogView to its search controls, found by `prefix`: `<prefix>-search` (text),
 * `-regex` and `-only-matches` (checkboxes), `-search-error` (a bad expression said) and
 * `-matches` (the line count, also as `data-count`).
 */
export function bindSearch(view, prefix) {
  fillSearchBar(prefix);
  const box = $(`${prefix}-search`);
  const count = $(`${prefix}-matches`);
  view.onCount = (hits, total) => {
    const n = box.value ? hits : total;
    count.textContent = box.value ? `${hits} matching line${hits === 1 ? "" : "s"}` : `${total} lines`;
    count.dataset.count = String(n);
  };
  const apply = () => {
    const bad = $(`${prefix}-search-error`);
    try {
      view.setSearch(box.value, $(`${prefix}-regex`).checked, $(`${prefix}-only-matches`).checked);
      bad.hidden = true;
      box.removeAttribute("aria-invalid");
    } catch (e) {
      bad.textContent = `Not a valid expression: ${e.message}`;
      bad.hidden = false;
      box.setAttribute("aria-invalid", "true");
    }
  };
  for (const id of ["search", "regex", "only-matches"]) {
    $(`${prefix}-${id}`).addEventListener("input", apply);
    $(`${prefix}-${id}`).addEventListener("change", apply);
  }
}

/** Puts a copy of the `log-search` template (index.html) into `[data-log-search=prefix]`, its
 * parts named `prefix-<part>`. */
function fillSearchBar(prefix) {
  const host = document.querySelector(`[data-log-search="${prefix}"]`);
  const bar = document.getElementById("log-search").content.cloneNode(true);
  for (const el of bar.querySelectorAll("[data-part]")) {
    el.dataset.testid = `${prefix}-${el.dataset.part}`;
    delete el.dataset.part;
  }
  host.replaceWith(bar);
}
