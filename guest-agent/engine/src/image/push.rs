//! `docker push`: uploads the kept config and layer blobs, then the manifest (the one pulled,
//! or an OCI manifest made for images that came from `docker load`).

use std::collections::BTreeMap;

use berth_docker_api::auth::AuthConfig;
use berth_docker_api::progress::{ProgressDetail, ProgressMessage};
use bytes::Bytes;
use serde_json::json;

use super::manifest::{ManifestDoc, OCI_MANIFEST};
use super::progress::Progress;
use super::reference::Reference;
use super::store::{sha256_digest, ImageRecord};
use super::ImageService;
use crate::id::short;
use crate::registry::{Credentials, Repository};
use crate::{EngineError, Result};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The OCI layer media type for a stored blob, from its first bytes.
fn layer_media_type(head: &[u8]) -> &'static str {
    use crate::compression::Compression;
    match Compression::sniff(head) {
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        // Layers are stored as received; registries only take these three.
        Compression::None | Compression::Bzip2 | Compression::Xz => {
            "application/vnd.oci.image.layer.v1.tar"
        }
    }
}

impl ImageService {
    /// Pushes `name` (with `tag`, or every tag of its repository when `tag` is empty).
    pub async fn push(
        &self,
        name: &str,
        tag: &str,
        auth: Option<AuthConfig>,
        progress: Progress,
    ) -> Result<()> {
        let base = Reference::parse(name)?;
        let repo_name = base.name();
        let tags: Vec<Reference> = if !tag.is_empty() {
            vec![Reference::parse(&format!("{repo_name}:{tag}"))?]
        } else if base.tag.is_some() {
            vec![base.clone()]
        } else {
            let s = self.lock();
            s.tags
                .keys()
                .filter_map(|t| Reference::parse(t).ok())
                .filter(|r| r.name() == repo_name)
                .collect()
        };
        if tags.is_empty() {
            return Err(EngineError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                base.familiar_name()
            )));
        }
        // Check every tag before the stream starts, so that a missing one is a plain error.
        let mut work = Vec::new();
        for t in &tags {
            let rec = self.get(&t.to_string()).map_err(|_| {
                EngineError::not_found(format!(
                    "An image does not exist locally with the tag: {}",
                    t.familiar_name()
                ))
            })?;
            if rec.layer_blobs.len() != rec.layers.len() {
                return Err(EngineError::not_implemented(format!(
                    "image {} cannot be pushed: its layer blobs were not kept (pull it again)",
                    t.familiar()
                )));
            }
            work.push((t.clone(), rec));
        }
        let creds = auth.as_ref().and_then(Credentials::from_auth_config);
        let repo = self
            .registry
            .repository_for_push(&base.domain, &base.path, creds);
        progress.status(format!(
            "The push refers to repository [{}]",
            base.familiar_name()
        ));
        for (t, rec) in work {
            self.push_one(&repo, &t, &rec, &progress).await?;
        }
        Ok(())
    }

    async fn push_one(
        &self,
        repo: &Repository,
        t: &Reference,
        rec: &ImageRecord,
        progress: &Progress,
    ) -> Result<()> {
        // Top layer first, as dockerd lists them.
        for diff_id in rec.layers.iter().rev() {
            progress.with_id("Preparing", short(diff_id));
        }
        for (blob, diff_id) in rec.layer_blobs.iter().zip(&rec.layers).rev() {
            let id = short(diff_id);
            if repo.blob_exists(blob).await? {
                progress.with_id("Layer already exists", id);
                continue;
            }
            let data = self.read_blob_file(blob).await?;
            let size = data.len() as u64;
            progress.bytes("Pushing", id, 0, size);
            repo.upload_blob(blob, data).await?;
            progress.bytes("Pushing", id, size, size);
            progress.with_id("Pushed", id);
        }
        if !repo.blob_exists(&rec.id).await? {
            let config = self.read_blob_file(&rec.id).await?;
            repo.upload_blob(&rec.id, config).await?;
        }
        let (media_type, manifest) = self.manifest_for(rec).await?;
        let digest = sha256_digest(&manifest);
        let size = manifest.len();
        let tag = t.tag.clone().unwrap_or_else(|| "latest".into());
        repo.put_manifest(&tag, &media_type, manifest).await?;
        {
            let mut s = self.lock();
            if let Some(mut updated) = s.images.get(rec.hex()).cloned() {
                let rd = format!("{}@{digest}", t.name());
                if !updated.repo_digests.contains(&rd) {
                    updated.repo_digests.push(rd);
                    s.save_image(&updated)?;
                    s.images.insert(updated.hex().to_string(), updated);
                }
            }
        }
        progress.status(format!("{tag}: digest: {digest} size: {size}"));
        progress.send(ProgressMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(json!({"Tag": tag, "Digest": digest, "Size": size})),
            ..ProgressMessage::default()
        });
        self.events.publish(
            "image",
            "push",
            &t.familiar(),
            BTreeMap::from([("name".to_string(), t.familiar_name())]),
        );
        Ok(())
    }

    /// Reads a blob, refusing one whose content does not match its digest.
    async fn read_blob_file(&self, digest: &str) -> Result<Bytes> {
        let path = self.lock().blob_path(digest)?;
        let data = tokio::fs::read(&path)
            .await
            .map_err(|e| EngineError::from(e).context(format!("blob {digest}")))?;
        if sha256_digest(&data) != digest {
            return Err(EngineError::internal(format!("blob {digest} is corrupt")));
        }
        Ok(Bytes::from(data))
    }

    /// The stored manifest, or a new OCI manifest over the kept blobs.
    async fn manifest_for(&self, rec: &ImageRecord) -> Result<(String, Bytes)> {
        if let Some(d) = &rec.manifest {
            let data = self.lock().get_blob(d)?;
            let doc = ManifestDoc::parse(&data, "")?;
            let media_type = if doc.media_type.is_empty() {
                super::manifest::DOCKER_MANIFEST.to_string()
            } else {
                doc.media_type
            };
            return Ok((media_type, Bytes::from(data)));
        }
        let config_size = self.lock().get_blob(&rec.id)?.len();
        let mut layers = Vec::new();
        for blob in &rec.layer_blobs {
            let path = self.lock().blob_path(blob)?;
            let (size, head) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                use std::io::Read;
                let mut f = std::fs::File::open(&path)?;
                let mut head = [0u8; 4];
                let n = f.read(&mut head)?;
                Ok((f.metadata()?.len(), head[..n].to_vec()))
            })
            .await
            .map_err(|e| EngineError::internal(format!("reading blob: {e}")))??;
            layers.push(json!({
                "mediaType": layer_media_type(&head),
                "digest": blob,
                "size": size,
            }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": rec.id, "size": config_size},
            "layers": layers,
        });
        Ok((
            OCI_MANIFEST.to_string(),
            Bytes::from(serde_json::to_vec(&manifest)?),
        ))
    }
}
