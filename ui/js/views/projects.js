// The Projects view: compose projects as compose's own labels describe them (`compose_list`):
// each with its containers by service (state, published ports as links), its folder and its
// compose files, and actions on all its containers at once (start, stop, restart: concurrent,
// rows marked at once; down after a confirmation naming what goes), its logs in the Logs view,
// its folder in the file manager, and its live CPU and memory (the sums over its running
// containers, ../project-stats.js) with a chart of each while the view is shown. Lists follow
// the engine's events (main.js), no polling.

import { call } from "../api.js";
import { $, h, actionButton, bytes, notice, renderRows } from "../dom.js";
import { LineChart } from "../chart.js";
import { ProjectStats } from "../project-stats.js";
import { confirmAction } from "../dialog.js";
import { portUrl, urlLink } from "../links.js";
import { onPending, pendingOf, runMarked } from "../pending.js";
import { stateCell } from "../state.js";
import { showLogsOf } from "./logs.js";

let projects = []; // the last compose_list
const configs = new Map(); // project -> its compose files ([{path, text, error}]) while shown
let active = false; // the view is shown: its projects' stats are followed
const stats = new ProjectStats(showStats);

export async function load() {
  projects = await call("compose_list");
  for (const name of configs.keys()) if (!projects.some((p) => p.name === name)) configs.delete(name);
  render();
  if (active) await stats.sync(projects);
}

export function enter() {
  active = true;
  stats.sync(projects).catch(() => {});
}

export function leave() {
  active = false;
  stats.stopAll();
  // Nothing is followed while the view is hidden: no stale figures when it is shown again.
  for (const el of $("project-list").children) {
    const { statsLine, cpuChart, memChart } = el.parts;
    statsLine.textContent = "–";
    for (const k of ["cpu", "mem", "sampled"]) delete statsLine.dataset[k];
    cpuChart.clear();
    memChart.clear();
  }
}

/** A project's sums from its containers' stats streams: the line and, once a second, a
 * point on each chart. */
function showStats(name, totals, point) {
  const el = [...$("project-list").children].find((c) => c.dataset.key === name);
  if (!el) return;
  const { statsLine, cpuChart, memChart } = el.parts;
  Object.assign(statsLine.dataset, { cpu: totals.cpu.toFixed(3), mem: String(totals.mem), sampled: String(totals.sampled) });
  statsLine.textContent = totals.sampled
    ? `CPU ${totals.cpu.toFixed(1)} % · memory ${bytes(totals.mem)} (${totals.sampled} running)`
    : "No running container";
  if (point && totals.sampled) {
    cpuChart.push([totals.cpu]);
    memChart.push([totals.mem]);
  }
}

const byName = (name) => projects.find((p) => p.name === name);

/** Cards by project (a card stays the same element while its project lasts, so the focus
 * stays on its buttons); then each card's summary, rows and config pane. */
function render() {
  const list = $("project-list");
  renderRows(list, projects.map((p) => ({ name: p.name, workingDir: p.workingDir })), (p) => p.name, card);
  for (const el of list.children) fill(el, byName(el.dataset.key));
  $("project-empty").hidden = projects.length > 0;
}

function fill(el, p) {
  const { summary, rows, config, configButton } = el.parts;
  const paused = p.containers.filter((c) => c.state === "paused").length;
  summary.textContent = `${p.running}/${p.containers.length} running` + (paused ? `, ${paused} paused` : "");
  el.dataset.running = String(p.running);
  renderRows(rows, p.containers.map((c) => ({ ...c, pending: pendingOf(c.id) })), (c) => c.id, serviceRow);
  const files = configs.get(p.name);
  config.hidden = !files;
  configButton.setAttribute("aria-expanded", String(!!files));
  if (files && config.dataset.shown !== JSON.stringify(files)) {
    config.dataset.shown = JSON.stringify(files);
    config.replaceChildren(...files.map(configFile));
  }
}

function configFile(f) {
  return h("div", {},
    h("h4", { class: "mono" }, f.path),
    f.text !== null && f.text !== undefined
      ? h("pre", { class: "console config", testid: "project-config-text", tabindex: "0", "aria-label": f.path }, f.text)
      : h("p", { class: "muted", testid: "project-config-error" }, f.error));
}

/** The actions of project `name`, run on its containers as they are when clicked. */
function actions(name) {
  const members = (pick = () => true) => (byName(name)?.containers || []).filter(pick);
  const running = (c) => c.state === "running";
  const act = (label, testid, verb, command, pick, help) => {
    const b = actionButton(label, testid, () => runMarked(members(pick), verb, () => call(command, { project: name })));
    b.title = help;
    return b;
  };
  // docker pause/unpause of each running/paused container, all at once.
  const each = (label, testid, verb, command, state, help) => {
    const b = actionButton(label, testid, () => {
      const list = members((c) => c.state === state);
      return runMarked(list, verb, () => Promise.all(list.map((c) => call(command, { id: c.id }))));
    });
    b.title = help;
    return b;
  };
  return [
    act("Start", "projects-start", "starting", "compose_start", (c) => !running(c), "Start every stopped container (docker compose start)"),
    act("Stop", "projects-stop", "stopping", "compose_stop", running, "Stop every running container, all at once (docker compose stop)"),
    act("Restart", "projects-restart", "restarting", "compose_restart", undefined, "Restart every container, all at once (docker compose restart)"),
    each("Pause", "projects-pause", "pausing", "containers_pause", "running", "Pause every running container (docker compose pause)"),
    each("Unpause", "projects-unpause", "unpausing", "containers_unpause", "paused", "Unpause every paused container (docker compose unpause)"),
    actionButton("Down", "projects-down", () => down(name), "danger"),
    actionButton("Logs", "projects-logs", () => showLogsOf(`project:${name}`)),
  ];
}

