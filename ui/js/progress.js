// Per-layer progress of a pull or a push, as the docker CLI prints it: one row per layer id
// (status, bytes and a bar when the total is known), plus status lines without a layer.

import { h, bytes } from "./dom.js";

export class LayerProgress {
  /** `box` is emptied and stays hidden until the first line (a failure before any leaves no empty strip). */
  constructor(box, label) {
    this.box = box;
    this.label = label;
    this.rows = new Map();
    this.lines = 0;
    box.replaceChildren();
    box.hidden = true;
  }

  /** Shows one `progress` stream message `{id, status, progress}` (`progress` is `current/total`). */
  add(m) {
    const key = m.id ? `layer:${m.id}` : `line:${this.lines++}`;
    let row = this.rows.get(key);
    if (!row) {
      row = {
        text: h("span", { class: "mono" }),
        bar: h("progress", { max: 1, value: 0, "aria-label": `${this.label} of ${m.id || "the image"}`, hidden: true }),
      };
      row.el = h("div", { class: "layer", testid: "progress-row", dataset: { id: m.id || "" } }, row.text, row.bar);
      this.rows.set(key, row);
      this.box.append(row.el);
    }
    const [cur, total] = (m.progress || "").split("/").map(Number);
    const amount = total > 0 ? `${bytes(cur)} / ${bytes(total)}` : null;
    row.text.textContent = [m.id ? `${m.id}:` : null, m.status, amount].filter(Boolean).join(" ");
    row.el.dataset.status = m.status;
    if (total > 0) {
      row.bar.max = total;
      row.bar.value = cur;
    }
    row.bar.hidden = !(total > 0);
    this.box.hidden = false;
    this.box.scrollTop = this.box.scrollHeight;
  }

  /** Whether any line was about a layer. */
  hasLayers() {
    return [...this.rows.keys()].some((k) => k.startsWith("layer:"));
  }

  /** Hides the strip when it holds no layer (only status lines: nothing worth showing). */
  hideWithoutLayers() {
    if (!this.hasLayers()) this.box.hidden = true;
  }
}
