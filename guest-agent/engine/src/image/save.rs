//! `docker save`: writes a docker-archive (`manifest.json`, the config and the layer blobs as
//! kept at pull or load time) that `docker load` (ours and dockerd's) reads back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc::Sender;

use super::reference::Reference;
use super::ImageService;
use crate::{EngineError, Result};

/// One entry of `manifest.json`.
#[derive(Serialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Sends what is written to an async receiver in chunks (the HTTP body).
pub struct ChannelWriter {
    tx: Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    pub fn new(tx: Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

impl ImageService {
    /// Checks that every name resolves and can be saved; returns the manifest entries.
    fn save_plan(&self, names: &[String]) -> Result<Vec<(ArchiveEntryPlan, Vec<String>)>> {
        let mut by_id: BTreeMap<String, (ArchiveEntryPlan, Vec<String>)> = BTreeMap::new();
        for name in names {
            let rec = self.get(name)?;
            if rec.layer_blobs.len() != rec.layers.len() {
                return Err(EngineError::not_implemented(format!(
                    "image {name} cannot be saved: its layer blobs were not kept (pull it again)"
                )));
            }
            let entry = by_id.entry(rec.id.clone()).or_insert_with(|| {
                (
                    ArchiveEntryPlan {
                        config: rec.id.clone(),
                        layers: rec.layer_blobs.clone(),
                    },
                    vec![],
                )
            });
            // A name that is a tag is saved with it; an id saves the image untagged.
            if let Ok(r) = Reference::parse(name) {
                let canonical = r.with_default_tag();
                let is_tag = self.lock().tags.get(&canonical.to_string()) == Some(&rec.id);
                if is_tag && canonical.digest.is_none() {
                    let fam = canonical.familiar();
                    if !entry.1.contains(&fam) {
                        entry.1.push(fam);
                    }
                }
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// Writes the archive of `names` to `out` (blocking). Fails before writing anything when
    /// a name is unknown or cannot be saved.
    pub fn save_archive(&self, names: &[String], out: impl Write) -> Result<()> {
        let plan = self.save_plan(names)?;
        let mut tar = tar::Builder::new(out);
        let mut written = std::collections::HashSet::new();
        let mut manifest = Vec::new();
        for (entry, tags) in &plan {
            for digest in std::iter::once(&entry.config).chain(&entry.layers) {
                if !written.insert(digest.clone()) {
                    continue;
                }
                let path = self.lock().blob_path(digest)?;
                super::store::verify_file(&path, digest)?;
                let file = File::open(&path)
                    .map_err(|e| EngineError::from(e).context(format!("blob {digest}")))?;
                let mut h = tar::Header::new_ustar();
                h.set_size(file.metadata()?.len());
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut h, blob_name(digest), file)?;
            }
            manifest.push(ArchiveEntry {
                config: blob_name(&entry.config),
                repo_tags: (!tags.is_empty()).then(|| tags.clone()),
                layers: entry.layers.iter().map(|l| blob_name(l)).collect(),
            });
        }
        let data = serde_json::to_vec(&manifest)?;
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, "manifest.json", &data[..])?;
        tar.into_inner()?.flush()?;
        Ok(())
    }

    /// Resolves every name first so that an unknown one is a plain 404 before streaming.
    pub fn check_saveable(&self, names: &[String]) -> Result<()> {
        self.save_plan(names).map(|_| ())
    }
}

/// What one image contributes to the archive.
struct ArchiveEntryPlan {
    config: String,
    layers: Vec<String>,
}
