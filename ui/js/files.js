// A file browser over the archive API (as `docker cp` reads and writes): list a folder, follow
// symbolic links, view a text file, save a file or folder to the Downloads folder, and upload
// files into the open folder by dropping them on the list or choosing them. The container
// detail's Files tab and the volume detail each have one, made from the `files-pane` template;
// what differs is the source: the commands it calls, given to `open`.

import { on } from "./api.js";
import { $, bytes, h, notice, showError } from "./dom.js";

const browsers = new Set();
let dropFallback = null;

/** What gets host files dropped anywhere but on a file browser (the Volumes view's import). */
export function setDropFallback(fn) {
  dropFallback = fn;
}

/**
 * Files dragged in from the desktop arrive as Tauri's `drag-drop` event with their host paths
 * (the webview's own drop event has no paths and would need the bytes in memory): the browser
 * whose drop area is under the pointer uploads them by path, streamed by the app.
 */
function listenForDrops() {
  on("tauri://drag-drop", (p) => {
    const paths = p?.paths || [];
    if (!paths.length) return;
    const scale = window.devicePixelRatio || 1;
    const at = p.position ? document.elementFromPoint(p.position.x / scale, p.position.y / scale) : null;
    const area = at?.closest("[data-testid=files-drop]");
    const target = [...browsers].find((b) => b.state && area && b.root.contains(area));
    if (target) target.uploadPaths(paths);
    else dropFallback?.(paths);
  }).catch(showError);
}

