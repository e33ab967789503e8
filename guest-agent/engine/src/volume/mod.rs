//! Named volumes. (Owned by the containers work.)

use std::sync::Arc;

use crate::{EngineConfig, EventBus, Result};

pub struct VolumeService {
    #[allow(dead_code)]
    config: Arc<EngineConfig>,
    #[allow(dead_code)]
    events: EventBus,
}

impl VolumeService {
    pub async fn open(config: Arc<EngineConfig>, events: EventBus) -> Result<Self> {
        Ok(Self { config, events })
    }

    /// `/system/df` volume entries (`Volume` objects with `UsageData`).
    pub async fn disk_usage(&self) -> Result<Vec<serde_json::Value>> {
        Ok(vec![])
    }
}
