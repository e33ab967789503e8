// The image detail pane: facts, tags, the containers made from it, layers newest first (size,
// the command that made each, which other local images share it, the bytes of it a later layer
// overwrites or deletes once "wasted space" is computed), and its actions: tag (a dialog with
// the app's validation), push a tag with per-layer progress, remove.

import { call, stream } from "../api.js";
import { $, h, bytes, fact, notice, onSubmit, shortId, showError } from "../dom.js";
import { LayerProgress } from "../progress.js";
import { confirmAction } from "../dialog.js";

/** Asks, then removes an image by reference (or id when untagged), as `docker rmi`. */
export async function removeImage(target, shown) {
  const answer = await confirmAction({
    title: `Remove image ${shown}?`,
    message: "Layers no other image uses are deleted; pulling it again brings it back.",
    confirm: "Remove",
  });
  if (answer === "confirm") await call("images_remove", { id: target, force: false });
  return answer === "confirm";
}

let current = null; // { id, ref, detail, waste }
let pushing = null;

/** Opens the pane for image `id` (shown as `ref`). */
export async function openImage(id, ref) {
  current = { id, ref, detail: null, waste: null };
  resetWaste();
  $("image-detail").hidden = false;
  $("image-detail-title").textContent = ref === "<none>:<none>" ? shortId(id) : ref;
  $("image-detail-body").dataset.state = "loading";
  $("push-progress").hidden = true;
  $("push-status").textContent = "";
  delete $("push-status").dataset.state;
  await load();
}

export function closeImage() {
  current = null;
  $("image-detail").hidden = true;
}

/** Follows the list (events): the pane closes when its image is gone, else is drawn again. */
export async function refreshImage(rows) {
  if (!current) return;
  if (!rows.some((r) => r.id === current.id)) closeImage();
  else await load();
}

async function load() {
  const me = current;
  const d = await call("images_inspect", { id: me.id });
  if (current !== me) return;
  me.detail = d;
  render(d);
}

function list(testid, items, empty, item) {
  $(testid).replaceChildren(...(items.length ? items.map(item) : [h("li", { class: "muted" }, empty)]));
}

/** Wasted bytes by layer diff id, once computed. */
function wasteOf(digest) {
  const w = current?.waste?.layers.find((x) => x.digest && x.digest === digest);
  return w || null;
}

function layerRow(l, i) {
  const shared = l.sharedWith.length > 0;
  const w = l.digest ? wasteOf(l.digest) : null;
  return h("tr", { testid: "image-layer", dataset: { index: i, digest: l.digest || "", shared: String(shared), size: l.size } },
    h("td", { testid: "image-layer-size" }, l.digest ? bytes(l.size) : h("span", { class: "muted", title: "This step made no layer" }, "–")),
    h("td", { class: "mono cmd", testid: "image-layer-command", title: l.createdBy }, l.createdBy || h("span", { class: "muted" }, "(no command recorded)")),
    h("td", { testid: "image-layer-shared" }, shared ? `Shared with ${l.sharedWith.join(", ")}` : l.digest ? h("span", { class: "muted" }, "only this image") : ""),
    h("td", { testid: "image-layer-wasted", dataset: { bytes: w ? w.bytes : "" }, title: w ? `${w.files} file(s) a later layer overwrites or deletes` : "" },
      w ? bytes(w.bytes) : ""),
  );
}

function render(d) {
  $("image-facts").replaceChildren(
    ...fact("ID", "image-fact-id", d.id),
    ...fact("Size", "image-fact-size", bytes(d.size)),
    ...fact("Created", "image-fact-created", d.created || "–"),
    ...fact("Platform", "image-fact-platform", d.platform || "–"),
  );
  list("image-tags", d.tags, "untagged", (t) => h("li", { class: "mono", testid: "image-tag", dataset: { tag: t } }, t));
  list("image-containers", d.containers, "no container uses it", (c) =>
    h("li", { testid: "image-container", dataset: { name: c.name, state: c.state } }, h("strong", {}, c.name), ` (${c.state})`));
  const made = d.layers.filter((l) => l.digest);
  const shared = made.filter((l) => l.sharedWith.length);
  $("image-layers-summary").textContent =
    `${made.length} layers, ${shared.length} shared with other local images (${bytes(shared.reduce((n, l) => n + l.size, 0))})`;
  $("image-layers").replaceChildren(...d.layers.map(layerRow));
  const pick = $("push-ref");
  const chosen = pick.value;
  pick.replaceChildren(...d.tags.map((t) => h("option", { value: t }, t)));
  if (d.tags.includes(chosen)) pick.value = chosen;
  $("push-submit").disabled = d.tags.length === 0;
  $("push-submit").title = d.tags.length ? "" : "Tag the image with a registry name to push it";
  $("image-detail-body").dataset.state = "loaded";
}

