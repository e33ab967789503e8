//! Wasted space in an image: bytes of files that a later layer overwrites or deletes (an OCI
//! whiteout `.wh.<name>`, or `.wh..wh..opq` emptying a folder). They are still in the image
//! (pulled, stored) but no container sees them.
//!
//! Read from the `docker save` tar (`GET /images/{name}/get`) as one stream: each layer tar in
//! it is read entry by entry through the `tar` crate and reduced to its file list (path and
//! size) and whiteouts, so no layer is held in memory. The layer order comes from
//! `manifest.json` (the legacy layout, `<id>/layer.tar`, whose entries may be symlinks to
//! `blobs/…` in newer saves) or, without it, from `index.json` and the manifest blob it names
//! (the OCI layout). Small blobs are held to read those JSON files when they come after the
//! layers. Layers may be gzip-compressed (Berth's engine saves its stored blobs as they are).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use serde::Serialize;

/// Blobs up to this size are kept in memory (manifests and configs are JSON of a few KiB).
const SMALL_BLOB: u64 = 1 << 20;
/// How many of the biggest wasted files a report lists.
pub const BIGGEST: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum WasteError {
    #[error("reading the image archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("the image archive has no manifest.json or index.json")]
    NoManifest,
    #[error("the image archive's {what} is not valid: {source}")]
    BadJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the image archive does not hold layer {0}")]
    MissingLayer(String),
}

/// What one layer holds, reduced to what wasted space needs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LayerFiles {
    /// Regular files: path (relative, no leading `/`) → size.
    pub files: BTreeMap<String, u64>,
    /// Paths a whiteout deletes.
    pub deleted: Vec<String>,
    /// Folders an opaque whiteout empties.
    pub opaque: Vec<String>,
}

/// `./a/b/` → `a/b`.
fn clean(path: &str) -> String {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// A layer blob as a plain tar: gzip (how the engine stores layers it saves) is decoded on the
/// fly; a zstd layer is not read (it fails as "not a tar").
fn plain_tar<'a>(r: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(r);
    let gzip = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

/// Reads a layer tar (plain or gzip) entry by entry.
pub fn layer_files(r: impl Read) -> std::io::Result<LayerFiles> {
    let mut out = LayerFiles::default();
    let mut archive = tar::Archive::new(plain_tar(r)?);
    for entry in archive.entries()? {
        let entry = entry?;
        let path = clean(&entry.path()?.to_string_lossy());
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n),
            None => (String::new(), path.as_str()),
        };
        let join = |n: &str| {
            if dir.is_empty() {
                n.to_string()
            } else {
                format!("{dir}/{n}")
            }
        };
        if name == ".wh..wh..opq" {
            out.opaque.push(dir.clone());
        } else if let Some(gone) = name.strip_prefix(".wh.") {
            out.deleted.push(join(gone));
        } else if entry.header().entry_type().is_file() {
            out.files.insert(path.clone(), entry.size());
        }
    }
    Ok(out)
}

/// A file no container sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WastedFile {
    pub path: String,
    pub size: u64,
    /// The layer (index, oldest first) that holds it.
    pub layer: usize,
    /// The layer that overwrote or deleted it.
    pub by: usize,
    pub deleted: bool,
}

type Live = BTreeMap<String, (usize, u64)>;

/// Takes the live files under folder `dir` (and `dir` itself when `whole`) out of `live`, as
/// deleted by layer `by`.
fn drop_under(live: &mut Live, out: &mut Vec<WastedFile>, dir: &str, by: usize, whole: bool) {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut gone: Vec<String> = live
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    if whole && live.contains_key(dir) {
        gone.push(dir.to_string());
    }
    for path in gone {
        if let Some((layer, size)) = live.remove(&path) {
            out.push(WastedFile {
                path,
                size,
                layer,
                by,
                deleted: true,
            });
        }
    }
}

