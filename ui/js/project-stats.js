// Live CPU and memory per compose project for the Projects view: one `containers_stats` stream
// (the engine's stats stream, as the Stats tab uses) per running container of the projects
// shown, summed per project. A container's stream is stopped when it no longer runs (the list
// follows the engine's events) and every stream when the view is left. Nothing is polled: a
// project's sums change when one of its containers sends a sample (about one a second each),
// and its chart gets a point at most once a second.

import { stream } from "./api.js";

/** A project's sums from the latest sample of each of its running containers. */
function sums(followed, project) {
  let cpu = 0;
  let mem = 0;
  let sampled = 0;
  for (const f of followed.values()) {
    if (f.project !== project || !f.last) continue;
    cpu += f.last.cpuPercent;
    mem += f.last.memUsage;
    sampled += 1;
  }
  return { cpu, mem, sampled };
}

export class ProjectStats {
  /** `onChange(project, totals, chartPoint)`: a project's sums changed; `chartPoint` says
   * whether a second has passed since its chart last got a point. */
  constructor(onChange) {
    this.onChange = onChange;
    this.followed = new Map(); // container id -> {project, handle, last}
    this.lastPoint = new Map(); // project -> time of its chart's last point
  }

  /** Follows exactly the running containers of `projects` (`compose_list`'s). */
  async sync(projects) {
    const want = new Map();
    for (const p of projects) {
      for (const c of p.containers) if (c.state === "running") want.set(c.id, p.name);
    }
    for (const [id, f] of this.followed) {
      if (want.get(id) !== f.project) this.drop(id);
    }
    for (const [id, project] of want) {
      if (this.followed.has(id)) continue;
      const f = { project, handle: null, last: null, dropped: false };
      this.followed.set(id, f);
      f.handle = await stream("containers_stats", { id }, (m) => this.sample(id, f, m));
      if (f.dropped) f.handle.stop();
    }
  }

  sample(id, f, m) {
    if (m.kind === "end") {
      if (this.followed.get(id) === f) this.drop(id);
      return;
    }
    if (m.kind !== "stats" || f.dropped) return;
    f.last = m;
    this.report(f.project);
  }

  report(project) {
    const now = performance.now();
    const point = now - (this.lastPoint.get(project) ?? -Infinity) >= 950;
    if (point) this.lastPoint.set(project, now);
    this.onChange(project, sums(this.followed, project), point);
  }

  /** Stops following container `id`; its project's sums are reported again unless `quiet`. */
  drop(id, quiet = false) {
    const f = this.followed.get(id);
    if (!f) return;
    f.dropped = true;
    f.handle?.stop();
    this.followed.delete(id);
    if (!quiet) this.report(f.project);
  }

  stopAll() {
    for (const id of [...this.followed.keys()]) this.drop(id, true);
    this.lastPoint.clear();
  }
}
