//! Image models: `GET /images/json`, `GET /images/{name}/json`, `…/history`, `DELETE /images/{name}`,
//! `POST /images/prune`. Every field dockerd sends is always present (clients index zero values).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::container::Empty;

/// One entry of `GET /images/json` (`ImageSummary`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: i64,
    pub shared_size: i64,
    pub virtual_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// The image's default container config (`Config` and `ContainerConfig` in inspect): the same
/// legacy container-config shape as a container's, zero values included.
pub type ImageConfig = crate::container::ContainerConfig;

/// `GraphDriver` of inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// `RootFS` of inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub typ: String,
    pub layers: Vec<String>,
}

/// `Metadata` of inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageMetadata {
    pub last_tag_time: String,
}

/// `GET /images/{name}/json` (`ImageInspect`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub container: String,
    pub container_config: ImageConfig,
    pub docker_version: String,
    pub author: String,
    pub config: ImageConfig,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub size: i64,
    pub virtual_size: i64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: ImageMetadata,
}

/// One entry of `GET /images/{name}/history`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub comment: String,
}

/// One entry of `DELETE /images/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImagesPruneReport {
    pub images_deleted: Option<Vec<DeleteItem>>,
    pub space_reclaimed: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_items_use_dockers_keys() {
        let v = serde_json::to_value(vec![
            DeleteItem::Untagged("busybox:latest".into()),
            DeleteItem::Deleted("sha256:ab".into()),
        ])
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"Untagged":"busybox:latest"},{"Deleted":"sha256:ab"}])
        );
    }

    #[test]
    fn inspect_has_zero_valued_fields() {
        let v = serde_json::to_value(ImageInspect::default()).unwrap();
        for k in [
            "RepoTags",
            "Parent",
            "Config",
            "GraphDriver",
            "RootFS",
            "Metadata",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(v["Config"]["Cmd"].is_null());
        assert_eq!(v["Config"]["WorkingDir"], "");
    }
}
