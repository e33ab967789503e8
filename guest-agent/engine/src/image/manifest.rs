//! Manifests and indexes (Docker schema 2 and OCI) and platform selection.

use serde::Deserialize;

use crate::{EngineError, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// The engine's own platform (`linux/amd64` here).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "arm" => "arm",
            "x86" => "386",
            other => other,
        };
        Self {
            architecture: arch.into(),
            os: "linux".into(),
            variant: (arch == "arm64").then(|| "v8".to_string()),
        }
    }

    /// Parses `os[/arch[/variant]]`; an empty string means the host platform.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Ok(Self::host());
        }
        let mut parts = s.split('/');
        let os = parts.next().unwrap_or_default().to_ascii_lowercase();
        let host = Self::host();
        let architecture = parts
            .next()
            .map(|a| match a.to_ascii_lowercase().as_str() {
                "x86_64" | "x86-64" => "amd64".to_string(),
                "aarch64" => "arm64".to_string(),
                other => other.to_string(),
            })
            .unwrap_or(host.architecture);
        let variant = parts.next().map(str::to_ascii_lowercase);
        if os.is_empty() || parts.next().is_some() {
            return Err(EngineError::invalid(format!(
                "invalid platform {s:?}: expected os[/arch[/variant]]"
            )));
        }
        Ok(Self {
            architecture,
            os,
            variant,
        })
    }

    /// Whether an image for `other` runs as `self` asks (a variant only when asked for).
    pub fn matches(&self, other: &Platform) -> bool {
        let norm_variant = |p: &Platform| {
            p.variant
                .clone()
                .filter(|v| !(p.architecture == "arm64" && v == "v8"))
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || norm_variant(self) == norm_variant(other))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// A manifest or an index: which one is told by the media type or by `manifests`.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestDoc {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

impl ManifestDoc {
    pub fn parse(bytes: &[u8], content_type: &str) -> Result<Self> {
        let mut doc: Self = serde_json::from_slice(bytes)
            .map_err(|e| EngineError::invalid(format!("invalid manifest: {e}")))?;
        if doc.media_type.is_empty() {
            doc.media_type = content_type.to_string();
        }
        if doc.schema_version == 1 {
            return Err(EngineError::invalid(
                "unsupported manifest: Docker schema 1 images are not supported",
            ));
        }
        Ok(doc)
    }

    pub fn is_index(&self) -> bool {
        self.manifests.is_some() || self.media_type == DOCKER_LIST || self.media_type == OCI_INDEX
    }

    /// The manifest entry of an index for `want`.
    pub fn select(&self, want: &Platform) -> Result<&Descriptor> {
        let list = self.manifests.as_deref().unwrap_or_default();
        let candidates = list.iter().filter(|d| {
            d.platform.as_ref().is_some_and(|p| want.matches(p))
                && d.media_type != "application/vnd.oci.image.index.v1+json"
        });
        // Prefer an exact variant match, then the first match.
        let mut first = None;
        for d in candidates {
            if d.platform
                .as_ref()
                .is_some_and(|p| p.variant == want.variant)
            {
                return Ok(d);
            }
            first.get_or_insert(d);
        }
        first.ok_or_else(|| {
            EngineError::not_found(format!(
                "no matching manifest for {want} in the manifest list entries"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
      "manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:arm","size":1,
         "platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:armv7","size":1,
         "platform":{"architecture":"arm","os":"linux","variant":"v7"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:amd","size":1,
         "platform":{"architecture":"amd64","os":"linux"}}]}"#;

    #[test]
    fn index_selects_platform() {
        let doc = ManifestDoc::parse(INDEX.as_bytes(), "").unwrap();
        assert!(doc.is_index());
        let pick = |p: &str| {
            doc.select(&Platform::parse(p).unwrap())
                .map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64").unwrap(), "sha256:amd");
        assert_eq!(pick("linux/arm64").unwrap(), "sha256:arm");
        assert_eq!(pick("linux/arm/v7").unwrap(), "sha256:armv7");
        let e = pick("linux/s390x").unwrap_err();
        assert_eq!(
            e.message(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert_eq!(Platform::parse("").unwrap(), Platform::host());
    }

    #[test]
    fn docker_manifest_is_not_an_index() {
        let m = r#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":2},
                    "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:l","size":3}]}"#;
        let doc = ManifestDoc::parse(m.as_bytes(), DOCKER_MANIFEST).unwrap();
        assert!(!doc.is_index());
        assert_eq!(doc.layers.len(), 1);
        assert!(ManifestDoc::parse(br#"{"schemaVersion":1}"#, "").is_err());
    }
}
