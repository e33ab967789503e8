// Networks: list, create (bridge), remove (not the predefined ones).

import { call } from "../api.js";
import { $, h, actionButton, notice, onSubmit, renderRows, shortId } from "../dom.js";
import { confirmAction } from "../dialog.js";

export async function load() {
  const rows = await call("networks_list");
  renderRows($("network-list"), rows, (n) => n.id, (n) => {
    const remove = actionButton("Remove", "network-remove", async () => {
      const answer = await confirmAction({ title: `Remove network ${n.name}?`, message: "Containers can no longer join it.", confirm: "Remove" });
      if (answer === "confirm") await call("networks_remove", { id: n.id });
    }, "danger");
    remove.disabled = n.builtin;
    return h("tr", { testid: "network-row", dataset: { name: n.name, id: n.id } },
      h("td", { class: "mono" }, n.name),
      h("td", {}, n.driver),
      h("td", { class: "mono" }, n.subnet),
      h("td", { class: "mono muted" }, shortId(n.id)),
      h("td", { class: "actions" }, remove),
    );
  });
}

export function init() {
  onSubmit($("network-form"), async () => {
    const name = $("network-name").value;
    await call("networks_create", { name });
    $("network-name").value = "";
    notice(`Created network ${name.trim()}`);
  });
}
