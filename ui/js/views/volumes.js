// Volumes: list, create, remove, import a tar (restore into a new or an empty volume), and the
// detail pane: size (`system df`), the containers using it, its files (the shared browser,
// ../files.js, through a helper container as `docker cp` would), export to a tar in Downloads
// (backup) and clone to a new name.

import { call } from "../api.js";
import { $, bytes, fact, h, actionButton, notice, onSubmit, renderRows, showError } from "../dom.js";
import { confirmAction } from "../dialog.js";
import { FileBrowser, setDropFallback, uploadHeaders } from "../files.js";

let current = null; // name of the volume whose detail is open
let browser = null;

async function removeVolume(name) {
  const answer = await confirmAction({
    title: `Remove volume ${name}?`,
    message: "The data in it is deleted for good.",
    confirm: "Remove",
  });
  if (answer === "confirm") await call("volumes_remove", { name });
  return answer === "confirm";
}

export async function load() {
  const rows = await call("volumes_list");
  renderRows($("volume-list"), rows, (v) => v.name, (v) =>
    h("tr", { testid: "volume-row", dataset: { name: v.name } },
      h("td", { class: "mono" }, v.name),
      h("td", {}, v.driver),
      h("td", { class: "mono muted" }, v.mountpoint),
      h("td", { class: "actions" },
        actionButton("Details", "volume-details", () => openVolume(v.name), "", `Details of volume ${v.name}`),
        actionButton("Remove", "volume-remove", () => removeVolume(v.name), "danger", `Remove volume ${v.name}`)),
    ));
  if (current && !rows.some((r) => r.name === current)) closeVolume();
  else if (current) await showFacts();
}

/** The browser's source for volume `volume` (paths are inside the volume). */
function volumeSource(volume) {
  return {
    key: `volume:${volume}`,
    what: `volume ${volume}`,
    list: (path) => call("volumes_files_list", { volume, path }),
    read: (path) => call("volumes_files_read", { volume, path }),
    save: (path, dir) => call("volumes_files_save", { volume, path, dir }),
    upload: (dir, name, data) =>
      call("volumes_files_upload", data, { headers: uploadHeaders("x-berth-volume", volume, dir, name) }),
    uploadPaths: (dir, paths) => call("volumes_files_upload_paths", { volume, dir, paths }),
  };
}

export async function openVolume(name) {
  current = name;
  $("volume-detail").hidden = false;
  $("volume-detail-title").textContent = name;
  $("volume-detail-body").dataset.state = "loading";
  setStatus("", null);
  await showFacts();
  if (current === name) await browser.open(volumeSource(name));
}

function closeVolume() {
  current = null;
  browser.close();
  $("volume-detail").hidden = true;
}

/** Size, driver, mountpoint and who uses it (not the files: listing them makes a helper). */
async function showFacts() {
  const me = current;
  const d = await call("volumes_inspect", { name: me });
  if (current !== me) return;
  const size = $("volume-facts");
  size.dataset.size = d.size ?? "";
  size.replaceChildren(
    ...fact("Size", "volume-fact-size", d.size === null || d.size === undefined ? "not counted" : bytes(d.size)),
    ...fact("Driver", "volume-fact-driver", d.driver),
    ...fact("Mountpoint", "volume-fact-mountpoint", d.mountpoint),
    ...fact("Created", "volume-fact-created", d.created || "–"),
    ...d.labels.flatMap(([k, v]) => fact(k, "volume-fact-label", v)),
  );
  const used = d.containers.length
    ? d.containers.map((c) => h("li", { testid: "volume-container", dataset: { name: c.name, state: c.state } }, h("strong", {}, c.name), ` (${c.state})`))
    : [h("li", { class: "muted" }, "no container uses it")];
  $("volume-containers").replaceChildren(...used);
  $("volume-detail-body").dataset.state = "loaded";
}

/** The pane's status line; `state` (`working`, `done`, `failed`) for tests and screen readers. */
function setStatus(text, state, saved) {
  const s = $("volume-action-status");
  s.textContent = text;
  if (state) s.dataset.state = state;
  else delete s.dataset.state;
  if (saved) s.dataset.saved = saved;
  else delete s.dataset.saved;
}

/** Runs a long action with a status line; errors go to the banner and the line. */
async function withStatus(working, action) {
  setStatus(working, "working");
  try {
    return await action();
  } catch (e) {
    setStatus(`${working.replace(/…$/, "")} failed`, "failed");
    showError(e);
    return undefined;
  }
}

async function exportVolume() {
  if (!current) return;
  const name = current;
  const to = await withStatus(`Exporting ${name}…`, () => call("volumes_export", { volume: name }));
  if (to) {
    setStatus(`Exported ${name} to ${to}`, "done", to);
    notice(`Exported ${name} to ${to}`);
  }
}

async function cloneVolume() {
  if (!current) return;
  const source = current;
  const target = $("volume-clone-name").value.trim();
  const made = await withStatus(`Cloning ${source} to ${target}…`, () => call("volumes_clone", { source, target }));
  if (made) {
    $("volume-clone-name").value = "";
    setStatus(`Cloned ${source} to ${made}`, "done");
    notice(`Cloned ${source} to ${made}`);
  }
}

async function importTar() {
  const path = $("volume-import-path").value.trim();
  const volume = $("volume-import-name").value.trim();
  const status = $("volume-import-status");
  status.textContent = `Importing into ${volume}…`;
  status.dataset.state = "working";
  try {
    const made = await call("volumes_import", { path, volume });
    status.textContent = `Imported ${path} into ${made}`;
    status.dataset.state = "done";
    notice(`Imported into ${made}`);
  } catch (e) {
    status.textContent = "Import failed";
    status.dataset.state = "failed";
    throw e;
  }
}

export function init() {
  onSubmit($("volume-form"), async () => {
    const name = await call("volumes_create", { name: $("volume-name").value });
    $("volume-name").value = "";
    notice(`Created volume ${name}`);
  });
  onSubmit($("volume-import-form"), importTar);
  browser = new FileBrowser($("volume-files"));
  $("volume-detail-close").addEventListener("click", closeVolume);
  $("volume-export").addEventListener("click", exportVolume);
  $("volume-detail-remove").addEventListener("click", async () => {
    if (!current) return;
    try {
      if (await removeVolume(current)) closeVolume();
    } catch (e) {
      showError(e);
    }
  });
  $("volume-clone-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    cloneVolume();
  });
  // A file dropped on the Volumes view but not on a file browser is a tar to import.
  setDropFallback((paths) => {
    if (document.body.dataset.view !== "volumes") return;
    $("volume-import-path").value = paths[0];
    $("volume-import-name").focus();
  });
}
