//! `docker pull`: manifest (through an index if needed), config, then every missing layer
//! downloaded and unpacked concurrently (one pass per layer, see [`super::layer`]).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_docker_api::auth::AuthConfig;
use futures::StreamExt;
use serde::Deserialize;
use std::collections::HashMap;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::layer::{self, ChannelReader, TeeReader};
use super::manifest::{Descriptor, ManifestDoc, Platform};
use super::progress::Progress;
use super::reference::Reference;
use super::store::{commit_layer, sha256_digest, BlobWriter, ImageRecord};
use super::ImageService;
use crate::fsutil::TempDir;
use crate::id::short;
use crate::registry::{Credentials, Repository};
use crate::{EngineError, Result};

/// Layers downloaded at once.
const MAX_CONCURRENT_LAYERS: usize = 8;
/// Minimum time between two `Downloading` lines of one layer.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
const MAX_MANIFEST_DEPTH: usize = 2;

/// The parts of an image config a pull or load needs.
#[derive(Deserialize)]
pub(super) struct ConfigHead {
    #[serde(default)]
    pub(super) created: Option<String>,
    pub(super) rootfs: RootFsHead,
}

#[derive(Deserialize)]
pub(super) struct RootFsHead {
    #[serde(default)]
    pub(super) diff_ids: Vec<String>,
}

/// An image whose layers are all in place, ready to be recorded.
pub(super) struct NewImage<'a> {
    pub(super) id: &'a str,
    pub(super) config: &'a [u8],
    pub(super) head: &'a ConfigHead,
    pub(super) layer_sizes: &'a [u64],
    /// `name@digest` it was pulled by.
    pub(super) repo_digest: Option<String>,
    /// Canonical tags to point at it (moved from other images).
    pub(super) tags: &'a [String],
    /// Digest of its manifest, stored as a blob.
    pub(super) manifest: Option<String>,
    /// Digests of its layer blobs, when kept.
    pub(super) layer_blobs: Vec<String>,
    /// The image it was made on (commit, build).
    pub(super) parent: Option<String>,
}

impl ImageService {
    /// Records an image: config blob, image record (merged with an existing one), repo
    /// digest and tags. Returns whether any tag now points somewhere new.
    pub(super) fn commit_image(&self, new: NewImage<'_>) -> Result<bool> {
        let id = new.id;
        let hex = id.trim_start_matches("sha256:").to_string();
        let mut s = self.lock();
        s.put_blob(id, new.config)?;
        let mut rec = s.images.get(&hex).cloned().unwrap_or_else(|| ImageRecord {
            id: id.to_string(),
            layers: new.head.rootfs.diff_ids.clone(),
            layer_sizes: new.layer_sizes.to_vec(),
            created: new.head.created.clone().unwrap_or_default(),
            last_tag_time: None,
            repo_digests: vec![],
            manifest: None,
            layer_blobs: vec![],
            parent: new.parent.clone(),
        });
        if let Some(d) = new.repo_digest.filter(|d| !rec.repo_digests.contains(d)) {
            rec.repo_digests.push(d);
        }
        // Keep blob references only when every blob is really there.
        let all_kept = new.layer_blobs.len() == rec.layers.len()
            && new.layer_blobs.iter().all(|b| s.has_blob(b));
        if all_kept && (rec.layer_blobs.is_empty() || rec.manifest.is_none()) {
            rec.layer_blobs = new.layer_blobs;
            rec.manifest = new.manifest.or(rec.manifest);
        }
        s.save_image(&rec)?;
        s.images.insert(hex, rec);
        let mut moved = false;
        for t in new.tags {
            moved |= s.tags.insert(t.clone(), id.to_string()).as_deref() != Some(id);
        }
        if !new.tags.is_empty() {
            s.save_tags()?;
        }
        Ok(moved)
    }
}

/// What a pull needs to know before it streams: resolved before the 200, so that an unknown
/// image is a plain 404.
struct Resolved {
    /// Digest of the manifest named by the reference (the index when there is one).
    top_digest: String,
    manifest: ManifestDoc,
    /// The platform's manifest as received, and its digest.
    manifest_bytes: bytes::Bytes,
    manifest_digest: String,
    config_digest: String,
    config: bytes::Bytes,
}

impl ImageService {
    /// Pulls `reference` for `platform` (empty: the host's), reporting progress; returns the
    /// image id. Errors before the first progress line are plain errors (404 for an unknown
    /// image); the caller turns later ones into in-band error lines.
    /// Layers a failed pull committed are removed again (space on a full disk comes back).
    pub async fn pull(
        &self,
        reference: &str,
        platform: &str,
        auth: Option<AuthConfig>,
        progress: Progress,
    ) -> Result<String> {
        let result = {
            let _busy = self.busy();
            self.pull_busy(reference, platform, auth, progress).await
        };
        if result.is_err() {
            self.collect_orphans();
        }
        result
    }

