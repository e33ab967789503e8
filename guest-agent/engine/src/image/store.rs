//! On-disk image state under `<data-root>/image/`:
//!
//! - `blobs/sha256/<hex>`: image configs and manifests, verified before they are written
//!   (temp file, fsync, rename).
//! - `layers/<diff-id hex>/`: one extracted layer per uncompressed digest, shared by images;
//!   filled in `layers/.tmp-*` and renamed into place when complete.
//! - `imagedb/<id hex>.json`: one [`ImageRecord`] per image.
//! - `repositories.json`: tag and digest references → image id.
//!
//! The in-memory [`Store`] mirrors these files; every change is written atomically first.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{read_json, write_atomic, write_json_atomic};
use crate::{EngineError, Result};

/// Metadata of one image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// Layer diff ids (`sha256:…`), base first.
    pub layers: Vec<String>,
    /// Unpacked size of each layer, same order.
    pub layer_sizes: Vec<u64>,
    /// `created` of the config (RFC 3339), empty when absent.
    pub created: String,
    /// When the image was last tagged here (RFC 3339), for `Metadata.LastTagTime`.
    #[serde(default)]
    pub last_tag_time: Option<String>,
    /// Manifest digests it was pulled by, per repository: `docker.io/library/busybox@sha256:…`.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Digest of the (platform) manifest stored in `blobs/`, for push and save.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Digests of the layer blobs as stored in `blobs/` (compressed as pulled, or the plain
    /// tar as loaded), same order as `layers`; empty for records written before blobs were kept.
    #[serde(default)]
    pub layer_blobs: Vec<String>,
    /// The image it was built or committed on (`sha256:…`); hides untagged build steps from
    /// `docker images` and is inspect's `Parent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl ImageRecord {
    pub fn size(&self) -> u64 {
        self.layer_sizes.iter().sum()
    }
    pub fn hex(&self) -> &str {
        self.id.strip_prefix("sha256:").unwrap_or(&self.id)
    }
}

/// The image store's paths and in-memory index.
pub struct Store {
    root: PathBuf,
    /// By id hex.
    pub images: BTreeMap<String, ImageRecord>,
    /// Canonical tag reference (`docker.io/library/busybox:latest`) → image id (`sha256:…`).
    pub tags: BTreeMap<String, String>,
}

