//! Images: content store, metadata, tags, layer snapshots; pull from registries.
//!
//! Layout on disk: see [`store`]. Layers are unpacked once per diff id into their own
//! directory, so images share them and a container's overlay uses them directly as lowerdirs.

pub mod create;
pub mod diff;
mod distribution;
pub mod layer;
mod load;
pub mod manifest;
pub mod progress;
mod pull;
mod push;
pub mod reference;
pub mod save;
pub mod store;
pub mod unpack;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_docker_api::auth::AuthConfig;
use berth_docker_api::image::{
    DeleteItem, GraphDriver, HistoryItem, ImageConfig, ImageInspect, ImageMetadata, ImageSummary,
    ImagesPruneReport, RootFs,
};
use serde::Deserialize;

use crate::id::{is_hex_prefix, short};
use crate::registry::RegistryClient;
use crate::{EngineConfig, EngineError, EventBus, Result};
pub use progress::Progress;
use reference::Reference;
use store::{ImageRecord, Store};

/// `Metadata.LastTagTime` of an image never tagged locally (Go's zero time).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A container created from an image, as `docker rmi` needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub id: String,
    pub running: bool,
}

/// An image resolved for running a container.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<hex>` of the image config.
    pub id: String,
    /// The reference as the user wrote it (`busybox`, `busybox:latest`, an id prefix).
    pub reference: String,
    /// The image's runtime config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, …).
    pub config: oci_spec::image::Config,
    /// Extracted layer directories, lowest (base) first, ready as overlayfs lowerdirs.
    pub layer_dirs: Vec<PathBuf>,
}

/// The image config fields inspect and history show (Docker's image JSON).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigDoc {
    created: Option<String>,
    author: String,
    comment: String,
    container: String,
    container_config: Option<ImageConfig>,
    docker_version: String,
    config: Option<ImageConfig>,
    architecture: String,
    variant: Option<String>,
    os: String,
    #[serde(rename = "os.version")]
    os_version: Option<String>,
    history: Vec<HistoryDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HistoryDoc {
    created: Option<String>,
    created_by: String,
    comment: String,
    empty_layer: bool,
}