    async fn pull_busy(
        &self,
        reference: &str,
        platform: &str,
        auth: Option<AuthConfig>,
        progress: Progress,
    ) -> Result<String> {
        let r = Reference::parse(reference)?.with_default_tag();
        let platform = Platform::parse(platform)?;
        let creds = auth.as_ref().and_then(Credentials::from_auth_config);
        let repo = Arc::new(self.registry.repository(&r.domain, &r.path, creds));
        let resolved = resolve_manifest(&repo, &r, &platform).await?;
        let id = resolved.config_digest.clone();
        let tag_or_digest = r.tag_or_digest().to_string();
        progress.with_id(format!("Pulling from {}", r.path), &tag_or_digest);

        let head: ConfigHead = serde_json::from_slice(&resolved.config)
            .map_err(|e| EngineError::invalid(format!("invalid image config {id}: {e}")))?;
        let layers = &resolved.manifest.layers;
        if head.rootfs.diff_ids.len() != layers.len() {
            return Err(EngineError::invalid(format!(
                "image config {id} lists {} layers but the manifest has {}",
                head.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let hex = id.trim_start_matches("sha256:").to_string();
        let existing = self.lock().images.get(&hex).cloned();
        let complete = existing.as_ref().is_some_and(|rec| {
            let s = self.lock();
            rec.layers.iter().all(|l| s.has_layer(l))
        });
        let layer_sizes = if complete {
            existing
                .as_ref()
                .map(|r| r.layer_sizes.clone())
                .unwrap_or_default()
        } else {
            self.fetch_layers(&repo, layers, &head.rootfs.diff_ids, &progress)
                .await?
        };

        // Metadata last: the image exists once all its layers do.
        let repo_digest = format!("{}@{}", r.name(), resolved.top_digest);
        let tags: Vec<String> = if r.digest.is_none() {
            vec![r.to_string()]
        } else {
            vec![]
        };
        let blob_paths: Vec<_> = {
            let s = self.lock();
            s.put_blob(&resolved.manifest_digest, &resolved.manifest_bytes)?;
            layers
                .iter()
                .filter_map(|l| s.blob_path(&l.digest).ok())
                .filter(|p| p.is_file())
                .collect()
        };
        if !complete {
            // Layer blobs were renamed into place unsynced; make them durable in the background.
            tokio::task::spawn_blocking(move || super::store::sync_files(&blob_paths));
        }
        let tags_moved = self.commit_image(NewImage {
            id: &id,
            config: &resolved.config,
            head: &head,
            layer_sizes: &layer_sizes,
            repo_digest: Some(repo_digest),
            tags: &tags,
            manifest: Some(resolved.manifest_digest.clone()),
            layer_blobs: layers.iter().map(|l| l.digest.clone()).collect(),
            parent: None,
        })?;
        let tag_updated = if r.digest.is_none() {
            tags_moved
        } else {
            existing.is_none()
        };

        progress.status(format!("Digest: {}", resolved.top_digest));
        let familiar = r.familiar();
        if tag_updated || !complete {
            progress.status(format!("Status: Downloaded newer image for {familiar}"));
        } else {
            progress.status(format!("Status: Image is up to date for {familiar}"));
        }
        self.events.publish(
            "image",
            "pull",
            &familiar,
            BTreeMap::from([("name".to_string(), r.familiar_name())]),
        );
        Ok(id)
    }

    /// Downloads and unpacks the layers not present yet; returns every layer's size. A layer
    /// whose download broke off (reset, cut short, stalled, a 5xx) is fetched again after a
    /// growing pause, up to [`MAX_LAYER_ATTEMPTS`] times; content that does not match its
    /// digest is refused at once, as dockerd does.
    async fn fetch_layers(
        &self,
        repo: &Arc<Repository>,
        layers: &[Descriptor],
        diff_ids: &[String],
        progress: &Progress,
    ) -> Result<Vec<u64>> {
        let mut sizes = vec![0u64; layers.len()];
        let mut tasks = JoinSet::new();
        let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_LAYERS));
        let mut seen = std::collections::HashSet::new();
        let mut attempts = vec![0u32; layers.len()];
        // Layers this pull downloads (released as each is in place), and the ones another
        // pull is downloading, to wait for.
        let mut claims: Vec<Option<DownloadClaim>> = layers.iter().map(|_| None).collect();
        let mut waiting = vec![];
        // Ends the other downloads once one failed for good; each cleans up after itself.
        let cancel = CancellationToken::new();
        let spawn = |tasks: &mut JoinSet<_>, i: usize, job: LayerJob, pause: Duration| {
            let (limit, cancel) = (limit.clone(), cancel.clone());
            tasks.spawn(async move {
                let turn = async {
                    tokio::time::sleep(pause).await;
                    limit.acquire_owned().await.ok()
                };
                let permit = tokio::select! {
                    p = turn => p,
                    _ = cancel.cancelled() => None,
                };
                let result = match permit {
                    Some(_permit) => job.run(&cancel).await,
                    None => Err(LayerFailure::fatal(EngineError::unavailable(
                        "pull cancelled",
                    ))),
                };
                (i, result)
            });
        };
        for (i, (desc, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
            let short_id = short(&desc.digest).to_string();
            let (present, dest, known) = {
                let s = self.lock();
                let known = s.images.values().find_map(|r| {
                    r.layers
                        .iter()
                        .position(|l| l == diff_id)
                        .map(|p| r.layer_sizes[p])
                });
                (s.has_layer(diff_id), s.layer_dir(diff_id)?, known)
            };
            if present || !seen.insert(diff_id.clone()) {
                if present {
                    progress.with_id("Already exists", &short_id);
                }
                sizes[i] = match known {
                    Some(k) => k,
                    None => tokio::task::spawn_blocking({
                        let dest = dest.clone();
                        move || crate::fsutil::dir_size(&dest)
                    })
                    .await
                    .unwrap_or(0),
                };
                continue;
            }
            match self.downloads.claim(diff_id) {
                Ok(claim) => claims[i] = Some(claim),
                Err(other) => {
                    progress.with_id("Waiting", &short_id);
                    waiting.push((i, other));
                    continue;
                }
            }
            progress.with_id("Pulling fs layer", &short_id);
            attempts[i] = 1;
            let job = self.layer_job(repo, desc, diff_id, progress)?;
            spawn(&mut tasks, i, job, Duration::ZERO);
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, result) =
                joined.map_err(|e| EngineError::internal(format!("layer task failed: {e}")))?;
            let mut failure = match result {
                Ok(size) => {
                    sizes[i] = size;
                    claims[i] = None;
                    continue;
                }
                Err(f) => f,
            };
            let short_id = short(&layers[i].digest);
            if failure.transient && attempts[i] < MAX_LAYER_ATTEMPTS {
                let pause = retry_pause(attempts[i]);
                attempts[i] += 1;
                tracing::info!(layer = %short_id, attempt = attempts[i], error = %failure.error, "retrying layer download");
                progress.with_id(
                    format!("Retrying in {} second(s)", pause.as_secs().max(1)),
                    short_id,
                );
                match self.layer_job(repo, &layers[i], &diff_ids[i], progress) {
                    Ok(job) => {
                        spawn(&mut tasks, i, job, pause);
                        continue;
                    }
                    // Not a download that broke off: the one exit below returns it as it is.
                    Err(e) => failure = LayerFailure::fatal(e),
                }
            }
            cancel.cancel();
            while tasks.join_next().await.is_some() {}
            return Err(if failure.transient {
                EngineError::unavailable(format!(
                    "layer {short_id}: download failed after {} attempts: {}",
                    attempts[i],
                    failure.error.message()
                ))
            } else {
                failure.error
            });
        }
        drop(claims);
        for (i, mut other) in waiting {
            // Ends when the other pull's download ended, one way or the other.
            let _ = other.changed().await;
            let dest = self.lock().layer_dir(&diff_ids[i])?;
            sizes[i] = if dest.is_dir() {
                progress.with_id("Already exists", short(&layers[i].digest));
                tokio::task::spawn_blocking(move || crate::fsutil::dir_size(&dest))
                    .await
                    .unwrap_or(0)
            } else {
                let again = (&layers[i..=i], &diff_ids[i..=i]);
                Box::pin(self.fetch_layers(repo, again.0, again.1, progress)).await?[0]
            };
        }
        // Duplicated layers of one image take the size of their first copy.
        for (i, diff_id) in diff_ids.iter().enumerate() {
            if sizes[i] == 0 {
                if let Some(j) = diff_ids.iter().position(|d| d == diff_id) {
                    sizes[i] = sizes[j];
                }
            }
        }
        Ok(sizes)
    }

    /// A fresh download of one layer: its own temp directory and, unless the blob is kept
    /// already, its own temp blob file.
    fn layer_job(
        &self,
        repo: &Arc<Repository>,
        desc: &Descriptor,
        diff_id: &str,
        progress: &Progress,
    ) -> Result<LayerJob> {
        let s = self.lock();
        let blob = if s.has_blob(&desc.digest) {
            None
        } else {
            Some((s.blob_writer()?, s.blob_path(&desc.digest)?))
        };
        Ok(LayerJob {
            blob,
            repo: repo.clone(),
            desc: desc.clone(),
            diff_id: diff_id.to_string(),
            tmp: TempDir(s.layer_tmp_dir()?),
            dest: s.layer_dir(diff_id)?,
            progress: progress.clone(),
            short_id: short(&desc.digest).to_string(),
        })
    }
}

/// Layers being downloaded, by diff id: a pull that needs one of them waits for that download
/// instead of starting its own (ten concurrent pulls of one image download it once).
#[derive(Default)]
pub(super) struct Downloads(std::sync::Mutex<HashMap<String, watch::Receiver<()>>>);

/// A pull's claim on downloading one layer; pulls waiting for it wake when it is dropped.
struct DownloadClaim {
    downloads: Arc<Downloads>,
    diff_id: String,
    _done: watch::Sender<()>,
}

impl Drop for DownloadClaim {
    fn drop(&mut self) {
        let mut m = self.downloads.0.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&self.diff_id);
    }
}

impl Downloads {
    /// Claims the download of `diff_id`, or returns the download in progress to wait for.
    fn claim(
        self: &Arc<Self>,
        diff_id: &str,
    ) -> std::result::Result<DownloadClaim, watch::Receiver<()>> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = m.get(diff_id) {
            return Err(other.clone());
        }
        let (done, rx) = watch::channel(());
        m.insert(diff_id.to_string(), rx);
        Ok(DownloadClaim {
            downloads: self.clone(),
            diff_id: diff_id.to_string(),
            _done: done,
        })
    }
}