/** `docker compose down` after saying exactly what goes. */
async function down(name) {
  const p = byName(name);
  if (!p) return;
  const n = p.containers.length;
  const up = p.containers.filter((c) => c.state === "running").length;
  const answer = await confirmAction({
    title: `Take down project ${name}?`,
    message: `Removes its ${n} container${n === 1 ? "" : "s"}`
      + (up ? ` (${up} running: stopped first)` : "")
      + (p.networks.length ? " and the networks compose made for it" : "")
      + ". Volumes, images and the project's files stay.",
    items: [...p.containers.map((c) => `container ${c.name}`), ...p.networks.map((net) => `network ${net}`)],
    confirm: "Down",
  });
  if (answer === "confirm") await runMarked(p.containers, "removing", () => call("compose_down", { project: name }));
}

async function openFolder(name) {
  const path = await call("compose_open_folder", { project: name });
  notice(`Opened ${path}`);
}

async function toggleConfig(name) {
  if (configs.has(name)) configs.delete(name);
  else configs.set(name, await call("compose_config", { project: name }));
  render();
}

function card(p) {
  const id = `project-${p.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const summary = h("span", { class: "muted", testid: "project-card-summary", role: "status" });
  const rows = h("tbody", { testid: "project-services" });
  const config = h("div", { class: "config", testid: "project-config", id: `${id}-config`, hidden: true });
  const folder = actionButton("Open folder", "projects-folder", () => openFolder(p.name));
  folder.disabled = !p.workingDir;
  folder.title = p.workingDir ? `Open ${p.workingDir} in the file manager` : "Compose did not say where the project lives";
  const configButton = actionButton("compose.yaml", "projects-config", () => toggleConfig(p.name));
  const statsLine = h("span", { testid: "project-stats", title: "Sums over the running containers (docker stats)" }, "–");
  const chart = (testid, what) => h("canvas", { testid, role: "img", "aria-label": `${what} of project ${p.name} over the last 2 minutes` });
  const cpuCanvas = chart("project-chart-cpu", "CPU");
  const memCanvas = chart("project-chart-mem", "Memory");
  configButton.setAttribute("aria-controls", config.id);
  configButton.title = "Show the project's compose files";
  const el = h("article", { class: "project-card", testid: "project-card", dataset: { project: p.name }, "aria-labelledby": `${id}-title` },
    h("header", { class: "row" },
      h("h3", { id: `${id}-title` }, p.name),
      summary,
      h("code", { class: "muted", testid: "project-dir", title: "The project's folder" }, p.workingDir || "")),
    h("div", { class: "row", role: "toolbar", "aria-label": `Actions on project ${p.name}` },
      ...actions(p.name), folder, configButton),
    h("p", { class: "muted" }, statsLine),
    h("div", { class: "charts small" },
      h("figure", {}, h("figcaption", {}, "CPU (% of one CPU)"), cpuCanvas),
      h("figure", {}, h("figcaption", {}, "Memory"), memCanvas)),
    h("table", { class: "list", "aria-label": `Containers of project ${p.name}` },
      h("thead", {}, h("tr", {}, ...["Service", "Container", "State", "Ports", ""].map((t) => h("th", {}, t)))),
      rows),
    config);
  const cpuChart = new LineChart(cpuCanvas, { title: "CPU", series: [{ label: "CPU", colour: "#1d6fd6" }], format: (v) => `${v.toFixed(1)} %`, points: 120 });
  const memChart = new LineChart(memCanvas, { title: "Memory", series: [{ label: "used", colour: "#7b3fc4" }], format: bytes, min: 1024 * 1024, points: 120 });
  el.parts = { summary, rows, config, configButton, statsLine, cpuChart, memChart };
  return el;
}

/** Published ports as links (TCP: opened in the browser), others as text. */
function portLinks(c) {
  return c.published.map((p) => {
    const text = `${p.hostIp}:${p.hostPort} → ${p.privatePort}/${p.proto}`;
    return p.proto === "tcp" ? urlLink(portUrl(p.hostIp, p.hostPort), text, "project-port-link") : h("span", {}, text);
  });
}

function serviceRow(c) {
  const pending = c.pending ? { pending: c.pending } : {};
  return h("tr", { testid: "project-service", dataset: { name: c.name, service: c.service, state: c.state, ...pending } },
    h("td", {}, h("strong", {}, c.service || "–")),
    h("td", { class: "mono" }, c.name),
    stateCell(c, "project-service-state"),
    h("td", { class: "ports" }, ...portLinks(c)),
    h("td", { class: "actions" },
      actionButton("Logs", "project-service-logs", () => showLogsOf(`container:${c.name}`))),
  );
}

export function init() {
  onPending(render);
}