fn unix_time(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

fn familiar(canonical: &str) -> String {
    Reference::parse(canonical).map_or_else(|_| canonical.to_string(), |r| r.familiar())
}

/// dockerd's text: `No such image: busybox:latest` for names (tag defaulted, familiar form),
/// the input as given for `sha256:` ids.
fn no_such_image(reference: &str) -> EngineError {
    let shown = if reference.starts_with("sha256:") {
        reference.to_string()
    } else {
        Reference::parse(reference)
            .map(|r| r.with_default_tag().familiar())
            .unwrap_or_else(|_| reference.to_string())
    };
    EngineError::not_found(format!("No such image: {shown}"))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `path.Match`-style glob: `*` and `?` do not cross `/`.
pub(crate) fn glob_match(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && go(p, &s[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

/// Docker's `reference.FamiliarMatch`: the pattern against `name:tag` or the bare name.
fn reference_matches(pattern: &str, canonical: &str) -> bool {
    let Ok(r) = Reference::parse(canonical) else {
        return false;
    };
    glob_match(pattern, &r.familiar()) || glob_match(pattern, &r.familiar_name())
}

pub struct ImageService {
    #[allow(dead_code)]
    config: Arc<EngineConfig>,
    events: EventBus,
    registry: RegistryClient,
    store: Mutex<Store>,
    /// Pulls, loads and creates in progress: they commit layers before their image record,
    /// so orphan collection waits until none runs.
    busy: Mutex<usize>,
    /// Layer downloads in progress, shared by concurrent pulls.
    downloads: Arc<pull::Downloads>,
}

/// Marks an operation that commits layers or blobs ahead of its record.
pub(crate) struct BusyGuard<'a>(&'a ImageService);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut n = self.0.busy.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
    }
}

impl ImageService {
    pub async fn open(config: Arc<EngineConfig>, events: EventBus) -> Result<Self> {
        let root = config.data_root.join("image");
        let store = tokio::task::spawn_blocking(move || -> Result<Store> {
            let mut store = Store::open(root)?;
            // Nothing runs yet: leftovers of pulls cut short by a crash can go now.
            for d in store.gc_orphans()? {
                let _ = std::fs::remove_dir_all(&d);
            }
            Ok(store)
        })
        .await
        .map_err(|e| EngineError::internal(format!("opening image store: {e}")))??;
        tracing::info!(images = store.images.len(), "image store opened");
        let registry = RegistryClient::new(config.clone())?;
        Ok(Self {
            config,
            events,
            registry,
            store: Mutex::new(store),
            busy: Mutex::new(0),
            downloads: Arc::default(),
        })
    }

    pub(crate) fn busy(&self) -> BusyGuard<'_> {
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        BusyGuard(self)
    }

    /// The size of every layer some image uses, by diff id.
    fn layer_sizes(&self) -> HashMap<String, u64> {
        let s = self.lock();
        s.images
            .values()
            .flat_map(|r| r.layers.iter().cloned().zip(r.layer_sizes.iter().copied()))
            .collect()
    }

    /// Deletes unreferenced layers and blobs unless an operation that creates them runs.
    pub(super) fn collect_orphans(&self) {
        let idle = *self.busy.lock().unwrap_or_else(|e| e.into_inner()) == 0;
        if !idle {
            tracing::debug!("orphan collection skipped: image operation in progress");
            return;
        }
        match self.lock().gc_orphans() {
            Ok(doomed) => {
                for d in doomed {
                    let _ = std::fs::remove_dir_all(&d);
                }
            }
            Err(e) => tracing::warn!(error = %e, "orphan collection failed"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of images, for `/info`.
    pub async fn count(&self) -> usize {
        self.lock().images.len()
    }

    /// `/system/df`: image entries (`ImageSummary` with `SharedSize` and `Containers` filled
    /// in, as dockerd does there) and the size of all distinct layers. `users` counts the
    /// containers of each image id.
    pub async fn disk_usage(
        &self,
        users: &HashMap<String, i64>,
    ) -> Result<(Vec<serde_json::Value>, i64)> {
        let mut list = self.list(true, &BTreeMap::new())?;
        let layers: Vec<(String, Vec<(String, u64)>)> = {
            let s = self.lock();
            s.images
                .values()
                .map(|r| {
                    let ls = r.layers.iter().cloned().zip(r.layer_sizes.iter().copied());
                    (r.id.clone(), ls.collect())
                })
                .collect()
        };
        let (shared, total) = layer_sharing(&layers);
        for img in &mut list {
            img.shared_size = shared.get(&img.id).copied().unwrap_or(0);
            img.containers = users.get(&img.id).copied().unwrap_or(0);
        }
        let entries = list
            .into_iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .collect();
        Ok((entries, total))
    }

    /// The size of image `id`'s layers (0 when it is gone), for a container's `SizeRootFs`.
    pub fn size_of(&self, id: &str) -> i64 {
        self.get(id).map_or(0, |r| to_i64(r.size()))
    }

    /// Ids (`sha256:…`) of all images.
    pub fn ids(&self) -> Vec<String> {
        self.lock().images.values().map(|r| r.id.clone()).collect()
    }

    /// Finds an image by reference, digest reference, full id or unique id prefix.
    fn find_hex(s: &Store, reference: &str) -> Option<String> {
        let by_prefix = |p: &str| -> Option<String> {
            if !is_hex_prefix(p) {
                return None;
            }
            match crate::id::match_prefix(p, s.images.keys().map(String::as_str)) {
                crate::id::PrefixMatch::One(h) => Some(h.to_string()),
                _ => None,
            }
        };
        if let Some(h) = reference.strip_prefix("sha256:") {
            return by_prefix(h);
        }
        if let Ok(r) = Reference::parse(reference) {
            if r.digest.is_some() {
                let want = r.to_string();
                if let Some(rec) = s.images.values().find(|i| i.repo_digests.contains(&want)) {
                    return Some(rec.hex().to_string());
                }
            } else if let Some(id) = s.tags.get(&r.with_default_tag().to_string()) {
                return Some(id.trim_start_matches("sha256:").to_string());
            }
        }
        by_prefix(reference)
    }

    fn get(&self, reference: &str) -> Result<ImageRecord> {
        let s = self.lock();
        Self::find_hex(&s, reference)
            .and_then(|h| s.images.get(&h).cloned())
            .ok_or_else(|| no_such_image(reference))
    }

    /// The id (`sha256:…`) of the image `reference` names, or `No such image`.
    pub fn image_id(&self, reference: &str) -> Result<String> {
        self.get(reference).map(|r| r.id)
    }

    fn config_doc(&self, rec: &ImageRecord) -> Result<(Vec<u8>, ConfigDoc)> {
        let raw = self.lock().get_blob(&rec.id)?;
        let doc = serde_json::from_slice(&raw)
            .map_err(|e| EngineError::internal(format!("image config {}: {e}", rec.id)))?;
        Ok((raw, doc))
    }

    /// `platform` (`os[/arch[/variant]]`, as `create?platform=` and `run --platform` send it)
    /// against the image's own: dockerd's not-found error when they differ, so the CLI pulls
    /// the platform's image and tries again.
    pub fn check_platform(&self, reference: &str, platform: &str) -> Result<()> {
        let want = manifest::Platform::parse(platform)?;
        let rec = self.get(reference)?;
        let (_, doc) = self.config_doc(&rec)?;
        let have = manifest::Platform {
            architecture: doc.architecture,
            os: doc.os,
            variant: doc.variant,
        };
        if have.architecture.is_empty() || want.matches(&have) {
            return Ok(());
        }
        Err(EngineError::not_found(format!(
            "image with reference {reference} was found but does not match the specified platform: wanted {want}, actual: {have}"
        )))
    }

    /// Resolves a reference (name[:tag], name@digest, full or short id) to a local image, or
    /// `NotFound` with dockerd's `No such image: busybox:latest` (name with its tag defaulted).
    pub async fn resolve(&self, reference: &str) -> Result<ResolvedImage> {
        let rec = self.get(reference)?;
        let raw = self.lock().get_blob(&rec.id)?;
        let value: serde_json::Value = serde_json::from_slice(&raw)?;
        let config = match value.get("config").filter(|c| !c.is_null()) {
            Some(c) => serde_json::from_value(c.clone()).map_err(|e| {
                EngineError::internal(format!("image config {} unreadable: {e}", rec.id))
            })?,
            None => oci_spec::image::Config::default(),
        };
        let s = self.lock();
        let mut layer_dirs = Vec::with_capacity(rec.layers.len());
        for l in &rec.layers {
            let d = s.layer_dir(l)?;
            if !d.is_dir() {
                return Err(EngineError::internal(format!(
                    "layer {l} of image {} is missing",
                    rec.id
                )));
            }
            layer_dirs.push(d);
        }
        Ok(ResolvedImage {
            id: rec.id,
            reference: reference.to_string(),
            config,
            layer_dirs,
        })
    }

    fn refs_of(s: &Store, rec: &ImageRecord) -> (Vec<String>, Vec<String>) {
        let tags = s
            .tags
            .iter()
            .filter(|(_, id)| **id == rec.id)
            .map(|(t, _)| t.clone())
            .collect();
        (tags, rec.repo_digests.clone())
    }

    /// `GET /images/json`.
    pub fn list(
        &self,
        all: bool,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<ImageSummary>> {
        let get = |k: &str| filters.get(k).filter(|v| !v.is_empty());
        let dangling = get("dangling").map(|v| v.iter().any(|x| x == "true" || x == "1"));
        let time_bound = |k: &str| -> Result<Option<i64>> {
            match get(k).and_then(|v| v.first()) {
                Some(r) => {
                    let rec = self.get(r)?;
                    Ok(Some(unix_time(&rec.created)))
                }
                None => Ok(None),
            }
        };
        let before = time_bound("before")?;
        let since = time_bound("since")?;
        let records: Vec<(ImageRecord, Vec<String>, Vec<String>)> = {
            let s = self.lock();
            s.images
                .values()
                .map(|r| {
                    let (t, d) = Self::refs_of(&s, r);
                    (r.clone(), t, d)
                })
                .collect()
        };
        // Untagged images other images were built on are build steps, shown only with `all`.
        let parents: HashSet<&str> = records
            .iter()
            .filter_map(|(r, _, _)| r.parent.as_deref())
            .collect();
        let mut out = Vec::new();
        for (rec, tags, digests) in &records {
            let (tags, digests) = (tags.clone(), digests.clone());
            if !all && tags.is_empty() && digests.is_empty() && parents.contains(rec.id.as_str()) {
                continue;
            }
            let created = unix_time(&rec.created);
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            let keep = |canonical: &String| {
                get("reference")
                    .is_none_or(|pats| pats.iter().any(|p| reference_matches(p, canonical)))
            };
            let mut repo_tags: Vec<String> = tags
                .iter()
                .filter(|t| keep(t))
                .map(|t| familiar(t))
                .collect();
            let mut repo_digests: Vec<String> = digests
                .iter()
                .filter(|d| keep(d))
                .map(|d| familiar(d))
                .collect();
            if tags.is_empty() && digests.is_empty() {
                if dangling == Some(false) || get("reference").is_some() {
                    continue;
                }
                repo_tags = vec!["<none>:<none>".into()];
                repo_digests = vec!["<none>@<none>".into()];
            } else if (repo_tags.is_empty() && repo_digests.is_empty())
                || dangling.is_some_and(|want| want != tags.is_empty())
            {
                // Nothing matched the reference filter, or the dangling filter excludes it.
                continue;
            }
            let labels = self
                .config_doc(rec)
                .ok()
                .and_then(|(_, d)| d.config.and_then(|c| c.labels))
                .unwrap_or_default();
            if let Some(want) = get("label") {
                let ok = want.iter().all(|w| match w.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(w),
                });
                if !ok {
                    continue;
                }
            }
            repo_tags.sort();
            let size = to_i64(rec.size());
            out.push(ImageSummary {
                id: rec.id.clone(),
                parent_id: rec.parent.clone().unwrap_or_default(),
                repo_tags,
                repo_digests,
                created,
                size,
                shared_size: -1,
                virtual_size: size,
                labels,
                containers: -1,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let rec = self.get(name)?;
        let (_, doc) = self.config_doc(&rec)?;
        let (tags, digests) = Self::refs_of(&self.lock(), &rec);
        let dirs: Vec<String> = {
            let s = self.lock();
            rec.layers
                .iter()
                .filter_map(|l| s.layer_dir(l).ok())
                .map(|d| d.display().to_string())
                .collect()
        };
        let mut data = BTreeMap::new();
        if let Some((top, lower)) = dirs.split_last() {
            data.insert("UpperDir".to_string(), top.clone());
            if !lower.is_empty() {
                let lower: Vec<&str> = lower.iter().rev().map(String::as_str).collect();
                data.insert("LowerDir".to_string(), lower.join(":"));
            }
        }
        let size = to_i64(rec.size());
        let config = doc.config.unwrap_or_default();
        Ok(ImageInspect {
            id: rec.id.clone(),
            repo_tags: tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: digests.iter().map(|d| familiar(d)).collect(),
            parent: rec.parent.clone().unwrap_or_default(),
            comment: doc.comment,
            created: doc.created.unwrap_or_else(|| ZERO_TIME.into()),
            container: doc.container,
            container_config: doc.container_config.unwrap_or_default(),
            docker_version: doc.docker_version,
            author: doc.author,
            config,
            architecture: doc.architecture,
            variant: doc.variant,
            os: doc.os,
            os_version: doc.os_version,
            size,
            virtual_size: size,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data,
            },
            root_fs: RootFs {
                typ: "layers".into(),
                layers: rec.layers.clone(),
            },
            metadata: ImageMetadata {
                last_tag_time: rec
                    .last_tag_time
                    .clone()
                    .unwrap_or_else(|| ZERO_TIME.into()),
            },
        })
    }

    /// `GET /images/{name}/history`, newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let rec = self.get(name)?;
        let (_, doc) = self.config_doc(&rec)?;
        let (tags, _) = Self::refs_of(&self.lock(), &rec);
        let mut sizes = rec.layer_sizes.iter();
        let mut items: Vec<HistoryItem> = if doc.history.is_empty() {
            rec.layer_sizes
                .iter()
                .map(|s| HistoryItem {
                    id: "<missing>".into(),
                    created: unix_time(&rec.created),
                    size: to_i64(*s),
                    ..HistoryItem::default()
                })
                .collect()
        } else {
            doc.history
                .iter()
                .map(|h| HistoryItem {
                    id: "<missing>".into(),
                    created: h.created.as_deref().map_or(0, unix_time),
                    created_by: h.created_by.clone(),
                    tags: vec![],
                    size: if h.empty_layer {
                        0
                    } else {
                        sizes.next().map_or(0, |s| to_i64(*s))
                    },
                    comment: h.comment.clone(),
                })
                .collect()
        };
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = rec.id.clone();
            top.tags = tags.iter().map(|t| familiar(t)).collect();
        }
        Ok(items)
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        let rec = self.get(name)?;
        let mut r = Reference::parse(repo)?;
        if r.digest.is_some() {
            return Err(EngineError::invalid(
                "refusing to create a tag with a digest reference",
            ));
        }
        if !tag.is_empty() {
            r = Reference::parse(&format!("{}:{tag}", r.name()))?;
        }
        let r = r.with_default_tag();
        {
            let mut s = self.lock();
            s.tags.insert(r.to_string(), rec.id.clone());
            s.save_tags()?;
            if let Some(mut updated) = s.images.get(rec.hex()).cloned() {
                updated.last_tag_time =
                    Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
                s.save_image(&updated)?;
                s.images.insert(updated.hex().to_string(), updated);
            }
        }
        self.event("tag", &rec.id, &r.familiar());
        Ok(())
    }

    fn event(&self, action: &str, id: &str, name: &str) {
        self.events.publish(
            "image",
            action,
            id,
            BTreeMap::from([("name".to_string(), name.to_string())]),
        );
    }

    /// `DELETE /images/{name}`, following dockerd's rules. `users` are the containers created
    /// from the image (ask the container service).
    pub fn remove(&self, name: &str, force: bool, users: &[ImageUser]) -> Result<Vec<DeleteItem>> {
        let rec = self.get(name)?;
        let mut out = Vec::new();
        let (tags, digests) = Self::refs_of(&self.lock(), &rec);
        let all_refs: Vec<String> = tags.iter().chain(&digests).cloned().collect();
        let repo_of = |c: &str| Reference::parse(c).map(|r| r.name()).unwrap_or_default();
        let single_reference = tags.len() <= 1
            && all_refs
                .windows(2)
                .all(|w| repo_of(&w[0]) == repo_of(&w[1]));
        let short_id = short(&rec.id).to_string();
        let by_id = name.starts_with("sha256:")
            || (is_hex_prefix(name) && rec.hex().starts_with(name) && {
                let s = self.lock();
                Self::find_hex_by_ref_only(&s, name).is_none()
            });
        if !by_id {
            let r = Reference::parse(name)?.with_default_tag();
            let canonical = r.to_string();
            if !force && single_reference {
                if let Some(c) = users.first() {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {short_id}",
                        short(&c.id)
                    )));
                }
            }
            let remaining = {
                let mut s = self.lock();
                let mut removed = Vec::new();
                if r.digest.is_some() {
                    if let Some(mut updated) = s.images.get(rec.hex()).cloned() {
                        updated.repo_digests.retain(|d| d != &canonical);
                        s.save_image(&updated)?;
                        s.images.insert(updated.hex().to_string(), updated);
                    }
                    removed.push(canonical.clone());
                } else {
                    s.tags.remove(&canonical);
                    s.save_tags()?;
                    removed.push(canonical.clone());
                    // No tag of this repository left: its digest references go too.
                    let repo = r.name();
                    let repo_tag_left = s
                        .tags
                        .iter()
                        .any(|(t, id)| *id == rec.id && repo_of(t) == repo);
                    if !repo_tag_left {
                        if let Some(mut updated) = s.images.get(rec.hex()).cloned() {
                            let (gone, keep): (Vec<String>, Vec<String>) = updated
                                .repo_digests
                                .iter()
                                .cloned()
                                .partition(|d| repo_of(d) == repo);
                            updated.repo_digests = keep;
                            s.save_image(&updated)?;
                            s.images.insert(updated.hex().to_string(), updated);
                            removed.extend(gone);
                        }
                    }
                }
                let (t, d) = s
                    .images
                    .get(rec.hex())
                    .map(|i| Self::refs_of(&s, i))
                    .unwrap_or_default();
                for x in &removed {
                    out.push(DeleteItem::Untagged(familiar(x)));
                }
                t.len() + d.len()
            };
            self.event("untag", &rec.id, &rec.id);
            if remaining > 0 {
                return Ok(out);
            }
        } else {
            if !single_reference && !force {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {short_id} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            // dockerd: a running user blocks even a forced delete; a stopped one only an unforced.
            if let Some(c) = users.iter().find(|u| u.running) {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {short_id} (cannot be forced) - image is being used by running container {}",
                    short(&c.id)
                )));
            }
            if let Some(c) = users.first() {
                if !force {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to delete {short_id} (must be forced) - image is being used by stopped container {}",
                        short(&c.id)
                    )));
                }
            }
            self.untag_all(&rec, &mut out)?;
        }
        if !users.is_empty() {
            // Containers still need the layers: the image stays, untagged.
            return Ok(out);
        }
        self.delete_record(&rec, &mut out)?;
        self.delete_build_parents(rec.parent.clone(), &mut out)?;
        Ok(out)
    }

    /// After a built image goes, so do the untagged build steps below it that nothing else
    /// was built on (as dockerd deletes an image's untagged parents).
    fn delete_build_parents(
        &self,
        mut parent: Option<String>,
        out: &mut Vec<DeleteItem>,
    ) -> Result<()> {
        while let Some(p) = parent.take() {
            let doomed = {
                let s = self.lock();
                let hex = p.trim_start_matches("sha256:");
                s.images.get(hex).cloned().filter(|r| {
                    let (t, d) = Self::refs_of(&s, r);
                    t.is_empty()
                        && d.is_empty()
                        && !s
                            .images
                            .values()
                            .any(|o| o.parent.as_deref() == Some(&r.id))
                })
            };
            if let Some(r) = doomed {
                self.delete_record(&r, out)?;
                parent = r.parent;
            }
        }
        Ok(())
    }

    /// A name lookup that ignores id prefixes (is `name` a tag?).
    fn find_hex_by_ref_only(s: &Store, name: &str) -> Option<String> {
        let r = Reference::parse(name).ok()?.with_default_tag();
        s.tags
            .get(&r.to_string())
            .map(|id| id.trim_start_matches("sha256:").to_string())
    }

    fn untag_all(&self, rec: &ImageRecord, out: &mut Vec<DeleteItem>) -> Result<()> {
        let mut s = self.lock();
        let (tags, digests) = Self::refs_of(&s, rec);
        s.tags.retain(|_, id| *id != rec.id);
        s.save_tags()?;
        if let Some(mut updated) = s.images.get(rec.hex()).cloned() {
            updated.repo_digests.clear();
            s.save_image(&updated)?;
            s.images.insert(updated.hex().to_string(), updated);
        }
        drop(s);
        for r in tags.iter().chain(&digests) {
            out.push(DeleteItem::Untagged(familiar(r)));
            self.event("untag", &rec.id, &rec.id);
        }
        Ok(())
    }

    fn delete_record(&self, rec: &ImageRecord, out: &mut Vec<DeleteItem>) -> Result<()> {
        let doomed = self.lock().remove_image(rec.hex())?;
        for d in doomed {
            // Already renamed out of the way; a failure here only leaves garbage that the
            // next open removes.
            if let Err(e) = std::fs::remove_dir_all(&d) {
                tracing::warn!(path = %d.display(), error = %e, "layer not removed");
            }
        }
        out.push(DeleteItem::Deleted(rec.id.clone()));
        self.event("delete", &rec.id, &rec.id);
        Ok(())
    }

    /// `POST /images/prune`: dangling images, or every image no container uses when
    /// `dangling_only` is false. `in_use` holds the ids containers were created from.
    pub fn prune(
        &self,
        dangling_only: bool,
        in_use: &HashSet<String>,
    ) -> Result<ImagesPruneReport> {
        let candidates: Vec<ImageRecord> = {
            let s = self.lock();
            s.images
                .values()
                .filter(|r| !in_use.contains(&r.id))
                .filter(|r| !dangling_only || !s.tags.values().any(|id| *id == r.id))
                // Build steps under another image are not dangling.
                .filter(|r| {
                    !dangling_only
                        || !s
                            .images
                            .values()
                            .any(|o| o.parent.as_deref() == Some(&r.id))
                })
                .cloned()
                .collect()
        };
        let mut report = ImagesPruneReport::default();
        let mut deleted = Vec::new();
        let layers_before = self.layer_sizes();
        for rec in candidates {
            if !self.lock().images.contains_key(rec.hex()) {
                continue; // went with an image built on it
            }
            self.untag_all(&rec, &mut deleted)?;
            self.delete_record(&rec, &mut deleted)?;
            self.delete_build_parents(rec.parent.clone(), &mut deleted)?;
        }
        // What was freed: the layers no remaining image uses (shared ones stay).
        let layers_after = self.layer_sizes();
        let freed: u64 = layers_before
            .iter()
            .filter(|(l, _)| !layers_after.contains_key(*l))
            .map(|(_, size)| size)
            .sum();
        report.space_reclaimed = to_i64(freed);
        report.images_deleted = (!deleted.is_empty()).then_some(deleted);
        self.collect_orphans();
        Ok(report)
    }

    /// `POST /auth`: checks credentials against the registry.
    pub async fn login(&self, auth: &AuthConfig) -> Result<()> {
        self.registry.login(auth).await
    }
}

