// A small line chart on a <canvas>: the last `points` samples of one or more series, drawn
// only when a sample is pushed (no animation, no timer). The canvas keeps a text description
// (aria-label) of the latest values for screen readers.

export class LineChart {
  /**
   * `series`: [{label, colour}]. `format(v)`: a value as text (axis and description).
   * `points`: how many samples are kept (one a second from the engine: 300 = 5 minutes).
   * `min`: the least top of the scale (so an idle line does not fill the chart).
   */
  constructor(canvas, { title, series, format, points = 300, min = 1 }) {
    this.canvas = canvas;
    this.title = title;
    this.series = series;
    this.format = format;
    this.points = points;
    this.min = min;
    this.data = series.map(() => []);
    this.canvas.dataset.samples = "0";
  }

  clear() {
    this.data = this.series.map(() => []);
    this.canvas.dataset.samples = "0";
    this.draw();
  }

  /** Adds one sample: a value per series. */
  push(values) {
    values.forEach((v, i) => {
      const d = this.data[i];
      d.push(v);
      if (d.length > this.points) d.shift();
    });
    this.canvas.dataset.samples = String(this.data[0].length);
    this.canvas.dataset.last = JSON.stringify(values);
    this.describe(values);
    this.draw();
  }

  describe(values) {
    const now = this.series.map((s, i) => `${s.label} ${this.format(values[i])}`).join(", ");
    const peak = this.format(Math.max(0, ...this.data.flat()));
    this.canvas.setAttribute("aria-label", `${this.title}: now ${now}; peak ${peak} over the last ${this.data[0].length} s`);
  }

  draw() {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * ratio));
    const hgt = Math.max(1, Math.round(c.clientHeight * ratio));
    if (c.width !== w || c.height !== hgt) {
      c.width = w;
      c.height = hgt;
    }
    const g = c.getContext("2d");
    g.clearRect(0, 0, w, hgt);
    const top = Math.max(this.min, ...this.data.flat()) * 1.1;
    const pad = 14 * ratio;
    // Scale: the top value and a middle line.
    g.strokeStyle = "#dfe3e8";
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, pad + 0.5);
    g.lineTo(w, pad + 0.5);
    g.moveTo(0, Math.round((hgt + pad) / 2) + 0.5);
    g.lineTo(w, Math.round((hgt + pad) / 2) + 0.5);
    g.stroke();
    g.fillStyle = "#6b7785";
    g.font = `${11 * ratio}px system-ui, sans-serif`;
    g.fillText(this.format(top), 2 * ratio, 11 * ratio);
    const step = w / Math.max(1, this.points - 1);
    this.data.forEach((d, i) => {
      g.strokeStyle = this.series[i].colour;
      g.lineWidth = 1.5 * ratio;
      g.beginPath();
      const x0 = w - (d.length - 1) * step;
      d.forEach((v, j) => {
        const x = x0 + j * step;
        const y = hgt - (v / top) * (hgt - pad);
        if (j === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
    });
  }
}
