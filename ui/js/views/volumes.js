// Volumes: list, create, remove.

import { call } from "../api.js";
import { $, h, actionButton, notice, onSubmit, renderRows } from "../dom.js";
import { confirmAction } from "../dialog.js";

export async function load() {
  const rows = await call("volumes_list");
  renderRows($("volume-list"), rows, (v) => v.name, (v) =>
    h("tr", { testid: "volume-row", dataset: { name: v.name } },
      h("td", { class: "mono" }, v.name),
      h("td", {}, v.driver),
      h("td", { class: "mono muted" }, v.mountpoint),
      h("td", { class: "actions" },
        actionButton("Remove", "volume-remove", async () => {
          const answer = await confirmAction({
            title: `Remove volume ${v.name}?`,
            message: "The data in it is deleted for good.",
            confirm: "Remove",
          });
          if (answer === "confirm") await call("volumes_remove", { name: v.name });
        }, "danger")),
    ));
}

export function init() {
  onSubmit($("volume-form"), async () => {
    const name = await call("volumes_create", { name: $("volume-name").value });
    $("volume-name").value = "";
    notice(`Created volume ${name}`);
  });
}
