//! `GET /distribution/{name}/json`: what the registry has under a name (the top manifest's
//! descriptor and its platforms) without pulling. buildx's docker driver asks for it after a
//! `--push` to report the pushed digest.

use berth_docker_api::auth::AuthConfig;
use serde_json::{json, Value};

use super::manifest::{ManifestDoc, Platform};
use super::reference::Reference;
use super::store::sha256_digest;
use super::ImageService;
use crate::registry::Credentials;
use crate::{EngineError, Result};

fn platform_json(p: &Platform) -> Value {
    let mut v = json!({"architecture": p.architecture, "os": p.os});
    if let Some(variant) = &p.variant {
        v["variant"] = json!(variant);
    }
    v
}

impl ImageService {
    /// The registry's descriptor of `reference` and the platforms it serves.
    pub async fn distribution_inspect(
        &self,
        reference: &str,
        auth: Option<AuthConfig>,
    ) -> Result<Value> {
        let r = Reference::parse(reference)?.with_default_tag();
        let creds = auth.as_ref().and_then(Credentials::from_auth_config);
        let repo = self.registry.repository(&r.domain, &r.path, creds);
        let m = repo
            .manifest(r.tag_or_digest())
            .await
            .map_err(|e| e.into_engine())?;
        let doc = ManifestDoc::parse(&m.bytes, &m.media_type)?;
        let platforms: Vec<Value> = if doc.is_index() {
            doc.manifests
                .iter()
                .flatten()
                .filter_map(|d| d.platform.as_ref().map(platform_json))
                .collect()
        } else if let Some(config) = &doc.config {
            let bytes = repo.blob_bytes(&config.digest).await?;
            let p: Platform = serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::invalid(format!("invalid image config {}: {e}", config.digest))
            })?;
            vec![platform_json(&p)]
        } else {
            vec![]
        };
        let media_type = if m.media_type.is_empty() {
            doc.media_type.clone()
        } else {
            m.media_type.clone()
        };
        Ok(json!({
            "Descriptor": {
                "mediaType": media_type,
                "digest": sha256_digest(&m.bytes),
                "size": m.bytes.len(),
            },
            "Platforms": platforms,
        }))
    }
}
