//! What the rest of the engine asks of the containers: the users of an image or a volume
//! (refusals of `rmi` and `volume rm`), the counts of `/info` and the entries of `/system/df`.

use super::{view, Svc};
use crate::Result;

/// Container counts for `/info`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContainerCounts {
    pub total: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
}

impl Svc {
    /// Ids of containers (running or not) created from image `image_id` (`sha256:…`), so
    /// `docker rmi` can refuse with a conflict.
    pub async fn image_users(&self, image_id: &str) -> Vec<crate::image::ImageUser> {
        self.all()
            .into_iter()
            .filter_map(|c| {
                let st = c.snapshot();
                (st.record.image_id == image_id).then(|| crate::image::ImageUser {
                    id: c.id.clone(),
                    running: st.state.state.running,
                })
            })
            .collect()
    }

    /// Names of containers using volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| {
                c.snapshot()
                    .record
                    .mounts
                    .iter()
                    .any(|m| m.typ == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    pub async fn counts(&self) -> ContainerCounts {
        let mut n = ContainerCounts::default();
        for c in self.all() {
            let s = c.snapshot().state.state;
            n.total += 1;
            if s.paused {
                n.paused += 1;
            } else if s.running {
                n.running += 1;
            } else {
                n.stopped += 1;
            }
        }
        n
    }

    /// `/system/df` container entries (`ContainerSummary` objects with `SizeRw`, `SizeRootFs`).
    pub async fn disk_usage(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .all()
            .iter()
            .map(|c| view::summary(self, c, true))
            .collect())
    }
}
