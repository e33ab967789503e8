//! The overlay mount of a container's root filesystem and the host's mount table: the real
//! calls behind [`super::HostMounter`], also used directly where a separate process (the shim,
//! the `docker cp` helper) or a build's image view mounts.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::RootfsMount;

/// Longest mount data the kernel takes is a page; stay below it.
const MAX_OPTIONS: usize = 4000;

/// Builds the overlay options; relative to `base` when given.
fn options(r: &RootfsMount, base: Option<&Path>) -> String {
    let rel = |p: &Path| -> String {
        match base.and_then(|b| p.strip_prefix(b).ok()) {
            Some(x) => x.to_string_lossy().into_owned(),
            None => p.to_string_lossy().into_owned(),
        }
    };
    let lower: Vec<String> = r.lower.iter().rev().map(|p| rel(p)).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        r.upper.display(),
        r.work.display()
    )
}

fn common_parent(paths: &[PathBuf]) -> Option<PathBuf> {
    let first = paths.first()?.parent()?.to_path_buf();
    paths
        .iter()
        .all(|p| p.parent() == Some(first.as_path()))
        .then_some(first)
}

/// Mounts the overlay at `r.target`. With many layers the lowerdirs are given relative to
/// their common parent (the process changes directory there for the call), which keeps the
/// options under the page-size limit. Call only from a single-threaded process (the shim).
pub fn mount_overlay(r: &RootfsMount) -> std::io::Result<()> {
    std::fs::create_dir_all(&r.upper)?;
    std::fs::create_dir_all(&r.work)?;
    std::fs::create_dir_all(&r.target)?;
    if is_mounted(&r.target) {
        return Ok(());
    }
    let mut opts = options(r, None);
    let mut restore = None;
    if opts.len() > MAX_OPTIONS {
        if let Some(base) = common_parent(&r.lower) {
            opts = options(r, Some(&base));
            restore = Some(std::env::current_dir()?);
            std::env::set_current_dir(&base)?;
        }
    }
    let res = mount(
        Some("overlay"),
        &r.target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    );
    if let Some(d) = restore {
        std::env::set_current_dir(d)?;
    }
    res.map_err(|e| std::io::Error::other(format!("mount overlay at {}: {e}", r.target.display())))
}

/// Whether `path` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == want)
}

/// Unmounts the root filesystem if mounted (lazily, so a busy mount still goes away).
pub fn unmount(target: &Path) {
    while is_mounted(target) {
        if umount2(target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_put_top_layer_first_and_can_be_relative() {
        let r = RootfsMount {
            lower: vec!["/l/a".into(), "/l/b".into()],
            upper: "/c/u".into(),
            work: "/c/w".into(),
            target: "/c/m".into(),
        };
        assert_eq!(
            options(&r, None),
            "lowerdir=/l/b:/l/a,upperdir=/c/u,workdir=/c/w"
        );
        let base = common_parent(&r.lower).unwrap();
        assert_eq!(
            options(&r, Some(&base)),
            "lowerdir=b:a,upperdir=/c/u,workdir=/c/w"
        );
    }
}
