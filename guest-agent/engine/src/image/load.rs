//! `docker load`: a docker-archive tarball (`manifest.json` + config and layer files, as
//! `docker save` and the fixtures write it). The archive is unpacked with the same safe
//! unpacker as layers into a scratch directory, then each layer is verified against the
//! config's diff ids and unpacked into its own layer directory.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use super::layer::{self, TeeReader};
use super::pull::{ConfigHead, NewImage};
use super::reference::Reference;
use super::store::{commit_layer, sha256_digest};
use super::unpack::unpack;
use super::ImageService;
use crate::{EngineError, Result};

/// One entry of `manifest.json`.
#[derive(Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Opens `rel` inside the scratch directory without following symlinks out of it.
fn open_inside(root: &Path, rel: &str) -> Result<File> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(EngineError::invalid(format!(
            "invalid path in archive: {rel}"
        )));
    }
    let full = root.join(p);
    let meta = fs::symlink_metadata(&full)
        .map_err(|_| EngineError::invalid(format!("archive lacks {rel}")))?;
    if !meta.is_file() {
        return Err(EngineError::invalid(format!(
            "{rel} in archive is not a file"
        )));
    }
    Ok(File::open(full)?)
}

impl ImageService {
    /// Loads every image of a docker-archive read from `input` (blocking). Returns the
    /// `Loaded image: …` lines. Layers of an image that failed to load are removed again;
    /// images loaded before it stay, as with dockerd.
    pub fn load_archive(&self, input: impl Read) -> Result<Vec<String>> {
        let result = {
            let _busy = self.busy();
            let spool = self.lock().layer_tmp_dir()?;
            let result = self.load_from(input, &spool);
            if let Err(e) = fs::remove_dir_all(&spool) {
                tracing::warn!(path = %spool.display(), error = %e, "load scratch not removed");
            }
            result
        };
        if result.is_err() {
            self.collect_orphans();
        }
        result
    }

    fn load_from(&self, input: impl Read, spool: &Path) -> Result<Vec<String>> {
        // dockerd also takes the archive compressed (`docker save | gzip`).
        let input = crate::compression::decoder(BufReader::new(input))?;
        // dockerd's words, which clients show.
        unpack(input, spool).map_err(|e| e.context("Error processing tar file"))?;
        let manifest = fs::read(spool.join("manifest.json")).map_err(|_| {
            EngineError::invalid(
                "image archive has no manifest.json (only docker-archive is supported)",
            )
        })?;
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&manifest)
            .map_err(|e| EngineError::invalid(format!("invalid manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            let mut config = Vec::new();
            open_inside(spool, &entry.config)?.read_to_end(&mut config)?;
            let id = sha256_digest(&config);
            let head: ConfigHead = serde_json::from_slice(&config)
                .map_err(|e| EngineError::invalid(format!("invalid image config {id}: {e}")))?;
            let diff_ids = &head.rootfs.diff_ids;
            if diff_ids.len() != entry.layers.len() {
                return Err(EngineError::invalid(format!(
                    "image {id} lists {} layers but the archive has {}",
                    diff_ids.len(),
                    entry.layers.len()
                )));
            }
            let mut sizes = Vec::with_capacity(diff_ids.len());
            let mut blobs = Vec::with_capacity(diff_ids.len());
            let mut known = self.layer_sizes();
            for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
                let (present, dest) = {
                    let s = self.lock();
                    (s.has_layer(diff_id), s.layer_dir(diff_id)?)
                };
                if present {
                    sizes.push(known.get(diff_id).copied().unwrap_or(0));
                    // The archive's layer is the plain tar (diff id) or a compressed one we
                    // did not hash; keep a blob reference only for the plain-tar case.
                    blobs.push(diff_id.clone());
                    continue;
                }
                let (tmp, mut writer) = {
                    let s = self.lock();
                    (s.layer_tmp_dir()?, s.blob_writer()?)
                };
                let file = BufReader::new(open_inside(spool, path)?);
                let mut tee = TeeReader {
                    inner: file,
                    out: &mut writer,
                };
                let res = layer::extract(&mut tee, None, Some(diff_id), &tmp).and_then(|x| {
                    let blob_path = self.lock().blob_path(&x.blob_digest)?;
                    writer.commit(&blob_path)?;
                    commit_layer(&tmp, &dest)?;
                    Ok(x)
                });
                match res {
                    Ok(x) => {
                        known.insert(diff_id.clone(), x.stats.size);
                        sizes.push(x.stats.size);
                        blobs.push(x.blob_digest);
                    }
                    Err(e) => {
                        let _ = fs::remove_dir_all(&tmp);
                        return Err(e);
                    }
                }
            }
            let tags: Vec<Reference> = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse(t).map(Reference::with_default_tag))
                .collect::<Result<_>>()?;
            let canonical: Vec<String> = tags.iter().map(ToString::to_string).collect();
            self.commit_image(NewImage {
                id: &id,
                config: &config,
                head: &head,
                layer_sizes: &sizes,
                repo_digest: None,
                tags: &canonical,
                manifest: None,
                layer_blobs: blobs,
                parent: None,
            })?;
            if tags.is_empty() {
                out.push(format!("Loaded image ID: {id}"));
                self.event("load", &id, &id);
            }
            for t in &tags {
                out.push(format!("Loaded image: {}", t.familiar()));
                self.event("load", &id, &t.familiar());
            }
        }
        Ok(out)
    }
}
