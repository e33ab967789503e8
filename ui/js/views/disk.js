// Disk and clean-up: `docker system df` as a picture (images, containers, volumes, build cache),
// a prune per kind that says what it will free and then what it freed, and Berth's VM data
// disk on the host with "compact" (size before and after), or why compaction is unavailable.

import { call } from "../api.js";
import { $, h, bytes, notice, showError } from "../dom.js";
import { confirmAction } from "../dialog.js";

// `kind` is also the key of its numbers in `disk_usage`'s `engine` (berth_host's EngineUsage).
const KINDS = [
  { kind: "images", label: "Images", what: "every image no container uses", cli: "docker image prune -a" },
  { kind: "containers", label: "Containers", what: "every stopped container", cli: "docker container prune" },
  { kind: "volumes", label: "Volumes", what: "every volume no container uses, named ones too", cli: "docker volume prune -a" },
  { kind: "build_cache", label: "Build cache", what: "all build cache", cli: "docker builder prune -a" },
];

let last = null; // the last disk_usage answer
const results = new Map(); // kind -> the last prune's result line

export async function load() {
  // Sizes cost the engine a walk of its data: only while the view is shown.
  if (document.body.dataset.view !== "disk") return;
  last = await call("disk_usage");
  render();
}

/** A bar of `parts` ([{bytes, cls, label}]) out of `total`. */
function bar(parts, total, testid) {
  return h("div", { class: "bar", testid, role: "img", "aria-label": parts.map((p) => `${p.label} ${bytes(p.bytes)}`).join(", ") },
    ...parts.map((p) => h("span", { class: `seg ${p.cls}`, style: `width: ${total ? (100 * p.bytes) / total : 0}%`, title: `${p.label}: ${bytes(p.bytes)}` })));
}

function engineSection() {
  const box = $("disk-engine");
  if (!last.engine) {
    box.replaceChildren(h("p", { class: "hint", testid: "disk-engine-error" }, `The engine's accounting is unavailable: ${last.engineError}`));
    return;
  }
  const u = last.engine;
  const total = KINDS.reduce((n, k) => n + u[k.kind].bytes, 0);
  const rows = KINDS.map((k) => {
    const c = u[k.kind];
    return h("tr", { testid: "disk-row", dataset: { kind: k.kind, bytes: c.bytes, reclaimable: c.reclaimable } },
      h("th", { scope: "row" }, h("span", { class: `swatch ${k.kind}` }), k.label),
      h("td", { testid: "disk-count" }, String(c.count)),
      h("td", { testid: "disk-size" }, bytes(c.bytes)),
      h("td", {}, bar([{ bytes: c.reclaimable, cls: "free", label: "reclaimable" }, { bytes: c.bytes - c.reclaimable, cls: "used", label: "in use" }], c.bytes, "disk-reclaim-bar"),
        h("span", { testid: "disk-reclaimable" }, `${bytes(c.reclaimable)} reclaimable`)),
      h("td", { class: "actions" },
        h("button", { type: "button", testid: "disk-prune", class: "danger", "aria-label": `Prune ${k.label.toLowerCase()}`, onclick: (ev) => prune(k, c, ev.currentTarget) }, "Prune…"),
        resultLine(results.get(k.kind))),
    );
  });
  box.replaceChildren(
    bar(KINDS.map((k) => ({ bytes: u[k.kind].bytes, cls: k.kind, label: k.label })), total, "disk-total-bar"),
    h("p", { class: "muted", testid: "disk-total" }, `${bytes(total)} in the engine, ${bytes(KINDS.reduce((n, k) => n + u[k.kind].reclaimable, 0))} reclaimable`),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, "Kind"), h("th", {}, "Count"), h("th", {}, "Size"), h("th", {}, "Reclaimable"), h("th", {}))),
      h("tbody", {}, rows)),
  );
}

const resultText = (r) => `Freed ${bytes(r.freed)} (expected ${bytes(r.expected)}), ${r.deleted} deleted`;

/** What the last prune of a kind did (numbers in its dataset for tests and tools). */
function resultLine(r) {
  if (!r) return h("div", { class: "muted", testid: "disk-result" });
  return h("div", { class: "muted", testid: "disk-result", role: "status", dataset: { freed: r.freed, expected: r.expected, deleted: r.deleted } }, resultText(r));
}

async function prune(k, c, button) {
  const answer = await confirmAction({
    title: `Prune ${k.label.toLowerCase()}?`,
    message: `Deletes ${k.what}: frees about ${bytes(c.reclaimable)} (what docker system df counts as reclaimable). The same as ${k.cli}.`,
    confirm: "Prune",
  });
  if (answer !== "confirm") return;
  button.disabled = true;
  try {
    const r = await call("disk_prune", { kind: k.kind });
    results.set(k.kind, r);
    notice(`${k.label}: ${resultText(r)}`);
    await load();
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
  }
}

function vmSection() {
  const v = last.vm;
  const parts = [h("p", {}, "Data disk: ", h("code", { testid: "vm-disk-path" }, v.path))];
  if (v.image) {
    parts.push(bar([{ bytes: v.image.allocated_bytes, cls: "used", label: "on the host" }], v.image.virtual_bytes, "vm-disk-bar"),
      h("p", { testid: "vm-disk-size" }, `${bytes(v.image.allocated_bytes)} on the host of ${bytes(v.image.virtual_bytes)}`));
  }
  if (v.guest) {
    const used = v.guest.totalBytes - v.guest.availableBytes;
    parts.push(bar([{ bytes: used, cls: "used", label: "used in the VM" }], v.guest.totalBytes, "vm-guest-bar"),
      h("p", { testid: "vm-guest-size" }, `${bytes(used)} used of ${bytes(v.guest.totalBytes)} in the VM`));
  }
  const compact = h("button", { type: "button", testid: "disk-compact", disabled: !!v.compactUnavailable, "aria-describedby": "disk-compact-reason" }, "Compact the VM disk");
  compact.addEventListener("click", async () => {
    compact.disabled = true;
    $("disk-compact-result").textContent = "Compacting…";
    try {
      const r = await call("disk_compact");
      $("disk-compact-result").textContent = `Before ${bytes(r.before)}, after ${bytes(r.after)} on the host`;
      await load();
    } catch (e) {
      $("disk-compact-result").textContent = "";
      showError(e);
    } finally {
      compact.disabled = !!last.vm.compactUnavailable;
    }
  });
  parts.push(h("div", { class: "row" }, compact,
    h("span", { class: "muted", id: "disk-compact-reason", testid: "disk-compact-reason" }, v.compactUnavailable || "Trims the VM's free space (running) or rewrites the image without unused clusters (stopped): berth disk compact"),
    h("span", { testid: "disk-compact-result", role: "status" }, $("disk-compact-result")?.textContent || "")));
  $("disk-vm").replaceChildren(...parts);
}

function render() {
  engineSection();
  vmSection();
  $("view-disk").dataset.state = "loaded";
}

export function init() {}
