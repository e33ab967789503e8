// The container detail's Stats tab: live charts of CPU, memory, network and block I/O over the
// last 5 minutes, fed by the engine's stats stream (`docker stats`, one sample a second; no
// polling). Network and block I/O are drawn as rates from the engine's running totals.

import { stream } from "../api.js";
import { $, bytes, showError } from "../dom.js";
import { LineChart } from "../chart.js";

const rate = (v) => `${bytes(v)}/s`;
let charts = null;

function makeCharts() {
  charts ||= {
    cpu: new LineChart($("chart-cpu"), { title: "CPU", series: [{ label: "CPU", colour: "#1d6fd6" }], format: (v) => `${v.toFixed(1)} %` }),
    mem: new LineChart($("chart-mem"), { title: "Memory", series: [{ label: "used", colour: "#7b3fc4" }], format: bytes, min: 1024 * 1024 }),
    net: new LineChart($("chart-net"), {
      title: "Network",
      series: [{ label: "received", colour: "#2a9d4b" }, { label: "sent", colour: "#d68910" }],
      format: rate,
      min: 1024,
    }),
    blk: new LineChart($("chart-blk"), {
      title: "Block I/O",
      series: [{ label: "read", colour: "#2a7f9d" }, { label: "written", colour: "#c0392b" }],
      format: rate,
      min: 1024,
    }),
  };
  return charts;
}

/** Starts the stats stream of container `id` into the charts; returns the stream's handle. */
export async function openStats(id) {
  const c = makeCharts();
  for (const chart of Object.values(c)) chart.clear();
  for (const k of ["cpu", "mem", "net", "blk"]) $(`stats-${k}`).textContent = "–";
  let prev = null;
  return stream("containers_stats", { id }, (m) => {
    if (m.kind === "end") {
      if (m.error) showError(m.error);
      return;
    }
    if (m.kind !== "stats") return;
    const now = performance.now();
    const secs = prev ? Math.max(0.001, (now - prev.at) / 1000) : 1;
    const per = (k) => (prev ? Math.max(0, m[k] - prev[k]) / secs : 0);
    c.cpu.push([m.cpuPercent]);
    c.mem.push([m.memUsage]);
    c.net.push([per("netRx"), per("netTx")]);
    c.blk.push([per("blkRead"), per("blkWrite")]);
    $("stats-cpu").textContent = `${m.cpuPercent.toFixed(2)} %`;
    $("stats-mem").textContent = `${bytes(m.memUsage)} / ${bytes(m.memLimit)} (${m.memPercent.toFixed(1)} %)`;
    $("stats-net").textContent = `↓ ${rate(per("netRx"))} ↑ ${rate(per("netTx"))} (total ${bytes(m.netRx)} / ${bytes(m.netTx)})`;
    $("stats-blk").textContent = `read ${rate(per("blkRead"))}, written ${rate(per("blkWrite"))} (total ${bytes(m.blkRead)} / ${bytes(m.blkWrite)})`;
    const totals = $("stats-totals");
    Object.assign(totals.dataset, { netRx: m.netRx, netTx: m.netTx, blkRead: m.blkRead, blkWrite: m.blkWrite });
    prev = { ...m, at: now };
  });
}
