//! `POST /commit`: a container's writable layer (its overlay upper directory) becomes a new
//! image on top of the container's image. The builder's `RUN` steps use the same path.

use std::sync::Arc;

use serde_json::{json, Value};

use super::Svc;
use crate::image::create::{apply_changes, ImageSpec};
use crate::image::diff::layer_tar_reader;
use crate::{EngineError, Result};

/// Keys of a container config that belong in an image config.
const IMAGE_CONFIG_KEYS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "Shell",
];

/// The image-config part of a container config (Docker's PascalCase JSON).
pub fn image_config_of(container_config: &Value) -> Value {
    let mut out = json!({});
    for k in IMAGE_CONFIG_KEYS {
        if let Some(v) = container_config.get(*k).filter(|v| !v.is_null()) {
            out[*k] = v.clone();
        }
    }
    out
}

/// `docker commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    /// Dockerfile-like `--change` instructions.
    pub changes: Vec<String>,
    /// A config given in the request body; its set fields override the container's.
    pub config: Option<Value>,
}

impl Svc {
    /// Makes an image from container `id`'s upper directory on top of `spec.parent` (blocking
    /// work on a blocking thread). Returns the image id.
    pub(crate) async fn commit_upper(&self, id: &str, spec: ImageSpec) -> Result<String> {
        let upper = self.paths(id).upper();
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || {
            images.create_image(spec, Some(layer_tar_reader(upper)))
        })
        .await
        .map_err(|e| EngineError::internal(format!("commit failed: {e}")))?
    }

    /// `POST /commit?container=…`. Returns the new image id.
    pub async fn commit(self: &Arc<Self>, key: &str, opts: CommitOptions) -> Result<String> {
        let c = self.get(key)?;
        let s = c.snapshot();
        let container_config = serde_json::to_value(&s.record.config)?;
        let mut config = image_config_of(&container_config);
        if let Some(Value::Object(over)) = &opts.config {
            for (k, v) in over {
                let empty = v.is_null()
                    || v.as_str().is_some_and(str::is_empty)
                    || v.as_array().is_some_and(Vec::is_empty)
                    || v.as_object().is_some_and(serde_json::Map::is_empty);
                if IMAGE_CONFIG_KEYS.contains(&k.as_str()) && !empty {
                    config[k.as_str()] = v.clone();
                }
            }
        }
        apply_changes(&mut config, &opts.changes)?;
        let pause = opts.pause && s.state.state.running && !s.state.state.paused;
        if pause {
            self.pause(&c.id, true).await?;
        }
        let created_by = std::iter::once(s.record.path.clone())
            .chain(s.record.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let spec = ImageSpec {
            parent: Some(s.record.image_id.clone()),
            config: Some(config),
            created_by,
            comment: opts.comment.clone(),
            author: opts.author.clone(),
            container: Some((c.id.clone(), container_config)),
        };
        // As with dockerd, the container stays paused until the image is tagged and the
        // commit event is out (events: pause, commit, unpause).
        let res = self.commit_upper(&c.id, spec).await.and_then(|image| {
            if !opts.repo.is_empty() {
                self.images.tag(&image, &opts.repo, &opts.tag)?;
            }
            let attrs = [
                ("comment", opts.comment.clone()),
                ("imageID", image.clone()),
            ];
            self.publish(&c, "commit", &attrs);
            Ok(image)
        });
        if pause {
            if let Err(e) = self.pause(&c.id, false).await {
                tracing::warn!(container = %c.id, error = %e, "unpause after commit failed");
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_image_fields_are_kept() {
        let c = json!({"Hostname": "abc", "Env": ["A=1"], "Cmd": ["sh"], "Image": "busybox",
                       "Labels": null, "WorkingDir": "/w"});
        assert_eq!(
            image_config_of(&c),
            json!({"Env": ["A=1"], "Cmd": ["sh"], "WorkingDir": "/w"})
        );
    }
}
