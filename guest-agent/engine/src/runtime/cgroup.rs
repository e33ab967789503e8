//! Host cgroup facts the engine needs around the runtime: which hierarchy is in use, and a
//! warm-up of the kernel's cgroup attach lock before a container start.
//!
//! Every write to a `cgroup.procs` file takes the kernel's global `cgroup_threadgroup_rwsem` for
//! writing. Unless the hierarchy is mounted with `favordynmods`, that semaphore is a per-CPU
//! rwsem in reader-fast mode, and the first writer after a quiet period waits for a full RCU
//! grace period (10–25 ms measured on this 2-core host) before it gets in; writers that arrive
//! while it is already in writer mode (or within a grace period of the last writer) get in at
//! once. `runc run` writes `cgroup.procs` for the container's init, so without help every
//! `docker run` pays that grace period on its critical path.
//!
//! [`warm_attach_lock`] starts that wait early, on a blocking thread, by writing the engine's own
//! PID to the `cgroup.procs` of the cgroup it is already in (a no-op move). Issued when a
//! container is created or starts, it overlaps the grace period with network set-up, the shim's
//! spawn and runc's own start-up, so runc's write finds the lock in writer mode (measured: runc
//! run 18 ms → 7–10 ms). The VM's init mounts cgroup2 with `favordynmods`, where the lock is
//! always in writer mode and this is cheap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// True on a pure cgroup v2 host (the VM); false on v1 and hybrid hosts.
pub fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A container's cgroup (cgroupfs layout, the same under every v1 hierarchy and on v2):
/// under `--cgroup-parent` when given (relative ones from the root), else under `/berth`.
pub fn container_path(parent: &str, id: &str) -> String {
    let parent = parent.trim_matches('/');
    if parent.is_empty() {
        format!("/berth/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// Starts taking the cgroup attach lock on a background thread, unless a warm-up is already in
/// flight. Never blocks the caller; failures only cost the optimisation.
pub fn warm_attach_lock() {
    static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
    let Some(procs) = own_procs_file() else {
        return;
    };
    if IN_FLIGHT.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-warm".into())
        .spawn(move || {
            // "0" names the writing process itself: it is already in this cgroup.
            if let Err(e) = std::fs::write(procs, "0") {
                tracing::debug!(error = %e, "cgroup attach lock warm-up failed");
            }
            IN_FLIGHT.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        IN_FLIGHT.store(false, Ordering::Release);
    }
}

/// The `cgroup.procs` file of the engine's own cgroup in the first mounted hierarchy it belongs
/// to, found once.
fn own_procs_file() -> Option<&'static Path> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| {
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        procs_file(&cgroups, &mountinfo).filter(|p| p.exists())
    })
    .as_deref()
}

/// Pairs a `/proc/self/cgroup` line with the mount of its hierarchy (from `mountinfo`).
fn procs_file(cgroups: &str, mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<(&str, &str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            // id parent major:minor root mount-point options [optional…] - fstype source super-options
            let (pre, post) = line.split_once(" - ")?;
            let mut pre = pre.split(' ');
            let root = pre.nth(3)?;
            let point = pre.next()?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let supers = post.nth(1).unwrap_or("");
            matches!(fstype, "cgroup" | "cgroup2").then_some((point, root, fstype, supers))
        })
        .collect();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let found = mounts.iter().find(|(_, root, fstype, supers)| {
            if *root != "/" {
                false
            } else if controllers.is_empty() {
                *fstype == "cgroup2"
            } else {
                let opts: Vec<&str> = supers.split(',').collect();
                *fstype == "cgroup" && controllers.split(',').all(|c| opts.contains(&c))
            }
        });
        if let Some((point, ..)) = found {
            let rel = path.trim_start_matches('/');
            return Some(Path::new(point).join(rel).join("cgroup.procs"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
34 30 0:30 / /sys/fs/cgroup/cpuset rw,nosuid shared:14 - cgroup cgroup rw,cpuset
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/systemd rw,nosuid shared:16 - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn v1_line_maps_to_its_controller_mount() {
        let cg = "12:cpu,cpuacct:/system.slice/x.service\n0::/system.slice/x.service\n";
        assert_eq!(
            procs_file(cg, HYBRID_MOUNTS).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/system.slice/x.service/cgroup.procs")
        );
    }

    #[test]
    fn unified_line_maps_to_the_cgroup2_mount() {
        let cg = "1:name=systemd:/\n0::/user.slice\n";
        // name=systemd has a mount; it comes first and wins.
        assert_eq!(
            procs_file(cg, HYBRID_MOUNTS).unwrap(),
            Path::new("/sys/fs/cgroup/systemd/cgroup.procs")
        );
        let only_v2 = "0::/\n";
        let mounts = "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,favordynmods\n";
        assert_eq!(
            procs_file(only_v2, mounts).unwrap(),
            Path::new("/sys/fs/cgroup/cgroup.procs")
        );
    }

    #[test]
    fn no_cgroup_mount_gives_none() {
        assert!(procs_file("0::/\n", "20 1 0:5 / / rw - ext4 /dev/vda rw\n").is_none());
    }
}