/** `dir` joined with `name` (paths are POSIX). */
function join(dir, name) {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

function parent(path) {
  const p = path.replace(/\/+$/, "");
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** Where a symbolic link in `dir` leads (relative targets resolved against `dir`). */
function resolve(dir, target) {
  const parts = [];
  for (const s of (target.startsWith("/") ? target : join(dir, target)).split("/")) {
    if (s === "..") parts.pop();
    else if (s && s !== ".") parts.push(s);
  }
  return `/${parts.join("/")}`;
}

/** `rwxr-xr-x` for a mode, with `d`/`l` first for folders and links. */
function modeText(kind, mode) {
  const bits = "rwxrwxrwx".split("").map((c, i) => (mode & (1 << (8 - i)) ? c : "-")).join("");
  return ({ dir: "d", link: "l" }[kind] || "-") + bits;
}

function when(secs) {
  return secs ? new Date(secs * 1000).toISOString().replace("T", " ").slice(0, 19) : "";
}

/**
 * A source: `{ key, what, list(path), read(path), save(path, dir), upload(dir, name, bytes),
 * uploadPaths(dir, paths) }`;
 * `key` tells sources apart (the browser starts at `/` on a new one), `what` names it for
 * screen readers ("the container", "volume data").
 */
export class FileBrowser {
  /** Fills `host` with a copy of the `files-pane` template and wires it. */
  constructor(host) {
    host.replaceChildren(document.getElementById("files-pane").content.cloneNode(true));
    this.root = host;
    this.state = null; // { source, path }
    this.el = (id) => $(id, host);
    this.wire();
    if (!browsers.size) listenForDrops();
    browsers.add(this);
  }

  /** Opens `source` (at the top the first time, else where it was). */
  async open(source) {
    if (!this.state || this.state.source.key !== source.key) this.state = { source, path: "/" };
    else this.state.source = source;
    this.el("files-drop").setAttribute("aria-label", `Files of ${source.what}; drop files here to upload them to this folder`);
    this.closeViewer();
    await this.browse(this.state.path);
  }

  /** Forgets the source (its pane closed). */
  close() {
    this.state = null;
  }

  async browse(path) {
    const me = this.state;
    if (!me) return;
    const list = this.el("files-list");
    list.dataset.state = "loading";
    this.el("files-path").value = path;
    try {
      const l = await me.source.list(path);
      if (this.state !== me) return;
      me.path = path;
      list.dataset.path = path;
      list.replaceChildren(...l.entries.map((e) => this.row(path, e)));
      this.el("files-truncated").hidden = !l.truncated;
      this.el("files-empty").hidden = l.entries.length > 0;
      list.dataset.state = "ready";
    } catch (e) {
      list.dataset.state = "error";
      showError(e);
    }
  }

  row(dir, e) {
    const path = join(dir, e.name);
    const open = () => {
      if (e.kind === "dir") this.browse(path);
      else if (e.kind === "link") this.browse(resolve(dir, e.link));
      else if (e.kind === "file") this.view(path);
    };
    const label = e.kind === "dir" ? `Open folder ${e.name}` : e.kind === "file" ? `View ${e.name}` : `Open ${e.name}`;
    const name = h("button", { type: "button", class: `link kind-${e.kind}`, testid: "files-open", "aria-label": label, onclick: open },
      e.kind === "dir" ? `${e.name}/` : e.name);
    const save = e.kind === "dir" || e.kind === "file"
      ? h("button", { type: "button", testid: "files-download", "aria-label": `Download ${e.name}`, onclick: () => this.save(path, e.kind === "dir") }, "Download")
      : null;
    return h("tr", { testid: "files-row", dataset: { name: e.name, kind: e.kind } },
      h("td", {}, name, e.link ? h("span", { class: "muted" }, ` → ${e.link}`) : null),
      h("td", { class: "mono" }, e.kind === "file" ? bytes(e.size) : ""),
      h("td", { class: "mono" }, modeText(e.kind, e.mode)),
      h("td", { class: "mono" }, when(e.mtime)),
      h("td", { class: "actions" }, save));
  }

  async view(path) {
    const me = this.state;
    const text = this.el("files-viewer-text");
    this.el("files-viewer").hidden = false;
    this.el("files-viewer-path").textContent = path;
    text.dataset.state = "loading";
    text.textContent = "";
    try {
      const f = await me.source.read(path);
      if (this.state !== me) return;
      const binary = f.text === null || f.text === undefined;
      text.textContent = binary
        ? `Binary file, ${bytes(f.size)}: use Download to save it.`
        : f.text + (f.truncated ? `\n… (first ${bytes(f.text.length)} of ${bytes(f.size)})` : "");
      text.dataset.state = binary ? "binary" : "ready";
    } catch (e) {
      text.dataset.state = "error";
      showError(e);
    }
  }

  closeViewer() {
    this.el("files-viewer").hidden = true;
  }

  /** Shows where a download went (`data-saved` for tests). */
  saved(to) {
    const status = this.el("files-status");
    status.textContent = `Saved to ${to}`;
    status.dataset.saved = to;
    notice(`Saved to ${to}`);
  }

  async save(path, dir) {
    try {
      this.saved(await this.state.source.save(path, dir));
    } catch (e) {
      showError(e);
    }
  }

  /** Runs `send(source, dir)` for an upload into the open folder, then lists it again. */
  async uploading(what, count, send) {
    const me = this.state;
    if (!me || !count) return;
    const dir = me.path;
    const status = this.el("files-status");
    status.textContent = `Uploading ${what}…`;
    status.dataset.state = "uploading";
    try {
      await send(me.source, dir, (text) => { status.textContent = text; });
      status.textContent = `Uploaded ${count} item${count === 1 ? "" : "s"} to ${dir}`;
      status.dataset.state = "uploaded";
    } catch (e) {
      status.textContent = "";
      status.dataset.state = "failed";
      showError(e);
    }
    if (this.state === me && me.path === dir) await this.browse(dir);
  }

  /** Uploads `files` (File objects from the page) one after another. */
  upload(files) {
    return this.uploading(files[0]?.name, files.length, async (source, dir, say) => {
      let n = 0;
      for (const f of files) {
        say(`Uploading ${f.name} (${n + 1} of ${files.length})…`);
        await source.upload(dir, f.name, new Uint8Array(await f.arrayBuffer()));
        n++;
      }
    });
  }

  /** Uploads host files and folders by path (dropped from the desktop), streamed by the app. */
  uploadPaths(paths) {
    return this.uploading(paths.join(", "), paths.length, (source, dir) => source.uploadPaths(dir, paths));
  }

  wire() {
    this.el("files-up").addEventListener("click", () => this.state && this.browse(parent(this.state.path)));
    this.el("files-path-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.browse(this.el("files-path").value.trim() || "/");
    });
    this.el("files-viewer-close").addEventListener("click", () => this.closeViewer());
    const input = this.el("files-upload-input");
    input.addEventListener("change", async () => {
      await this.upload([...input.files]);
      input.value = "";
    });
    const drop = this.el("files-drop");
    drop.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (ev) => {
      ev.preventDefault();
      drop.classList.remove("over");
      this.upload([...(ev.dataTransfer?.files || [])]);
    });
  }
}

/** The headers that say where an upload goes (values URI-encoded: see `files.rs`). */
export function uploadHeaders(targetHeader, target, dir, name) {
  return {
    [targetHeader]: encodeURIComponent(target),
    "x-berth-dir": encodeURIComponent(dir),
    "x-berth-name": encodeURIComponent(name),
  };
}