fn hex_of(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| EngineError::invalid(format!("unsupported digest {digest}")))
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl Store {
    /// Opens the store, creating its directories, loading records and dropping leftovers of
    /// interrupted extractions.
    pub fn open(root: PathBuf) -> Result<Self> {
        for d in ["blobs/sha256", "imagedb"] {
            fs::create_dir_all(root.join(d))?;
        }
        crate::fsutil::create_hierarchy_root(&root.join("layers"))?;
        for dir in ["layers", "blobs/sha256"] {
            for e in fs::read_dir(root.join(dir))? {
                let e = e?;
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    tracing::info!(path = %e.path().display(), "removing interrupted write");
                    let p = e.path();
                    let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
                }
            }
        }
        for dir in ["", "imagedb", "blobs/sha256"] {
            crate::fsutil::remove_interrupted_writes(&root.join(dir));
        }
        let mut images = BTreeMap::new();
        for e in fs::read_dir(root.join("imagedb"))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "json") {
                match read_json::<ImageRecord>(&p) {
                    Ok(Some(r)) => {
                        images.insert(r.hex().to_string(), r);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(path = %p.display(), error = %e, "bad image record skipped")
                    }
                }
            }
        }
        let tags: BTreeMap<String, String> =
            crate::fsutil::read_json_or_set_aside(&root.join("repositories.json"))?
                .unwrap_or_default();
        let tags = tags
            .into_iter()
            .filter(|(_, id)| images.contains_key(id.strip_prefix("sha256:").unwrap_or(id)))
            .collect();
        Ok(Self { root, images, tags })
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(hex_of(digest)?))
    }

    /// Directory of the layer with this diff id.
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(hex_of(diff_id)?))
    }

    /// Fresh temp directory for an extraction, on the same filesystem as the layers.
    pub fn layer_tmp_dir(&self) -> Result<PathBuf> {
        let p = self
            .root
            .join("layers")
            .join(format!(".tmp-{}", crate::id::new_id()));
        fs::create_dir(&p)?;
        Ok(p)
    }

    /// A writer for a blob whose digest is checked by the caller before [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = self
            .root
            .join("blobs/sha256")
            .join(format!(".tmp-{}", crate::id::new_id()));
        let file = std::io::BufWriter::with_capacity(256 * 1024, fs::File::create(&tmp)?);
        Ok(BlobWriter {
            tmp,
            file: Some(file),
        })
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_dir(diff_id).is_ok_and(|d| d.is_dir())
    }

    /// Writes a blob after checking that `data` hashes to `digest`.
    pub fn put_blob(&self, digest: &str, data: &[u8]) -> Result<()> {
        let actual = sha256_digest(data);
        if actual != digest {
            return Err(EngineError::invalid(format!(
                "digest mismatch for {digest}: got {actual}"
            )));
        }
        let p = self.blob_path(digest)?;
        if !p.exists() {
            write_atomic(&p, data)?;
        }
        Ok(())
    }

    /// Reads a blob back, refusing one whose content no longer matches its name.
    pub fn get_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let data = fs::read(self.blob_path(digest)?)?;
        if sha256_digest(&data) != digest {
            return Err(EngineError::internal(format!("blob {digest} is corrupt")));
        }
        Ok(data)
    }

    pub fn save_image(&self, rec: &ImageRecord) -> Result<()> {
        write_json_atomic(&self.record_path(rec.hex()), rec)?;
        Ok(())
    }

    fn record_path(&self, hex: &str) -> PathBuf {
        self.root.join("imagedb").join(format!("{hex}.json"))
    }

    pub fn save_tags(&self) -> Result<()> {
        write_json_atomic(&self.root.join("repositories.json"), &self.tags)?;
        Ok(())
    }

    /// Forgets an image: its record, its config blob, and the layers no other image uses.
    /// Returns the directories to delete; the caller removes them outside the lock.
    pub fn remove_image(&mut self, hex: &str) -> Result<Vec<PathBuf>> {
        let Some(rec) = self.images.remove(hex) else {
            return Ok(vec![]);
        };
        self.tags.retain(|_, id| id != &rec.id);
        self.save_tags()?;
        match fs::remove_file(self.record_path(hex)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let _ = fs::remove_file(self.blob_path(&rec.id)?);
        let blobs = rec.manifest.iter().chain(&rec.layer_blobs);
        for b in blobs {
            let used = self
                .images
                .values()
                .any(|o| o.manifest.as_ref() == Some(b) || o.layer_blobs.contains(b));
            if !used {
                let _ = fs::remove_file(self.blob_path(b)?);
            }
        }
        let mut doomed = Vec::new();
        for layer in &rec.layers {
            let used = self.images.values().any(|o| o.layers.contains(layer));
            if !used
                && !doomed
                    .iter()
                    .any(|d: &PathBuf| d.ends_with(hex_of(layer).unwrap_or("")))
            {
                let dir = self.layer_dir(layer)?;
                // Move it aside first so a half-deleted layer is never taken for a whole one.
                let trash = self
                    .root
                    .join("layers")
                    .join(format!(".tmp-{}", crate::id::new_id()));
                if fs::rename(&dir, &trash).is_ok() {
                    doomed.push(trash);
                }
            }
        }
        Ok(doomed)
    }
}

