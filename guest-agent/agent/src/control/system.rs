//! Guest system calls behind control requests: clock, share mounts, power-off.

use std::io;
use std::path::Path;

use berth_agent_proto::Share;

/// Sets the wall clock to the host's time (the same call PID 1 uses at boot).
pub(super) fn set_clock(unix_nanos: i64) -> io::Result<()> {
    crate::init::clock::set_wall_clock(
        unix_nanos.div_euclid(1_000_000_000),
        unix_nanos.rem_euclid(1_000_000_000),
    )
    .map_err(io::Error::from)
}

/// Mounts a virtiofs share at its guest path (created if missing); a mounted share is left as is.
pub(super) fn mount_share(share: &Share) -> io::Result<()> {
    if is_mountpoint(Path::new(&share.guest_path)) {
        return Ok(());
    }
    mount_fs(share, "virtiofs", "virtiofs", "")
}

/// Mounts `share` as a filesystem of type `fstype` with `options`, creating its guest path; the
/// kernel module `module` is loaded when the type is not known yet.
pub(super) fn mount_fs(share: &Share, fstype: &str, module: &str, options: &str) -> io::Result<()> {
    let path = Path::new(&share.guest_path);
    std::fs::create_dir_all(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("failed to create {}: {e}", path.display()),
        )
    })?;
    let flags = if share.read_only {
        nix::mount::MsFlags::MS_RDONLY
    } else {
        nix::mount::MsFlags::empty()
    };
    let data = (!options.is_empty()).then_some(options);
    let mount = || nix::mount::mount(Some(share.tag.as_str()), path, Some(fstype), flags, data);
    let r = mount().or_else(|e| {
        if e == nix::errno::Errno::ENODEV {
            // The module may not be loaded yet.
            let _ = std::process::Command::new("modprobe").arg(module).status();
            mount()
        } else {
            Err(e)
        }
    });
    r.map_err(|e| {
        io::Error::other(format!(
            "failed to mount share {} ({fstype}) at {}: {e}",
            share.tag,
            path.display()
        ))
    })?;
    tracing::info!(tag = share.tag, fstype, path = %path.display(), "share mounted");
    Ok(())
}

pub(super) fn is_mountpoint(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

/// `/proc/meminfo`'s totals, for the host's `berth status`.
pub(super) fn memory() -> Option<berth_agent_proto::GuestMemory> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// The data root's filesystem, for the host's `berth disk usage`.
pub(super) fn disk(data_root: &std::path::Path) -> Option<berth_agent_proto::GuestDisk> {
    let s = nix::sys::statvfs::statvfs(data_root)
        .inspect_err(|e| tracing::warn!(path = %data_root.display(), error = %e, "statvfs failed"))
        .ok()?;
    let block = s.fragment_size();
    Some(berth_agent_proto::GuestDisk {
        total_bytes: s.blocks() * block,
        available_bytes: s.blocks_available() * block,
    })
}

fn parse_meminfo(text: &str) -> Option<berth_agent_proto::GuestMemory> {
    let kib = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(berth_agent_proto::GuestMemory {
        total_kib: kib("MemTotal")?,
        available_kib: kib("MemAvailable")?,
        free_kib: kib("MemFree")?,
    })
}

#[cfg(test)]
mod memory_tests {
    #[test]
    fn meminfo_is_parsed() {
        let m = super::parse_meminfo(
            "MemTotal:        1001232 kB\nMemFree:          850000 kB\nMemAvailable:     900000 kB\n",
        )
        .unwrap();
        assert_eq!(
            (m.total_kib, m.available_kib, m.free_kib),
            (1001232, 900000, 850000)
        );
    }

    #[test]
    fn data_root_filesystem_is_measured() {
        let d = super::disk(&std::env::temp_dir()).unwrap();
        assert!(
            d.total_bytes > 0 && d.available_bytes <= d.total_bytes,
            "{d:?}"
        );
        assert!(super::disk(std::path::Path::new("/no/such/dir")).is_none());
    }
}