/// Attempts per layer download (dockerd makes 5 too).
const MAX_LAYER_ATTEMPTS: u32 = 5;
/// Pause before the first retry; doubled for each further one (0.5, 1, 2, 4 s: 7.5 s at most).
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The pause after failed attempt number `attempt` (1-based).
fn retry_pause(attempt: u32) -> Duration {
    FIRST_RETRY_PAUSE * 2u32.pow(attempt.saturating_sub(1).min(4))
}

/// Why one layer attempt failed, and whether another attempt may succeed.
struct LayerFailure {
    error: EngineError,
    /// The transfer broke off (connection refused or reset, cut short, stalled, a registry
    /// 5xx); not content that failed verification or a local error.
    transient: bool,
}

impl LayerFailure {
    fn fatal(error: EngineError) -> Self {
        Self {
            error,
            transient: false,
        }
    }
}

/// One layer to download and unpack.
struct LayerJob {
    /// Where the compressed blob is kept, unless it already is.
    blob: Option<(BlobWriter, std::path::PathBuf)>,
    repo: Arc<Repository>,
    desc: Descriptor,
    diff_id: String,
    tmp: TempDir,
    dest: std::path::PathBuf,
    progress: Progress,
    short_id: String,
}

impl LayerJob {
    /// Streams the blob into a blocking task that hashes, unpacks and commits it. That task
    /// owns the temp directory and blob file, so whatever ends the download (an error,
    /// `cancel`) they are gone once it returns, and this waits for it.
    async fn run(self, cancel: &CancellationToken) -> std::result::Result<u64, LayerFailure> {
        let Self {
            blob,
            repo,
            desc,
            diff_id,
            tmp,
            dest,
            progress,
            short_id,
        } = self;
        let resp = tokio::select! {
            r = repo.blob(&desc.digest, 0) => r,
            _ = cancel.cancelled() => Err(EngineError::unavailable("pull cancelled")),
        };
        let resp = resp.map_err(|e| LayerFailure {
            transient: e.kind() == crate::ErrorKind::Unavailable && !cancel.is_cancelled(),
            error: e,
        })?;
        let total = if desc.size > 0 {
            desc.size
        } else {
            resp.content_length().unwrap_or(0)
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(64);
        let unpack = tokio::task::spawn_blocking({
            let (digest, diff_id) = (desc.digest.clone(), diff_id.clone());
            move || -> Result<layer::Extracted> {
                let input = ChannelReader::new(rx);
                let x = match blob {
                    Some((mut writer, blob_dest)) => {
                        let mut tee = TeeReader {
                            inner: input,
                            out: &mut writer,
                        };
                        let x = layer::extract(&mut tee, Some(&digest), Some(&diff_id), &tmp.0)?;
                        writer.commit_unsynced(&blob_dest)?;
                        x
                    }
                    None => layer::extract(input, Some(&digest), Some(&diff_id), &tmp.0)?,
                };
                commit_layer(&tmp.0, &dest)?;
                Ok(x)
            }
        });
        let broke_off = stream_body(resp, tx, cancel, |current| {
            progress.bytes("Downloading", &short_id, current, total)
        })
        .await;
        progress.with_id("Verifying Checksum", &short_id);
        progress.with_id("Download complete", &short_id);
        let stats = unpack
            .await
            .map_err(|e| {
                LayerFailure::fatal(EngineError::internal(format!("unpack task failed: {e}")))
            })?
            .map_err(|e| LayerFailure {
                error: e.context(format!("layer {}", short(&desc.digest))),
                transient: broke_off,
            })?;
        progress.bytes("Extracting", &short_id, total, total);
        progress.with_id("Pull complete", &short_id);
        Ok(stats.stats.size)
    }
}

/// Sends a response body down `tx` chunk by chunk, reporting the bytes so far at most every
/// [`PROGRESS_EVERY`], until it ends, the receiver stops or `cancel` fires. Returns whether
/// the transfer broke off (the reader then gets the error as its last chunk).
async fn stream_body(
    resp: reqwest::Response,
    tx: tokio::sync::mpsc::Sender<io::Result<bytes::Bytes>>,
    cancel: &CancellationToken,
    report: impl Fn(u64),
) -> bool {
    let mut body = resp.bytes_stream();
    let mut current = 0u64;
    let mut last: Option<Instant> = None;
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = cancel.cancelled() => return false,
        };
        match chunk {
            None => return false,
            Some(Ok(b)) => {
                current += b.len() as u64;
                if tx.send(Ok(b)).await.is_err() {
                    // The unpacker stopped: its error explains why.
                    return false;
                }
                if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                    last = Some(Instant::now());
                    report(current);
                }
            }
            Some(Err(e)) => {
                let msg = crate::registry::error_chain(&e);
                let _ = tx.send(Err(io::Error::other(msg))).await;
                return true;
            }
        }
    }
}