/// For images given as (id, [(diff id, size)]): the size each image shares with others (its
/// layers that another image also has), and the size of all distinct layers.
fn layer_sharing(images: &[(String, Vec<(String, u64)>)]) -> (HashMap<String, i64>, i64) {
    let mut holders: HashMap<&str, (u64, HashSet<&str>)> = HashMap::new();
    for (id, layers) in images {
        for (diff_id, size) in layers {
            let e = holders
                .entry(diff_id.as_str())
                .or_insert((*size, HashSet::new()));
            e.1.insert(id.as_str());
        }
    }
    let total = holders.values().map(|(size, _)| to_i64(*size)).sum();
    let shared = images
        .iter()
        .map(|(id, layers)| {
            let mut seen = HashSet::new();
            let sum = layers
                .iter()
                .filter(|(d, _)| seen.insert(d.as_str()) && holders[d.as_str()].1.len() > 1)
                .map(|(_, size)| to_i64(*size))
                .sum();
            (id.clone(), sum)
        })
        .collect();
    (shared, total)
}

#[cfg(test)]
mod tests {

    #[test]
    fn df_counts_shared_layers_once() {
        let img = |id: &str, ls: &[(&str, u64)]| {
            (
                id.to_string(),
                ls.iter().map(|(d, n)| (d.to_string(), *n)).collect(),
            )
        };
        let images = vec![
            img("a", &[("base", 100), ("a1", 10)]),
            img("b", &[("base", 100), ("b1", 20)]),
            img("c", &[("c1", 5)]),
        ];
        let (shared, total) = layer_sharing(&images);
        assert_eq!(total, 135);
        assert_eq!((shared["a"], shared["b"], shared["c"]), (100, 100, 0));
    }
    use super::*;

    #[test]
    fn globs_follow_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "library/busybox"));
        assert!(glob_match("*/*", "user/app"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(reference_matches(
            "busybox",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches(
            "busybox:lat*",
            "docker.io/library/busybox:latest"
        ));
        assert!(!reference_matches(
            "alpine",
            "docker.io/library/busybox:latest"
        ));
    }
}
