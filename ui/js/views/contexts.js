// Settings › Docker context: the docker CLI's contexts (as the CLI stores them), switching the
// current one and creating the `berth` context.

import { call } from "../api.js";
import { $, h, actionButton, notice, renderRows } from "../dom.js";

function show(v) {
  $("contexts-dir").textContent = v.dir;
  const note = $("contexts-override");
  note.hidden = !v.overriddenBy;
  note.textContent = v.overriddenBy
    ? `The app's environment sets ${v.overriddenBy}, which overrides the current context for CLIs started with it.`
    : "";
  renderRows($("contexts-list"), v.contexts, (c) => c.name, (c) =>
    h("tr", { testid: "context-row", dataset: { name: c.name, current: String(c.current) } },
      h("td", { class: "mono" }, c.current ? `${c.name} (current)` : c.name),
      h("td", { class: "mono muted" }, c.host),
      h("td", { class: "muted" }, c.description),
      h("td", { class: "actions" },
        c.current
          ? h("span", { class: "muted" }, "in use")
          : actionButton("Use", "context-use", async () => {
            show(await call("contexts_use", { name: c.name }));
            notice(`Current docker context: ${c.name}`);
          }, null, `Use docker context ${c.name}`)),
    ));
  const berth = v.contexts.find((c) => c.name === "berth");
  const button = $("contexts-create-berth");
  button.hidden = Boolean(berth && berth.host === v.berthHost);
  button.textContent = berth ? "Point the berth context at this Berth" : "Create the berth context";
}

export async function load() {
  show(await call("contexts_list"));
}

export function init() {
  const b = $("contexts-create-berth");
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      show(await call("contexts_create_berth"));
      notice("The berth docker context points at Berth's socket");
    } finally {
      b.disabled = false;
    }
  });
}
