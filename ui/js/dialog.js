// The confirmation dialog for destructive actions: a modal <dialog> (focus kept inside, Escape
// cancels, Cancel has the focus first so Enter never destroys by accident), named by its title
// and described by its message for screen readers.

import { $, h } from "./dom.js";

let open = null;

/**
 * Asks before a destructive action. `items` (names) are listed under the message. `confirm` is
 * the main button's label; `alternative`, when given, a second action (e.g. "Stop and remove").
 * Resolves to "confirm", "alternative" or null (cancelled).
 */
export function confirmAction({ title, message, items = [], confirm, alternative = null }) {
  const d = $("confirm-dialog");
  if (open) open(null);
  $("confirm-title").textContent = title;
  $("confirm-message").textContent = message;
  $("confirm-items").replaceChildren(...items.map((i) => h("li", { class: "mono" }, i)));
  $("confirm-items").hidden = items.length === 0;
  const ok = $("confirm-ok");
  ok.textContent = confirm;
  ok.hidden = !confirm;
  const alt = $("confirm-alt");
  alt.textContent = alternative || "";
  alt.hidden = !alternative;
  d.returnValue = "";
  return new Promise((resolve) => {
    open = (v) => {
      open = null;
      d.removeEventListener("close", onClose);
      if (d.open) d.close();
      resolve(v);
    };
    const onClose = () => open?.({ ok: "confirm", alt: "alternative" }[d.returnValue] || null);
    d.addEventListener("close", onClose);
    d.showModal();
    $("confirm-cancel").focus();
  });
}
