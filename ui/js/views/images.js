// Images: the list, pull with per-layer progress, remove, a Run form (name, ports, env), Build…
// (opens the Builds view), and the detail pane (./image-detail.js: layers, tags, containers, tag, push).

import { call, stream } from "../api.js";
import { $, h, actionButton, bytes, renderRows, shortId, notice, onSubmit, showError } from "../dom.js";
import { LayerProgress } from "../progress.js";
import { initImageDetail, openImage, refreshImage, removeImage } from "./image-detail.js";
import { navigate } from "../nav.js";

let pulling = null;

export async function load() {
  const rows = await call("images_list");
  renderRows($("image-list"), rows, (i) => `${i.id} ${i.reference}`, row);
  await refreshImage(rows);
}

function row(i) {
  const ref = i.reference;
  const target = ref === "<none>:<none>" ? i.id : ref;
  return h("tr", { testid: "image-row", dataset: { ref, id: i.id } },
    h("td", { class: "mono" }, ref),
    h("td", { class: "mono" }, shortId(i.id)),
    h("td", {}, bytes(i.size)),
    h("td", { class: "actions" },
      actionButton("Details", "image-details", () => openImage(i.id, ref), null, `Details of ${shown(ref, i.id)}`),
      actionButton("Run", "image-run", () => openRun(target), null, `Run ${shown(ref, i.id)}`),
      actionButton("Remove", "image-remove", () => removeImage(target, shown(ref, i.id)), "danger", `Remove ${shown(ref, i.id)}`),
    ),
  );
}

/** How an image is named to the user: its reference, or its short id when untagged. */
const shown = (ref, id) => (ref === "<none>:<none>" ? shortId(id) : ref);

function openRun(image) {
  const f = $("run-form");
  $("run-image").textContent = image;
  f.dataset.image = image;
  for (const id of ["run-name", "run-ports", "run-env", "run-cmd"]) $(id).value = "";
  f.hidden = false;
  $("run-name").focus();
}

export function init() {
  onSubmit($("pull-form"), async () => {
    const reference = $("pull-reference").value.trim();
    if (!reference) throw { code: "invalid", message: "type an image reference to pull" };
    pulling?.stop();
    const status = $("pull-status");
    status.textContent = `Pulling ${reference}…`;
    status.dataset.state = "pulling";
    const progress = new LayerProgress($("pull-progress"), "Pull");
    const failed = (e) => { status.textContent = "Pull failed"; status.dataset.state = "failed"; throw e; };
    pulling = await stream("images_pull", { reference }, (m) => {
      if (m.kind === "progress") {
        progress.add(m);
      } else if (m.kind === "end") {
        pulling = null;
        if (m.error) {
          status.textContent = `Pull failed`;
          status.dataset.state = "failed";
          progress.hideWithoutLayers();
          showError(m.error);
        } else {
          status.textContent = `Pulled ${reference}`;
          status.dataset.state = "done";
          load().catch(showError);
        }
      }
    }).catch(failed);
  });

  onSubmit($("run-form"), async () => {
    const f = $("run-form");
    const request = {
      image: f.dataset.image,
      name: $("run-name").value.trim() || null,
      ports: $("run-ports").value,
      env: $("run-env").value,
      cmd: $("run-cmd").value,
    };
    const id = await call("images_run", { request });
    f.hidden = true;
    notice(`Started ${request.name || shortId(id)} from ${request.image}`);
  });
  $("run-cancel").addEventListener("click", () => { $("run-form").hidden = true; });
  $("images-build-open").addEventListener("click", () => {
    navigate("builds");
    $("build-context").focus();
  });
  initImageDetail();
}
