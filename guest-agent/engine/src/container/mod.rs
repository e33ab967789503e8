//! Containers: records, lifecycle, logs, exec. (Owned by the containers work.)

use std::sync::Arc;

use crate::image::ImageService;
use crate::network::NetworkService;
use crate::volume::VolumeService;
use crate::{EngineConfig, EventBus, Result};

/// Container counts for `/info`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContainerCounts {
    pub total: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
}

pub struct ContainerService {
    #[allow(dead_code)]
    config: Arc<EngineConfig>,
    #[allow(dead_code)]
    events: EventBus,
    #[allow(dead_code)]
    images: Arc<ImageService>,
    #[allow(dead_code)]
    networks: Arc<NetworkService>,
    #[allow(dead_code)]
    volumes: Arc<VolumeService>,
}

impl ContainerService {
    pub async fn open(
        config: Arc<EngineConfig>,
        events: EventBus,
        images: Arc<ImageService>,
        networks: Arc<NetworkService>,
        volumes: Arc<VolumeService>,
    ) -> Result<Self> {
        Ok(Self {
            config,
            events,
            images,
            networks,
            volumes,
        })
    }

    /// Ids of containers (running or not) created from image `image_id` (`sha256:…`), so
    /// `docker rmi` can refuse with a conflict.
    pub async fn image_users(&self, _image_id: &str) -> Vec<String> {
        vec![]
    }

    pub async fn counts(&self) -> ContainerCounts {
        ContainerCounts::default()
    }

    /// `/system/df` container entries (`ContainerSummary` objects with `SizeRw`, `SizeRootFs`).
    pub async fn disk_usage(&self) -> Result<Vec<serde_json::Value>> {
        Ok(vec![])
    }
}