function resetWaste() {
  $("image-wasted").hidden = true;
  $("image-wasted").dataset.state = "idle";
  $("image-wasted-files").replaceChildren();
  $("image-wasted-summary").textContent = "Bytes of files a later layer overwrites or deletes: still stored and pulled, seen by no container.";
  delete $("image-wasted-summary").dataset.total;
}

function wastedRow(f) {
  const how = f.deleted ? "deleted" : "overwritten";
  return h("tr", { testid: "image-wasted-file", dataset: { path: `/${f.path}`, bytes: f.size, layer: f.layer, by: f.by, how } },
    h("td", {}, bytes(f.size)),
    h("td", { class: "mono" }, `/${f.path}`),
    h("td", {}, `#${f.layer + 1}`),
    h("td", {}, `#${f.by + 1} (${how})`),
  );
}

/** Reads the image's save stream and shows what later layers overwrite or delete. */
async function computeWaste() {
  const me = current;
  if (!me) return;
  const table = $("image-wasted");
  const summary = $("image-wasted-summary");
  table.dataset.state = "computing";
  summary.textContent = "Reading the image's layers…";
  try {
    const w = await call("images_wasted", { id: me.id });
    if (current !== me) return;
    me.waste = w;
    const files = w.layers.reduce((n, l) => n + l.files, 0);
    summary.textContent = w.total
      ? `${bytes(w.total)} wasted in ${files} file${files === 1 ? "" : "s"} (the biggest below)`
      : "Nothing wasted: no layer overwrites or deletes a file of an earlier one.";
    summary.dataset.total = String(w.total);
    $("image-wasted-files").replaceChildren(...w.biggest.map(wastedRow));
    table.hidden = w.biggest.length === 0;
    table.dataset.state = "done";
    if (me.detail) render(me.detail);
  } catch (e) {
    if (current === me) {
      table.dataset.state = "failed";
      summary.textContent = `Could not compute: ${e.message}`;
    }
    throw e;
  }
}

function openTagDialog() {
  if (!current) return;
  $("tag-source").textContent = $("image-detail-title").textContent;
  $("tag-target").value = "";
  $("tag-error").hidden = true;
  $("tag-dialog").showModal();
  $("tag-target").focus();
}

/** Tags with the typed name; a refused name keeps the dialog open and says why. */
async function submitTag(ev) {
  ev.preventDefault();
  const target = $("tag-target").value.trim();
  try {
    await call("images_tag", { id: current.id, target });
    $("tag-dialog").close();
    notice(`Tagged ${$("tag-source").textContent} as ${target}`);
  } catch (e) {
    const err = $("tag-error");
    err.dataset.code = e.code;
    err.textContent = e.message;
    err.hidden = false;
  }
}

async function push() {
  const reference = $("push-ref").value;
  if (!reference) throw { code: "invalid", message: "the image has no tag to push" };
  pushing?.stop();
  const status = $("push-status");
  status.textContent = `Pushing ${reference}…`;
  status.dataset.state = "pushing";
  const progress = new LayerProgress($("push-progress"), "Push");
  pushing = await stream("images_push", { reference }, (m) => {
    if (m.kind === "progress") progress.add(m);
    else if (m.kind === "end") {
      pushing = null;
      status.dataset.state = m.error ? "failed" : "done";
      status.textContent = m.error ? `Push of ${reference} failed` : `Pushed ${reference}`;
      if (m.error) {
        progress.hideWithoutLayers();
        showError(m.error);
      }
    }
  }).catch((e) => {
    status.textContent = "Push failed";
    status.dataset.state = "failed";
    throw e;
  });
}

export function initImageDetail() {
  $("image-detail-close").addEventListener("click", closeImage);
  $("image-tag-open").addEventListener("click", openTagDialog);
  $("tag-form").addEventListener("submit", submitTag);
  $("tag-cancel").addEventListener("click", () => $("tag-dialog").close());
  $("image-detail-remove").addEventListener("click", async () => {
    if (!current) return;
    const shown = $("image-detail-title").textContent;
    // By id when it has several tags would remove them all: remove the one opened.
    const target = current.ref === "<none>:<none>" ? current.id : current.ref;
    try {
      if (await removeImage(target, shown)) closeImage();
    } catch (e) {
      showError(e);
    }
  });
  onSubmit($("push-form"), push);
  $("image-wasted-compute").addEventListener("click", async (ev) => {
    const b = ev.currentTarget;
    b.disabled = true;
    try { await computeWaste(); } catch (e) { showError(e); } finally { b.disabled = false; }
  });
}
