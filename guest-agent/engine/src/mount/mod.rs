//! Mounts: the container root filesystem's overlay and the [`Mounter`] seam in front of it.
//!
//! This module sits below `container`, `shim`, `volume` and `build`, which all mount or
//! unmount overlays; it depends on none of them. The engine itself only unmounts (a rootfs
//! after an exit or at `rm`): it asks through the [`Mounter`] injected at
//! [`crate::Engine::open_with`], so a test sees those calls without root. The mounts are made
//! by separate processes: the shim before `run` (through a [`Mounter`] too, always the
//! [`HostMounter`]: the seam of a fake shim is the shim itself) and the `docker cp` helper in
//! its own mount namespace; those, volume devices and a build's read-only image view call
//! [`overlay`] or `nix` directly, as they run the real thing by design.

pub mod overlay;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use overlay::{is_mounted, mount_overlay, unmount};

/// The overlay root filesystem the shim mounts before `create` and unmounts after exit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootfsMount {
    /// Lower layers, base first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

/// The mount calls the engine makes in its own process. Blocking: call from a blocking task.
pub trait Mounter: Send + Sync {
    /// Mounts the overlay `r` at `r.target` (no-op when something is mounted there).
    fn mount_overlay(&self, r: &RootfsMount) -> std::io::Result<()>;
    /// Unmounts whatever is mounted at `target`, lazily; nothing mounted is fine.
    fn unmount(&self, target: &Path);
}

/// The real mounts of this host ([`overlay`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct HostMounter;

impl Mounter for HostMounter {
    fn mount_overlay(&self, r: &RootfsMount) -> std::io::Result<()> {
        overlay::mount_overlay(r)
    }

    fn unmount(&self, target: &Path) {
        overlay::unmount(target);
    }
}
