//! Container filesystem wire types: `docker cp`'s path stat and `docker diff`'s changes.

use serde::{Deserialize, Serialize};

/// `X-Docker-Container-Path-Stat` (base64 of this JSON). `mode` is a Go `os.FileMode`: type bits
/// high (directory `1<<31`, symlink `1<<27`, …), permissions low.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// One `GET /containers/{id}/changes` entry; `Kind` 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemChange {
    pub path: String,
    pub kind: u8,
}
