// Small DOM helpers shared by the views.

import { hasIds, withNames } from "./names.js";

/** The element with `data-testid=id` (inside `root`). */
export const $ = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

/** Creates an element: h("td", {class: "x", dataset: {name}}, child, "text", …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "testid") el.dataset.testid = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** A `<dt>`/`<dd>` pair of a detail pane's facts (`dd` carries `testid`). */
export function fact(label, testid, value) {
  return [h("dt", {}, label), h("dd", { testid, class: "mono" }, value)];
}

/**
 * Renders `items` into `tbody` by key: a row whose data did not change is kept as it is (so a
 * reload triggered by an event does not replace elements under the pointer); changed and new
 * rows are built with `build`, gone ones removed. Order follows `items`.
 */
export function renderRows(tbody, items, key, build) {
  const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  const rows = items.map((item) => {
    const k = key(item);
    const sig = JSON.stringify(item);
    const prev = old.get(k);
    if (prev && prev.dataset.sig === sig) return prev;
    const tr = build(item);
    tr.dataset.key = k;
    tr.dataset.sig = sig;
    return tr;
  });
  rows.forEach((tr, i) => {
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  while (tbody.children.length > rows.length) tbody.lastElementChild.remove();
}

/**
 * A button that runs `action`, disabled while it runs; errors go to the banner. `name` is its
 * accessible name when the label alone does not say what it acts on (a row's "Remove").
 */
export function actionButton(label, testid, action, cls, name) {
  const b = h("button", { testid, class: cls, type: "button", "aria-label": name }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await action(); } catch (e) { showError(e); } finally { b.disabled = false; }
  });
  return b;
}

/** Shows a command error (`{code, message}`): Docker's message as it sent it. */
export function showError(e) {
  const err = e && typeof e === "object" ? e : { code: "internal", message: String(e) };
  console.error("berth:", err);
  $("error-code").textContent = err.code || "error";
  const text = err.message || String(err);
  $("error-message").textContent = text;
  $("error-banner").hidden = false;
  // Containers by name, not by their 64-character id (once the names are known).
  if (hasIds(text)) {
    withNames(text).then((named) => {
      if ($("error-message").textContent === text) $("error-message").textContent = named;
    });
  }
}

export function clearError() {
  $("error-banner").hidden = true;
}

let noticeTimer;
/** A short confirmation line. */
export function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}

/** Runs an async form handler on submit, errors to the banner. */
export function onSubmit(form, handler) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = form.querySelector("button[type=submit]");
    if (btn) btn.disabled = true;
    try { clearError(); await handler(); } catch (e) { showError(e); } finally { if (btn) btn.disabled = false; }
  });
}

/** Coalesces bursts of calls (events) into one run after `ms`. */
export function debounce(fn, ms = 120) {
  let t;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

export function shortId(id) {
  return (id || "").replace(/^sha256:/, "").slice(0, 12);
}

export function bytes(n) {
  if (!n && n !== 0) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

// Terminal control sequences the plain console does not render.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;

/** Appends terminal output to a <pre>, dropping escapes and handling \r\n and backspace. */
export function appendConsole(pre, text, max = 200_000) {
  let t = text.replace(ANSI, "").replace(/\r\n/g, "\n").replace(/\r/g, "");
  let cur = pre.textContent;
  for (const ch of t) {
    if (ch === "\b") cur = cur.slice(0, -1);
    else if (ch !== "\x07") cur += ch;
  }
  if (cur.length > max) cur = cur.slice(cur.length - max);
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = cur;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}
