//! The guest's API filesystems and pure cgroup v2 with every controller delegated.

use std::path::Path;

use anyhow::Context;
use nix::mount::{mount, MsFlags};

/// One early mount.
struct Early {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: &'static str,
    /// Options tried first and dropped when the kernel rejects them (older kernels).
    optional: &'static str,
}

const NOSUID_NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);
const NOSUID_NODEV_NOEXEC: MsFlags = NOSUID_NODEV.union(MsFlags::MS_NOEXEC);

/// In order: later targets live inside earlier ones.
const EARLY: &[Early] = &[
    Early {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        optional: "",
    },
    Early {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        optional: "",
    },
    Early {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: "mode=0755",
        optional: "",
    },
    Early {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: "gid=5,mode=0620,ptmxmode=0666",
        optional: "",
    },
    Early {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: "mode=1777",
        optional: "",
    },
    Early {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: "mode=0755",
        optional: "",
    },
    Early {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: "mode=1777",
        optional: "",
    },
    Early {
        source: "cgroup2",
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC,
        data: "nsdelegate",
        // Keeps the cgroup attach lock in writer mode, so moving a container's init into its
        // cgroup does not wait for an RCU grace period on every start (Linux 6.0+).
        optional: "favordynmods",
    },
];

/// Mounts `/proc` only, so the command line can be read before logging is set up.
pub(crate) fn proc() -> anyhow::Result<()> {
    mount_one(&EARLY[0])
}

/// Mounts the rest of the API filesystems (skipping any stage 1 already moved in place), adds
/// the usual `/dev` links and enables every cgroup v2 controller for the engine's subtree.
pub(crate) fn early() -> anyhow::Result<()> {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in &EARLY[1..] {
        if is_mount_point(&mounted, m.target) {
            tracing::debug!("{} already mounted", m.target);
            continue;
        }
        mount_one(m)?;
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/core", "/proc/kcore"),
    ] {
        if std::fs::symlink_metadata(link).is_err() {
            let _ = std::os::unix::fs::symlink(target, link);
        }
    }
    enable_controllers(Path::new("/sys/fs/cgroup"))
}

fn mount_one(m: &Early) -> anyhow::Result<()> {
    std::fs::create_dir_all(m.target).with_context(|| format!("failed to create {}", m.target))?;
    if !m.optional.is_empty() {
        let data = format!("{},{}", m.data, m.optional);
        let data = data.trim_start_matches(',');
        match mount(
            Some(m.source),
            m.target,
            Some(m.fstype),
            m.flags,
            Some(data),
        ) {
            Ok(()) => return Ok(()),
            Err(e) => tracing::debug!("mount {} with {data}: {e}; retrying without", m.target),
        }
    }
    let data = (!m.data.is_empty()).then_some(m.data);
    mount(Some(m.source), m.target, Some(m.fstype), m.flags, data)
        .with_context(|| format!("failed to mount {} on {}", m.fstype, m.target))
}

/// Whether `target` is a mount point according to `/proc/self/mountinfo` text.
fn is_mount_point(mountinfo: &str, target: &str) -> bool {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| p == target)
}

/// Writes `+<controller>` for every available controller into `cgroup.subtree_control`.
fn enable_controllers(root: &Path) -> anyhow::Result<()> {
    let available = std::fs::read_to_string(root.join("cgroup.controllers"))
        .context("failed to read cgroup.controllers")?;
    let enable = subtree_control_line(&available);
    if enable.is_empty() {
        return Ok(());
    }
    std::fs::write(root.join("cgroup.subtree_control"), &enable)
        .with_context(|| format!("failed to enable cgroup controllers ({enable})"))?;
    tracing::debug!("cgroup v2 controllers enabled: {enable}");
    Ok(())
}

fn subtree_control_line(available: &str) -> String {
    available
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_mount_point_reads_field_five() {
        let info = "22 1 0:21 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw\n\
                    23 22 0:22 / /dev/pts rw - devpts devpts rw\n";
        assert!(is_mount_point(info, "/dev"));
        assert!(is_mount_point(info, "/dev/pts"));
        assert!(!is_mount_point(info, "/run"));
    }

    #[test]
    fn subtree_control_line_prefixes_each_controller() {
        assert_eq!(
            subtree_control_line("cpuset cpu io memory pids\n"),
            "+cpuset +cpu +io +memory +pids"
        );
        assert_eq!(subtree_control_line("\n"), "");
    }

    #[test]
    fn enable_controllers_writes_subtree_control() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        enable_controllers(dir.path()).unwrap();
        let written = std::fs::read_to_string(dir.path().join("cgroup.subtree_control")).unwrap();
        assert_eq!(written, "+cpu +memory");
    }
}
