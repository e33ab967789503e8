// Images: the list, pull with per-layer progress, remove, and a Run form (name, ports, env).

import { call, stream } from "../api.js";
import { $, h, actionButton, bytes, renderRows, shortId, notice, onSubmit, showError } from "../dom.js";
import { confirmAction } from "../dialog.js";

let pulling = null;

export async function load() {
  const rows = await call("images_list");
  renderRows($("image-list"), rows, (i) => `${i.id} ${i.reference}`, row);
}

function row(i) {
  const ref = i.reference;
  const target = ref === "<none>:<none>" ? i.id : ref;
  return h("tr", { testid: "image-row", dataset: { ref, id: i.id } },
    h("td", { class: "mono" }, ref),
    h("td", { class: "mono" }, shortId(i.id)),
    h("td", {}, bytes(i.size)),
    h("td", { class: "actions" },
      actionButton("Run", "image-run", () => openRun(target)),
      actionButton("Remove", "image-remove", async () => {
        const answer = await confirmAction({
          title: `Remove image ${ref === "<none>:<none>" ? shortId(i.id) : ref}?`,
          message: "Layers no other image uses are deleted; pulling it again brings it back.",
          confirm: "Remove",
        });
        if (answer === "confirm") await call("images_remove", { id: target, force: false });
      }, "danger"),
    ),
  );
}

function openRun(image) {
  const f = $("run-form");
  $("run-image").textContent = image;
  f.dataset.image = image;
  for (const id of ["run-name", "run-ports", "run-env", "run-cmd"]) $(id).value = "";
  f.hidden = false;
  $("run-name").focus();
}

/** Renders the progress lines, one per layer id, like `docker pull`. */
function renderProgress(lines, order) {
  const pre = $("pull-progress");
  pre.hidden = false;
  pre.textContent = order.map((k) => lines.get(k)).join("\n");
  pre.scrollTop = pre.scrollHeight;
}

export function init() {
  onSubmit($("pull-form"), async () => {
    const reference = $("pull-reference").value.trim();
    if (!reference) throw { code: "invalid", message: "type an image reference to pull" };
    pulling?.stop();
    const lines = new Map();
    const order = [];
    const status = $("pull-status");
    status.textContent = `Pulling ${reference}…`;
    status.dataset.state = "pulling";
    // Shown with the first progress line: a pull that fails before any leaves no empty strip.
    $("pull-progress").textContent = "";
    $("pull-progress").hidden = true;
    let n = 0;
    const failed = (e) => { status.textContent = "Pull failed"; status.dataset.state = "failed"; throw e; };
    pulling = await stream("images_pull", { reference }, (m) => {
      if (m.kind === "progress") {
        const key = m.id ? `layer:${m.id}` : `line:${n++}`;
        if (!lines.has(key)) order.push(key);
        const text = [m.id ? `${m.id}:` : null, m.status, m.progress].filter(Boolean).join(" ");
        lines.set(key, text);
        renderProgress(lines, order);
      } else if (m.kind === "end") {
        pulling = null;
        if (m.error) {
          status.textContent = `Pull failed`;
          status.dataset.state = "failed";
          // Only status lines, no layer: nothing worth a strip.
          if (!order.some((k) => k.startsWith("layer:"))) $("pull-progress").hidden = true;
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
}
