//! Images: content store, metadata, tags, layer snapshots. (Owned by the images work.)

use std::path::PathBuf;
use std::sync::Arc;

use crate::{EngineConfig, EventBus, Result};

/// An image resolved for running a container.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<hex>` of the image config.
    pub id: String,
    /// The reference as the user wrote it (`busybox`, `busybox:latest`, an id prefix).
    pub reference: String,
    /// The image's runtime config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, …).
    pub config: oci_spec::image::Config,
    /// Extracted layer directories, lowest (base) first, ready as overlayfs lowerdirs.
    pub layer_dirs: Vec<PathBuf>,
}

pub struct ImageService {
    #[allow(dead_code)]
    config: Arc<EngineConfig>,
    #[allow(dead_code)]
    events: EventBus,
}

impl ImageService {
    pub async fn open(config: Arc<EngineConfig>, events: EventBus) -> Result<Self> {
        Ok(Self { config, events })
    }

    /// Resolves a reference (name[:tag], name@digest, full or short id) to a local image, or
    /// `NotFound` with `No such image: <reference>`.
    /// Number of images, for `/info`.
    pub async fn count(&self) -> usize {
        0
    }

    /// `/system/df` image entries (`ImageSummary` objects with `Size`, `SharedSize`, `Containers`).
    pub async fn disk_usage(&self) -> Result<Vec<serde_json::Value>> {
        Ok(vec![])
    }

    pub async fn resolve(&self, reference: &str) -> Result<ResolvedImage> {
        Err(crate::EngineError::not_found(format!(
            "No such image: {reference}"
        )))
    }
}