/// Every wasted file of layers given oldest first.
pub fn wasted_files(layers: &[LayerFiles]) -> Vec<WastedFile> {
    let mut live = Live::new();
    let mut out = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        for dir in &l.opaque {
            drop_under(&mut live, &mut out, dir, i, false);
        }
        for path in &l.deleted {
            drop_under(&mut live, &mut out, path, i, true);
        }
        for (path, size) in &l.files {
            // A file where a folder was hides what was under it.
            drop_under(&mut live, &mut out, path, i, false);
            if let Some((layer, old)) = live.insert(path.clone(), (i, *size)) {
                out.push(WastedFile {
                    path: path.clone(),
                    size: old,
                    layer,
                    by: i,
                    deleted: false,
                });
            }
        }
    }
    out
}

/// Wasted bytes and files of one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerWaste {
    pub index: usize,
    /// The layer's diff id when known.
    pub digest: Option<String>,
    pub bytes: u64,
    pub files: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WasteReport {
    pub total: u64,
    /// Oldest first, one per layer.
    pub layers: Vec<LayerWaste>,
    /// The biggest wasted files, biggest first (at most [`BIGGEST`]).
    pub biggest: Vec<WastedFile>,
}

/// The report for layers given oldest first, named by `digests` (same order) when known.
pub fn report(layers: &[LayerFiles], digests: &[String]) -> WasteReport {
    let mut files = wasted_files(layers);
    let mut per: Vec<LayerWaste> = (0..layers.len())
        .map(|index| LayerWaste {
            index,
            digest: digests.get(index).cloned(),
            ..LayerWaste::default()
        })
        .collect();
    for f in &files {
        per[f.layer].bytes += f.size;
        per[f.layer].files += 1;
    }
    files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    files.truncate(BIGGEST);
    WasteReport {
        total: per.iter().map(|l| l.bytes).sum(),
        layers: per,
        biggest: files,
    }
}

/// What the save archive holds, read in one pass.
#[derive(Default)]
struct SaveArchive {
    /// Layer tars read so far, by their path in the archive.
    layers: HashMap<String, LayerFiles>,
    /// Symlinks (legacy `<id>/layer.tar` → `../blobs/sha256/<hex>`), resolved.
    links: HashMap<String, String>,
    /// `manifest.json`, `index.json` and small blobs.
    small: HashMap<String, Vec<u8>>,
}

/// `target` of a symlink at `at`, as an archive path.
fn resolve(at: &str, target: &str) -> String {
    let dir = at.rsplit_once('/').map_or("", |(d, _)| d);
    crate::build::ignore::clean(&format!("{dir}/{target}"))
}

fn is_layer_candidate(path: &str) -> bool {
    path.ends_with("/layer.tar") || path.starts_with("blobs/")
}

