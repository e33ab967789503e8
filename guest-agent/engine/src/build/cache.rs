//! The build cache: step key → image id, in `<data-root>/build/cache.json`.
//!
//! A step's key hashes its parent (the previous step's key, or the base image's id), its
//! history text, the image config it produces and, for `COPY`/`ADD`, the checksum of the
//! copied content, so a hit yields exactly the image the step would make. Entries whose image
//! is gone are ignored (and dropped on the next write).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fsutil::{read_json, write_json_atomic};
use crate::Result;

/// Serialises read-modify-write of the cache file between concurrent builds.
static LOCK: Mutex<()> = Mutex::new(());

pub struct BuildCache {
    path: PathBuf,
}

/// The key of a step.
pub fn step_key(parent: Option<&str>, created_by: &str, config: &Value, content: &str) -> String {
    let mut h = Sha256::new();
    let doc = serde_json::json!([parent, created_by, config, content]);
    h.update(doc.to_string().as_bytes());
    hex::encode(h.finalize())
}

impl BuildCache {
    pub fn new(data_root: &std::path::Path) -> Self {
        Self {
            path: data_root.join("build").join("cache.json"),
        }
    }

    fn load(&self) -> BTreeMap<String, String> {
        read_json(&self.path).ok().flatten().unwrap_or_default()
    }

    /// The image recorded for `key`, if `exists` still says it is there.
    pub fn get(&self, key: &str, exists: impl Fn(&str) -> bool) -> Option<String> {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.load().get(key).filter(|id| exists(id)).cloned()
    }

    /// The keys recorded for each image id (what an inline cache record names).
    pub fn keys_by_image(&self) -> BTreeMap<String, Vec<String>> {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, id) in self.load() {
            out.entry(id).or_default().push(key);
        }
        out
    }

    /// Forgets every entry (`docker builder prune`); returns the keys dropped. The step images
    /// stay: they are image layers that `docker image prune` handles.
    pub fn clear(&self) -> Result<Vec<String>> {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let m = self.load();
        if !m.is_empty() {
            write_json_atomic(&self.path, &BTreeMap::<String, String>::new())?;
        }
        Ok(m.into_keys().collect())
    }

    /// Records `key` → `id`, dropping entries whose image is gone.
    pub fn put(&self, key: &str, id: &str, exists: impl Fn(&str) -> bool) -> Result<()> {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut m = self.load();
        m.retain(|_, v| exists(v));
        m.insert(key.to_string(), id.to_string());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_json_atomic(&self.path, &m)?;
        Ok(())
    }
}