/// Fetches the manifest (following an index to the platform's entry) and the config.
async fn resolve_manifest(
    repo: &Repository,
    r: &Reference,
    platform: &Platform,
) -> Result<Resolved> {
    let not_found = |msg: String| {
        EngineError::not_found(format!("manifest for {} not found: {msg}", r.familiar()))
    };
    let registry_err = |e: crate::registry::RegistryError| {
        if e.status == reqwest::StatusCode::NOT_FOUND {
            not_found(e.message)
        } else if e.status == reqwest::StatusCode::UNAUTHORIZED
            || e.status == reqwest::StatusCode::FORBIDDEN
        {
            EngineError::new(
                crate::ErrorKind::NotFound,
                format!(
                    "pull access denied for {}, repository does not exist or may require 'docker login': {}",
                    r.familiar_name(),
                    e.message
                ),
            )
        } else {
            EngineError::unavailable(e.message)
        }
    };
    let mut name = r.tag_or_digest().to_string();
    let mut top_digest = None;
    for _ in 0..=MAX_MANIFEST_DEPTH {
        let m = repo.manifest(&name).await.map_err(registry_err)?;
        let digest = sha256_digest(&m.bytes);
        if name.starts_with("sha256:") && digest != name {
            return Err(EngineError::invalid(format!(
                "manifest digest mismatch: asked for {name}, got {digest}"
            )));
        }
        top_digest.get_or_insert_with(|| digest.clone());
        let doc = ManifestDoc::parse(&m.bytes, &m.media_type)?;
        if doc.is_index() {
            name = doc.select(platform)?.digest.clone();
            continue;
        }
        let config_desc = doc
            .config
            .clone()
            .ok_or_else(|| EngineError::invalid(format!("manifest {digest} has no config")))?;
        let config = repo.blob_bytes(&config_desc.digest).await?;
        if sha256_digest(&config) != config_desc.digest {
            return Err(EngineError::invalid(format!(
                "digest mismatch for config {}",
                config_desc.digest
            )));
        }
        return Ok(Resolved {
            top_digest: top_digest.unwrap_or_else(|| digest.clone()),
            manifest: doc,
            manifest_bytes: m.bytes,
            manifest_digest: digest,
            config_digest: config_desc.digest,
            config,
        });
    }
    Err(EngineError::invalid("manifest index nested too deeply"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_double_and_stay_bounded() {
        let pauses: Vec<_> = (1..MAX_LAYER_ATTEMPTS).map(retry_pause).collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000].map(Duration::from_millis));
        assert_eq!(retry_pause(40), Duration::from_secs(8));
    }
}