impl SaveArchive {
    fn read(r: impl Read) -> Result<Self, WasteError> {
        let mut me = Self::default();
        let mut archive = tar::Archive::new(r);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = clean(&entry.path()?.to_string_lossy());
            let kind = entry.header().entry_type();
            if kind.is_symlink() {
                if let Some(t) = entry.link_name()? {
                    let target = resolve(&path, &t.to_string_lossy());
                    me.links.insert(path, target);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let json = path == "manifest.json" || path == "index.json";
            if json || (path.starts_with("blobs/") && entry.size() <= SMALL_BLOB) {
                let mut b = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
                entry.read_to_end(&mut b)?;
                if !json {
                    // A small blob may be a layer too: read it from memory.
                    if let Ok(l) = layer_files(b.as_slice()) {
                        me.layers.insert(path.clone(), l);
                    }
                }
                me.small.insert(path, b);
            } else if is_layer_candidate(&path) {
                match layer_files(&mut entry) {
                    Ok(l) => {
                        me.layers.insert(path, l);
                    }
                    Err(e) => tracing::debug!(path, error = %e, "not a layer tar"),
                }
            }
        }
        Ok(me)
    }

    fn json(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<Option<serde_json::Value>, WasteError> {
        self.small
            .get(path)
            .map(|b| {
                serde_json::from_slice(b).map_err(|source| WasteError::BadJson { what, source })
            })
            .transpose()
    }

    /// The layer paths, oldest first.
    fn layer_order(&self) -> Result<Vec<String>, WasteError> {
        if let Some(m) = self.json("manifest.json", "manifest.json")? {
            let layers = m[0]["Layers"].as_array().cloned().unwrap_or_default();
            return Ok(layers
                .iter()
                .filter_map(|l| l.as_str().map(clean))
                .collect());
        }
        let index = self
            .json("index.json", "index.json")?
            .ok_or(WasteError::NoManifest)?;
        let mut manifest = index;
        // index.json → (an index →) the image manifest.
        for _ in 0..3 {
            let Some(digest) = manifest["manifests"][0]["digest"].as_str() else {
                break;
            };
            let blob = blob_path(digest);
            manifest = self
                .json(&blob, "manifest blob")?
                .ok_or(WasteError::MissingLayer(blob))?;
        }
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        Ok(layers
            .iter()
            .filter_map(|l| l["digest"].as_str().map(blob_path))
            .collect())
    }

    fn into_layers(self) -> Result<Vec<LayerFiles>, WasteError> {
        let order = self.layer_order()?;
        order
            .into_iter()
            .map(|p| {
                let mut at = p.clone();
                for _ in 0..8 {
                    match self.links.get(&at) {
                        Some(t) => at = t.clone(),
                        None => break,
                    }
                }
                // A layer listed twice (the same content) is read once: clone for the second.
                match self.layers.get(&at) {
                    Some(l) => Ok(l.clone()),
                    None => Err(WasteError::MissingLayer(p)),
                }
            })
            .collect()
    }
}

/// `sha256:<hex>` → `blobs/sha256/<hex>`.
fn blob_path(digest: &str) -> String {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    format!("blobs/{alg}/{hex}")
}

/// The layers, oldest first, of the `docker save` archive read from `r`.
pub fn save_layers(r: impl Read) -> Result<Vec<LayerFiles>, WasteError> {
    SaveArchive::read(r)?.into_layers()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of (path, bytes or None for a folder).
    fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in entries {
            let mut h = tar::Header::new_gnu();
            match body {
                Some(data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, path, *data).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, path, std::io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn layers() -> Vec<Vec<u8>> {
        let big = vec![7u8; 3000];
        vec![
            tar_of(&[
                ("etc/", None),
                ("etc/conf", Some(b"12345")),
                ("data/", None),
                ("data/big.bin", Some(&big)),
                ("cache/", None),
                ("cache/a", Some(b"aaaa")),
                ("cache/b/c", Some(b"cc")),
                ("keep", Some(b"k")),
            ]),
            tar_of(&[
                ("etc/conf", Some(b"123")),
                ("data/.wh.big.bin", Some(b"")),
                ("cache/.wh..wh..opq", Some(b"")),
                ("cache/new", Some(b"n")),
            ]),
            tar_of(&[("etc/conf", Some(b"1"))]),
        ]
    }

    #[test]
    fn overwritten_and_deleted_bytes_per_layer() {
        let ls: Vec<LayerFiles> = layers()
            .iter()
            .map(|t| layer_files(t.as_slice()).unwrap())
            .collect();
        let r = report(&ls, &["l0".into(), "l1".into(), "l2".into()]);
        // Layer 0: conf (5, overwritten), big.bin (3000, deleted), cache/a (4) and cache/b/c
        // (2) under the opaque folder; layer 1: its conf (3) overwritten by layer 2.
        assert_eq!(r.layers[0].bytes, 5 + 3000 + 4 + 2);
        assert_eq!(r.layers[0].files, 4);
        assert_eq!(r.layers[1].bytes, 3);
        assert_eq!(r.layers[2].bytes, 0);
        assert_eq!(r.total, 3014);
        assert_eq!(r.layers[1].digest.as_deref(), Some("l1"));
        let top = &r.biggest[0];
        assert_eq!(
            (top.path.as_str(), top.size, top.layer, top.by, top.deleted),
            ("data/big.bin", 3000, 0, 1, true)
        );
        let conf: Vec<_> = r.biggest.iter().filter(|f| f.path == "etc/conf").collect();
        assert_eq!(conf.len(), 2);
        assert!(conf.iter().all(|f| !f.deleted));
    }

    #[test]
    fn gzip_layers_are_read() {
        use std::io::Write;
        let plain = &layers()[0];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            layer_files(gz.as_slice()).unwrap(),
            layer_files(plain.as_slice()).unwrap()
        );
    }

    #[test]
    fn a_deleted_folder_wastes_everything_under_it() {
        let ls = [
            layer_files(
                tar_of(&[
                    ("d/x", Some(b"xx")),
                    ("d/y/z", Some(b"zzz")),
                    ("dx", Some(b"1")),
                ])
                .as_slice(),
            )
            .unwrap(),
            layer_files(tar_of(&[(".wh.d", Some(b""))]).as_slice()).unwrap(),
        ];
        let r = report(&ls, &[]);
        assert_eq!(r.total, 5, "{r:?}"); // not dx
        assert_eq!(r.layers[1].digest, None);
    }

    fn save(entries: Vec<(String, Vec<u8>)>, links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, data.as_slice()).unwrap();
        }
        for (path, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, path, target).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn legacy_layout_with_manifest_and_symlinked_layers() {
        let t = layers();
        let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["a/layer.tar","b/layer.tar","c/layer.tar"]}]"#;
        let archive = save(
            vec![
                ("a/layer.tar".into(), t[0].clone()),
                ("blobs/sha256/bb".into(), t[1].clone()),
                ("c/layer.tar".into(), t[2].clone()),
                ("c.json".into(), b"{}".to_vec()),
                ("manifest.json".into(), manifest.to_vec()),
            ],
            &[("b/layer.tar", "../blobs/sha256/bb")],
        );
        let ls = save_layers(archive.as_slice()).unwrap();
        assert_eq!(report(&ls, &[]).total, 3014);
    }

