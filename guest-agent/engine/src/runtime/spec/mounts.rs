//! The spec's mounts: Docker's defaults (`/proc`, `/dev`, `/sys`, cgroup, mqueue, `/dev/shm`),
//! then the container's binds and tmpfs mounts.

use oci_spec::runtime::{Mount, MountBuilder};

use super::{oci_err, NsMode, SpecInput};
use crate::Result;

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci_err)
}

/// Every mount of the container, in the spec's order.
pub(super) fn mounts(input: &SpecInput) -> Result<Vec<Mount>> {
    let mut mounts = default_mounts(input)?;
    if let Some(shm) = shm_mount(input)? {
        mounts.push(shm);
    }
    // Parents before children, whatever order the client listed them in (the docker CLI sends
    // `-v` binds in no fixed order), as dockerd sorts them: by the destination's depth, stable.
    let mut binds: Vec<_> = input.mounts.iter().collect();
    binds.sort_by_key(|m| depth(&m.destination));
    for m in binds {
        let mut opts = vec!["rbind", "rprivate"];
        opts.push(if m.readonly { "ro" } else { "rw" });
        mounts.push(mount(
            &m.destination,
            "bind",
            &m.source.to_string_lossy(),
            &opts,
        )?);
    }
    for (dest, opts) in &input.tmpfs {
        let mut o: Vec<&str> = vec!["nosuid", "nodev"];
        o.extend(opts.iter().map(String::as_str));
        mounts.push(mount(dest, "tmpfs", "tmpfs", &o)?);
    }
    Ok(mounts)
}

/// Path components of a mount destination (`/data/w/m.txt` is 3 deep).
fn depth(dest: &str) -> usize {
    dest.split('/').filter(|c| !c.is_empty()).count()
}

fn default_mounts(input: &SpecInput) -> Result<Vec<Mount>> {
    let sys_mode = if input.privileged { "rw" } else { "ro" };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ])
}

/// `/dev/shm`: the host's with `--ipc host`, none with `--ipc none`, else a tmpfs of
/// `--shm-size` (64 MiB by default).
fn shm_mount(input: &SpecInput) -> Result<Option<Mount>> {
    let shm = if input.shm_size > 0 {
        input.shm_size
    } else {
        64 << 20
    };
    let shm_opt = format!("size={shm}");
    Ok(match (&input.ipc_ns, input.no_shm) {
        (_, true) => None,
        (NsMode::Host, false) => Some(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        )?),
        _ => Some(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_opt],
        )?),
    })
}
