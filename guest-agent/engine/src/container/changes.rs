//! `docker diff` (`GET /containers/{id}/changes`): what the container's writable layer (the
//! overlay's upper directory) adds, changes and deletes compared with its image's layers.
//!
//! An entry of the upper directory is `A` when no image layer has it, `C` when one does, `D`
//! when it is an overlay whiteout. Directories the kernel only copied up to hold a changed
//! child are reported when something below them is, or when their mode or owner changed; the
//! files the runtime creates as mount points (dockerd keeps them in its init layer) are left out.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_docker_api::files::FilesystemChange;

use super::Svc;
use crate::Result;

const MODIFIED: u8 = 0;
const ADDED: u8 = 1;
const DELETED: u8 = 2;

/// dockerd's init layer: mount points that never show up in a diff.
const INIT_PATHS: &[&str] = &[
    "/dev/pts",
    "/dev/shm",
    "/dev/console",
    "/proc",
    "/sys",
    "/.dockerenv",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/mtab",
];

impl Svc {
    pub async fn changes(self: &Arc<Self>, key: &str) -> Result<Vec<FilesystemChange>> {
        let c = self.get(key)?;
        let s = c.snapshot();
        let image = self.images.resolve(&s.record.image_id).await?;
        let upper = self.paths(&c.id).upper();
        let lower = image.layer_dirs.clone();
        tokio::task::spawn_blocking(move || diff(&upper, &lower))
            .await
            .map_err(|e| crate::EngineError::internal(format!("diff task failed: {e}")))
    }
}

/// The changes of `upper` over the layers `lower` (base first), sorted by path.
pub fn diff(upper: &Path, lower: &[PathBuf]) -> Vec<FilesystemChange> {
    let mut out = Vec::new();
    walk(upper, Path::new("/"), lower, false, &mut out);
    out.sort();
    out
}

/// The lower entry `rel` resolves to (top layer first), if the image has one.
fn in_lower(lower: &[PathBuf], rel: &Path) -> Option<std::fs::Metadata> {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    for layer in lower.iter().rev() {
        if let Ok(m) = std::fs::symlink_metadata(layer.join(rel)) {
            return (!is_whiteout(&m)).then_some(m);
        }
    }
    None
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Adds the changes below the upper directory `dir` (container path `at`); returns whether
/// any was added. `new` when `at` itself is new, so nothing below it can exist in the image.
fn walk(
    dir: &Path,
    at: &Path,
    lower: &[PathBuf],
    new: bool,
    out: &mut Vec<FilesystemChange>,
) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut any = false;
    for e in rd.flatten() {
        let path = at.join(e.file_name());
        let shown = path.to_string_lossy().into_owned();
        if INIT_PATHS.contains(&shown.as_str()) {
            continue;
        }
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        let change = |kind| FilesystemChange {
            path: shown.clone(),
            kind,
        };
        if is_whiteout(&m) {
            out.push(change(DELETED));
            any = true;
            continue;
        }
        let base = if new { None } else { in_lower(lower, &path) };
        if m.is_dir() {
            let below = walk(&e.path(), &path, lower, base.is_none(), out);
            let kind = match &base {
                None => Some(ADDED),
                Some(b) if below || !b.is_dir() || !same_owner_mode(b, &m) => Some(MODIFIED),
                Some(_) => None,
            };
            if let Some(k) = kind {
                out.push(change(k));
                any = true;
            }
            continue;
        }
        out.push(change(if base.is_some() { MODIFIED } else { ADDED }));
        any = true;
    }
    any
}

fn same_owner_mode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.mode() == b.mode() && a.uid() == b.uid() && a.gid() == b.gid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_deleted_and_copied_up_dirs() {
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("layer");
        let upper = d.path().join("upper");
        for p in ["etc", "usr/bin", "tmp"] {
            std::fs::create_dir_all(layer.join(p)).unwrap();
        }
        std::fs::write(layer.join("etc/passwd"), "a").unwrap();
        std::fs::write(layer.join("etc/motd"), "m").unwrap();
        std::fs::write(layer.join("usr/bin/x"), "x").unwrap();
        // Upper: etc/passwd changed, etc/motd deleted, new dir with a file, /etc/hosts from
        // the runtime, /usr copied up with a new child deep down.
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "b").unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        std::fs::create_dir_all(upper.join("new/sub")).unwrap();
        std::fs::write(upper.join("new/sub/f"), "f").unwrap();
        std::fs::create_dir_all(upper.join("usr/bin")).unwrap();
        std::fs::write(upper.join("usr/bin/y"), "y").unwrap();
        // Copied up only for a runtime mount point: not reported.
        std::fs::create_dir_all(upper.join("tmp")).unwrap();
        let got: Vec<(String, u8)> = diff(&upper, &[layer])
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        let want: Vec<(String, u8)> = [
            ("/etc", MODIFIED),
            ("/etc/motd", DELETED),
            ("/etc/passwd", MODIFIED),
            ("/new", ADDED),
            ("/new/sub", ADDED),
            ("/new/sub/f", ADDED),
            ("/usr", MODIFIED),
            ("/usr/bin", MODIFIED),
            ("/usr/bin/y", ADDED),
        ]
        .into_iter()
        .map(|(p, k)| (p.to_string(), k))
        .collect();
        assert_eq!(got, want);
    }
}