    #[test]
    fn oci_layout_through_index_and_manifest_blob() {
        let t = layers();
        let manifest = br#"{"schemaVersion":2,"config":{"digest":"sha256:cc"},"layers":[{"digest":"sha256:l0"},{"digest":"sha256:l1"},{"digest":"sha256:l2"}]}"#;
        let index = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:mm"}]}"#;
        // Layers first, the JSON last, as a stream would bring them.
        let archive = save(
            vec![
                ("blobs/sha256/l0".into(), t[0].clone()),
                ("blobs/sha256/l1".into(), t[1].clone()),
                ("blobs/sha256/l2".into(), t[2].clone()),
                ("blobs/sha256/cc".into(), b"{}".to_vec()),
                ("blobs/sha256/mm".into(), manifest.to_vec()),
                ("index.json".into(), index.to_vec()),
                (
                    "oci-layout".into(),
                    br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
                ),
            ],
            &[],
        );
        let ls = save_layers(archive.as_slice()).unwrap();
        assert_eq!(ls.len(), 3);
        assert_eq!(report(&ls, &[]).total, 3014);
    }

    #[test]
    fn a_missing_layer_or_manifest_is_said() {
        let manifest = br#"[{"Layers":["gone/layer.tar"]}]"#;
        let archive = save(vec![("manifest.json".into(), manifest.to_vec())], &[]);
        let e = save_layers(archive.as_slice()).unwrap_err();
        assert!(e.to_string().contains("gone/layer.tar"), "{e}");
        let archive = save(vec![("x".into(), b"y".to_vec())], &[]);
        assert!(matches!(
            save_layers(archive.as_slice()),
            Err(WasteError::NoManifest)
        ));
    }
}