impl Store {
    /// Removes layer directories and blobs no image record refers to (leftovers of failed or
    /// interrupted pulls). Only safe while no pull, load or create is running. Layer
    /// directories are renamed aside and returned for the caller to delete.
    pub fn gc_orphans(&mut self) -> Result<Vec<PathBuf>> {
        let mut layers = std::collections::HashSet::new();
        let mut blobs = std::collections::HashSet::new();
        for r in self.images.values() {
            layers.extend(
                r.layers
                    .iter()
                    .map(|l| l.trim_start_matches("sha256:").to_string()),
            );
            blobs.insert(r.hex().to_string());
            blobs.extend(
                r.manifest
                    .iter()
                    .map(|m| m.trim_start_matches("sha256:").to_string()),
            );
            blobs.extend(
                r.layer_blobs
                    .iter()
                    .map(|b| b.trim_start_matches("sha256:").to_string()),
            );
        }
        let mut doomed = Vec::new();
        for e in fs::read_dir(self.root.join("layers"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || layers.contains(&name) {
                continue;
            }
            let trash = self
                .root
                .join("layers")
                .join(format!(".tmp-{}", crate::id::new_id()));
            if fs::rename(e.path(), &trash).is_ok() {
                tracing::info!(layer = %name, "removing unreferenced layer");
                doomed.push(trash);
            }
        }
        for e in fs::read_dir(self.root.join("blobs/sha256"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && !blobs.contains(&name) {
                tracing::info!(blob = %name, "removing unreferenced blob");
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(doomed)
    }
}

/// A blob being written: temp file in the blob directory, fsynced and renamed by
/// [`BlobWriter::commit`] once its digest was checked; removed when dropped uncommitted.
pub struct BlobWriter {
    tmp: PathBuf,
    file: Option<std::io::BufWriter<fs::File>>,
}

impl std::io::Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("blob already committed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), std::io::Write::flush)
    }
}

impl BlobWriter {
    /// Makes the blob visible as `dest` (its verified digest's path) after an fsync.
    pub fn commit(self, dest: &Path) -> Result<()> {
        self.finish(dest, true)
    }

    /// Like [`BlobWriter::commit`] but leaves the fsync to [`sync_files`] later, off a pull's
    /// critical path. Readers of such blobs verify their digest ([`verify_file`]).
    pub fn commit_unsynced(self, dest: &Path) -> Result<()> {
        self.finish(dest, false)
    }

    fn finish(mut self, dest: &Path, durable: bool) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| EngineError::internal("blob already committed"))?;
        let result = (|| -> Result<()> {
            let file = file
                .into_inner()
                .map_err(|e| EngineError::from(e.into_error()))?;
            if durable {
                file.sync_all()?;
            }
            fs::rename(&self.tmp, dest)?;
            if durable {
                if let Some(dir) = dest.parent() {
                    crate::fsutil::sync_dir(dir)?;
                }
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }
}

/// fsyncs files written with [`BlobWriter::commit_unsynced`] (best effort, logged).
pub fn sync_files(paths: &[PathBuf]) {
    for p in paths {
        if let Err(e) = fs::File::open(p).and_then(|f| f.sync_all()) {
            tracing::debug!(path = %p.display(), error = %e, "blob fsync failed");
        }
    }
    if let Some(dir) = paths.first().and_then(|p| p.parent()) {
        let _ = crate::fsutil::sync_dir(dir);
    }
}

/// Checks that the file at `path` hashes to `digest`.
pub fn verify_file(path: &Path, digest: &str) -> Result<()> {
    let mut f =
        fs::File::open(path).map_err(|e| EngineError::from(e).context(format!("blob {digest}")))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    let got = format!("sha256:{}", hex::encode(h.finalize()));
    if got != digest {
        return Err(EngineError::internal(format!(
            "blob {digest} is corrupt (content hashes to {got})"
        )));
    }
    Ok(())
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Moves a completed extraction into place; `false` when another pull got there first.
pub fn commit_layer(tmp: &Path, dest: &Path) -> Result<bool> {
    match fs::rename(tmp, dest) {
        Ok(()) => Ok(true),
        Err(e) if dest.is_dir() => {
            tracing::debug!(error = %e, dest = %dest.display(), "layer already present");
            let _ = fs::remove_dir_all(tmp);
            Ok(false)
        }
        Err(e) => Err(EngineError::from(e).context(format!("committing layer {}", dest.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(config: &[u8], layers: &[&str]) -> ImageRecord {
        ImageRecord {
            id: sha256_digest(config),
            layers: layers.iter().map(|l| l.to_string()).collect(),
            layer_sizes: layers.iter().map(|_| 10).collect(),
            created: String::new(),
            last_tag_time: None,
            repo_digests: vec![],
            manifest: None,
            layer_blobs: vec![],
            parent: None,
        }
    }

    #[test]
    fn records_and_tags_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().to_path_buf()).unwrap();
        let cfg = br#"{"architecture":"amd64"}"#;
        let rec = record(cfg, &[&format!("sha256:{}", "1".repeat(64))]);
        s.put_blob(&rec.id, cfg).unwrap();
        s.save_image(&rec).unwrap();
        s.images.insert(rec.hex().to_string(), rec.clone());
        s.tags
            .insert("docker.io/library/x:latest".into(), rec.id.clone());
        s.save_tags().unwrap();
        let s2 = Store::open(dir.path().to_path_buf()).unwrap();
        assert_eq!(s2.images.get(rec.hex()), Some(&rec));
        assert_eq!(s2.tags.len(), 1);
        assert_eq!(s2.get_blob(&rec.id).unwrap(), cfg);
    }

    #[test]
    fn blobs_with_wrong_digest_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().to_path_buf()).unwrap();
        let d = sha256_digest(b"a");
        assert!(s.put_blob(&d, b"b").is_err());
        assert!(!s.blob_path(&d).unwrap().exists());
        s.put_blob(&d, b"a").unwrap();
        fs::write(s.blob_path(&d).unwrap(), b"tampered").unwrap();
        assert!(s.get_blob(&d).is_err());
    }

    #[test]
    fn blob_writer_commits_or_leaves_nothing() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().to_path_buf()).unwrap();
        let d = sha256_digest(b"layer");
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"layer").unwrap();
        w.commit_unsynced(&s.blob_path(&d).unwrap()).unwrap();
        verify_file(&s.blob_path(&d).unwrap(), &d).unwrap();
        assert!(verify_file(&s.blob_path(&d).unwrap(), &sha256_digest(b"x")).is_err());
        // Dropped before commit: the temp file goes away.
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"half").unwrap();
        drop(w);
        let names: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn shared_layers_stay_until_last_user_goes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().to_path_buf()).unwrap();
        let (l1, l2) = (
            format!("sha256:{}", "1".repeat(64)),
            format!("sha256:{}", "2".repeat(64)),
        );
        for l in [&l1, &l2] {
            fs::create_dir_all(s.layer_dir(l).unwrap()).unwrap();
        }
        let a = record(b"a", &[&l1]);
        let b = record(b"b", &[&l1, &l2]);
        for r in [&a, &b] {
            s.save_image(r).unwrap();
            s.images.insert(r.hex().to_string(), r.clone());
        }
        let doomed = s.remove_image(b.hex()).unwrap();
        assert_eq!(doomed.len(), 1);
        assert!(s.has_layer(&l1) && !s.has_layer(&l2));
        let doomed = s.remove_image(a.hex()).unwrap();
        assert_eq!(doomed.len(), 1);
        assert!(!s.has_layer(&l1));
        // Leftovers of a failed pull go at the next collection.
        let orphan = format!("sha256:{}", "3".repeat(64));
        fs::create_dir_all(s.layer_dir(&orphan).unwrap()).unwrap();
        s.put_blob(&sha256_digest(b"stray"), b"stray").unwrap();
        let doomed = s.gc_orphans().unwrap();
        assert_eq!(doomed.len(), 1);
        assert!(!s.has_layer(&orphan) && !s.has_blob(&sha256_digest(b"stray")));
        // Interrupted work is cleaned up on open.
        let tmp = s.layer_tmp_dir().unwrap();
        drop(s);
        Store::open(dir.path().to_path_buf()).unwrap();
        assert!(!tmp.exists());
    }
}
