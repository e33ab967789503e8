//! A read-only view of an image's merged filesystem, for what a build reads from images:
//! `COPY --from`, `--chown` names, whether a destination exists.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::mount::unmount;
use crate::Result;

/// The merged tree of some layers; unmounted (and its mount point removed) on drop.
pub struct ImageView {
    root: PathBuf,
    /// The mount point (or empty dir) we made, removed on drop.
    owned: Option<PathBuf>,
    mounted: bool,
}

impl ImageView {
    /// `layers` base first; `scratch` is a fresh directory path the view may create.
    pub fn open(layers: &[PathBuf], scratch: PathBuf) -> Result<Self> {
        match layers {
            [only] => Ok(Self {
                root: only.clone(),
                owned: None,
                mounted: false,
            }),
            _ => {
                std::fs::create_dir_all(&scratch)?;
                let mut view = Self {
                    root: scratch.clone(),
                    owned: Some(scratch),
                    mounted: false,
                };
                if layers.len() >= 2 {
                    let lower: Vec<String> = layers
                        .iter()
                        .rev()
                        .map(|p| p.display().to_string())
                        .collect();
                    let opts = format!("lowerdir={}", lower.join(":"));
                    mount(
                        Some("overlay"),
                        &view.root,
                        Some("overlay"),
                        MsFlags::MS_RDONLY,
                        Some(opts.as_str()),
                    )
                    .map_err(|e| {
                        crate::EngineError::internal(format!(
                            "mount image view at {}: {e}",
                            view.root.display()
                        ))
                    })?;
                    view.mounted = true;
                }
                Ok(view)
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` (absolute in the image) is a directory there.
    pub fn is_dir(&self, path: &str) -> bool {
        self.root.join(path.trim_start_matches('/')).is_dir()
    }

    /// The metadata of `path` when it is a directory in the image (a final symlink is not
    /// followed: a link to a directory gives `None`).
    pub fn dir_metadata(&self, path: &str) -> Option<std::fs::Metadata> {
        std::fs::symlink_metadata(self.root.join(path.trim_start_matches('/')))
            .ok()
            .filter(std::fs::Metadata::is_dir)
    }

    /// Whether `path` exists (without following a final symlink).
    pub fn exists(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.root.join(path.trim_start_matches('/'))).is_ok()
    }
}

impl Drop for ImageView {
    fn drop(&mut self) {
        if self.mounted {
            unmount(&self.root);
        }
        if let Some(d) = &self.owned {
            let _ = std::fs::remove_dir(d);
        }
    }
}
