//! The fake [`Mounter`]: records, mounts nothing.

use std::path::{Path, PathBuf};

use berth_engine::mount::{Mounter, RootfsMount};

use super::{Call, Log};

/// One mount call the engine made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountCall {
    Overlay { target: PathBuf },
    Unmount { target: PathBuf },
}

pub(super) struct FakeMounter {
    log: Log,
}

impl FakeMounter {
    pub(super) fn new(log: Log) -> Self {
        Self { log }
    }
}

impl Mounter for FakeMounter {
    fn mount_overlay(&self, r: &RootfsMount) -> std::io::Result<()> {
        self.log.push(Call::Mount(MountCall::Overlay {
            target: r.target.clone(),
        }));
        Ok(())
    }

    fn unmount(&self, target: &Path) {
        self.log.push(Call::Mount(MountCall::Unmount {
            target: target.to_path_buf(),
        }));
    }
}
