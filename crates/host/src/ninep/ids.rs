//! Qid paths: what the guest's kernel tells files apart by. On unix the inode number; on
//! Windows (whose file index needs an open handle) a number given to each path on first sight
//! and kept for the server's life, so a path keeps its identity across requests.

use std::fs::Metadata;
use std::path::Path;

#[cfg(not(unix))]
use std::{collections::HashMap, path::PathBuf};

#[derive(Default)]
pub struct Ids {
    #[cfg(not(unix))]
    seen: HashMap<PathBuf, u64>,
}

impl Ids {
    #[cfg(unix)]
    pub fn of(&mut self, _path: &Path, md: &Metadata) -> u64 {
        std::os::unix::fs::MetadataExt::ino(md)
    }

    #[cfg(not(unix))]
    pub fn of(&mut self, path: &Path, _md: &Metadata) -> u64 {
        let next = self.seen.len() as u64 + 1;
        *self.seen.entry(path.to_path_buf()).or_insert(next)
    }
}
