// The container detail's Files tab: browse the container's filesystem through the archive API
// (as `docker cp` reads it), view a text file, save a file or folder to the Downloads folder
// (`docker cp c:/path .`), and upload files into the open folder by dropping them on the list or
// choosing them (`docker cp file c:/folder/`).

import { call } from "../api.js";
import { $, bytes, h, notice, showError } from "../dom.js";

let state = null; // { id, path }

/** `dir` joined with `name` (container paths are POSIX). */
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

/** Opens the tab on container `id` (at the root the first time, else where it was). */
export async function openFiles(id) {
  if (!state || state.id !== id) state = { id, path: "/" };
  closeViewer();
  await browse(state.path);
}

/** Lists folder `path` of the open container. */
async function browse(path) {
  const me = state;
  const list = $("files-list");
  list.dataset.state = "loading";
  $("files-path").value = path;
  try {
    const l = await call("containers_files_list", { id: me.id, path });
    if (state !== me) return;
    me.path = path;
    list.dataset.path = path;
    list.replaceChildren(...l.entries.map((e) => row(path, e)));
    $("files-truncated").hidden = !l.truncated;
    $("files-empty").hidden = l.entries.length > 0;
    list.dataset.state = "ready";
  } catch (e) {
    list.dataset.state = "error";
    showError(e);
  }
}

function row(dir, e) {
  const path = join(dir, e.name);
  const open = () => {
    if (e.kind === "dir") browse(path);
    else if (e.kind === "link") browse(resolve(dir, e.link));
    else if (e.kind === "file") view(path);
  };
  const label = e.kind === "dir" ? `Open folder ${e.name}` : e.kind === "file" ? `View ${e.name}` : `Open ${e.name}`;
  const name = h("button", { type: "button", class: `link kind-${e.kind}`, testid: "files-open", "aria-label": label, onclick: open },
    e.kind === "dir" ? `${e.name}/` : e.name);
  const save = e.kind === "dir" || e.kind === "file"
    ? h("button", { type: "button", testid: "files-download", "aria-label": `Download ${e.name}`, onclick: () => saveFile(path, e.kind === "dir") }, "Download")
    : null;
  return h("tr", { testid: "files-row", dataset: { name: e.name, kind: e.kind } },
    h("td", {}, name, e.link ? h("span", { class: "muted" }, ` → ${e.link}`) : null),
    h("td", { class: "mono" }, e.kind === "file" ? bytes(e.size) : ""),
    h("td", { class: "mono" }, modeText(e.kind, e.mode)),
    h("td", { class: "mono" }, when(e.mtime)),
    h("td", { class: "actions" }, save));
}

async function view(path) {
  const me = state;
  const box = $("files-viewer");
  const text = $("files-viewer-text");
  box.hidden = false;
  $("files-viewer-path").textContent = path;
  text.dataset.state = "loading";
  text.textContent = "";
  try {
    const f = await call("containers_files_read", { id: me.id, path });
    if (state !== me) return;
    text.textContent = f.text === null || f.text === undefined
      ? `Binary file, ${bytes(f.size)}: use Download to save it.`
      : f.text + (f.truncated ? `\n… (first ${bytes(f.text.length)} of ${bytes(f.size)})` : "");
    text.dataset.state = f.text === null || f.text === undefined ? "binary" : "ready";
  } catch (e) {
    text.dataset.state = "error";
    showError(e);
  }
}

function closeViewer() {
  $("files-viewer").hidden = true;
}

async function saveFile(path, dir) {
  try {
    const to = await call("containers_files_save", { id: state.id, path, dir });
    $("files-status").textContent = `Saved to ${to}`;
    $("files-status").dataset.saved = to;
    notice(`Saved to ${to}`);
  } catch (e) {
    showError(e);
  }
}

/** Uploads `files` (File objects) into the open folder, one after another, then lists it again. */
export async function upload(files) {
  if (!state || !files.length) return;
  const me = state;
  const dir = me.path;
  const status = $("files-status");
  try {
    let n = 0;
    for (const f of files) {
      status.textContent = `Uploading ${f.name} (${n + 1} of ${files.length})…`;
      const data = new Uint8Array(await f.arrayBuffer());
      await call("containers_files_upload", data, {
        headers: {
          "x-berth-id": encodeURIComponent(me.id),
          "x-berth-dir": encodeURIComponent(dir),
          "x-berth-name": encodeURIComponent(f.name),
        },
      });
      n++;
    }
    status.textContent = `Uploaded ${n} file${n === 1 ? "" : "s"} to ${dir}`;
  } catch (e) {
    status.textContent = "";
    showError(e);
  }
  if (state === me && me.path === dir) await browse(dir);
}

export function initFiles() {
  $("files-up").addEventListener("click", () => state && browse(parent(state.path)));
  $("files-path-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (state) browse($("files-path").value.trim() || "/");
  });
  $("files-viewer-close").addEventListener("click", closeViewer);
  const input = $("files-upload-input");
  input.addEventListener("change", async () => {
    await upload([...input.files]);
    input.value = "";
  });
  const drop = $("files-drop");
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    upload([...(ev.dataTransfer?.files || [])]);
  });
}
