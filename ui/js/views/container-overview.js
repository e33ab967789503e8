// The Overview and Inspect tabs of the container detail: drawn from `containers_inspect`
// (the engine's inspect JSON and the `docker run` line that recreates the container).

import { call } from "../api.js";
import { $, h, notice, showError } from "../dom.js";
import { portUrl, urlLink } from "../links.js";

/** One `<dt>/<dd>` pair; `value` is a node, text or a list of nodes (one line each). */
function item(label, testid, value) {
  const list = Array.isArray(value) ? value : [value];
  const shown = list.filter((v) => v !== "" && v !== null && v !== undefined);
  return [
    h("dt", {}, label),
    h("dd", { testid }, shown.length ? shown.map((v) => h("div", {}, v)) : h("span", { class: "muted" }, "none")),
  ];
}

function ports(inspect) {
  const out = [];
  for (const [port, bindings] of Object.entries(inspect.NetworkSettings?.Ports || {})) {
    if (!bindings?.length) { out.push(`${port} (not published)`); continue; }
    for (const b of bindings) {
      out.push(urlLink(portUrl(b.HostIp, b.HostPort), `${b.HostIp || "0.0.0.0"}:${b.HostPort} → ${port}`,
        "overview-port-link"));
    }
  }
  return out;
}

function health(state) {
  const hl = state?.Health;
  if (!hl) return "no health check";
  const probes = (hl.Log || []).slice(-3).map((p) =>
    `exit ${p.ExitCode}: ${(p.Output || "").trim().slice(0, 200)}`);
  return [`${hl.Status} (failing streak ${hl.FailingStreak || 0})`, ...probes];
}

function restart(host) {
  const rp = host?.RestartPolicy;
  if (!rp?.Name || rp.Name === "no") return "no";
  return rp.Name === "on-failure" && rp.MaximumRetryCount ? `on-failure:${rp.MaximumRetryCount}` : rp.Name;
}

/** A line of text with a Copy button. */
function copyable(text, testid, label) {
  const code = h("code", { testid, class: "mono wrap" }, text);
  const copy = h("button", { type: "button", testid: `${testid}-copy`, "aria-label": `Copy ${label}` }, "Copy");
  copy.addEventListener("click", () =>
    navigator.clipboard.writeText(text).then(() => notice(`${label} copied`), showError));
  return h("div", { class: "copyable" }, code, copy);
}

/** Fills the Overview pane for container `id`; `isCurrent()` says whether it is still wanted. */
export async function showOverview(id, isCurrent) {
  const pane = $("overview");
  pane.dataset.state = "loading";
  const { inspect, runCommand } = await call("containers_inspect", { id });
  if (!isCurrent()) return;
  const cfg = inspect.Config || {};
  const nets = Object.entries(inspect.NetworkSettings?.Networks || {})
    .map(([n, v]) => `${n}${v.IPAddress ? ` (${v.IPAddress})` : ""}`);
  const mounts = (inspect.Mounts || []).map((m) =>
    `${m.Type} ${m.Name || m.Source} → ${m.Destination}${m.RW === false ? " (read-only)" : ""}`);
  const labels = Object.entries(cfg.Labels || {}).sort().map(([k, v]) => `${k}=${v}`);
  const state = inspect.State || {};
  pane.replaceChildren(
    h("dl", { class: "overview" },
      item("Image", "overview-image", cfg.Image),
      item("Command", "overview-command", [inspect.Path, ...(inspect.Args || [])].join(" ")),
      item("State", "overview-state", `${state.Status}${state.StartedAt ? ` since ${state.StartedAt}` : ""}`),
      item("Health", "overview-health", health(state)),
      item("Restart", "overview-restart", restart(inspect.HostConfig)),
      item("Ports", "overview-ports", ports(inspect)),
      item("Env", "overview-env", cfg.Env || []),
      item("Mounts", "overview-mounts", mounts),
      item("Networks", "overview-networks", nets),
      item("Labels", "overview-labels", labels),
    ),
    h("h4", {}, "Recreate with"),
    copyable(runCommand, "overview-run", "docker run line"),
  );
  pane.dataset.state = "ready";
}

/** Fills the Inspect pane with the raw JSON. */
export async function showInspect(id, isCurrent) {
  const pre = $("inspect-json");
  pre.dataset.state = "loading";
  const { inspect } = await call("containers_inspect", { id });
  if (!isCurrent()) return;
  const text = JSON.stringify(inspect, null, 2);
  pre.textContent = text;
  $("inspect-copy").onclick = () =>
    navigator.clipboard.writeText(text).then(() => notice("Inspect JSON copied"), showError);
  pre.dataset.state = "ready";
}
