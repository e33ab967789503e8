//! Builds from the app: `images_build` packs the context (`.dockerignore` honoured) and sends
//! it to `POST /build` with the classic builder (as `DOCKER_BUILDKIT=0 docker build`), streaming
//! the build's output lines to the UI; every build ends in the history (`builds_list`,
//! `builds_log`), cancelled ones too. Cancel is `system_stream_stop`: the request's connection
//! is dropped, which makes the engine stop the build (dockerd does the same).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bollard::models::{BuildInfoAux, ImageId};
use bollard::query_parameters::{BuildImageOptions, BuilderVersion, TagImageOptionsBuilder};
use futures::StreamExt;
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};
use tracing::Instrument;

use crate::build::history::{self, BuildRecord, Outcome};
use crate::build::{self, context, BuildRequest};
use crate::commands::image_detail::validate_tag_name;
use crate::engine::Engine;
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::streams::{StreamEvent, StreamId};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStarted {
    pub stream: StreamId,
    /// The history id of this build.
    pub build: String,
}

/// The build history file of this app.
fn history_file(app: &AppHandle) -> Result<PathBuf> {
    let dir = app
        .path()
        .app_data_dir()
        .map_err(|e| AppError::Client(format!("no app data folder: {e}")))?;
    Ok(history::file(&dir))
}

/// Tells apart builds started in the same millisecond.
static NEXT_BUILD: AtomicU64 = AtomicU64::new(1);

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// A running build's record: its output is collected as it goes to the UI, and it is written
/// to the history when the build ends, or when it is dropped unfinished (cancelled).
struct Recorder {
    file: PathBuf,
    record: BuildRecord,
    clock: Instant,
    channel: Channel<StreamEvent>,
    saved: bool,
}

impl Recorder {
    fn output(&mut self, text: String) {
        self.record.log.push_str(&text);
        if self.record.log.len() > 2 * history::MAX_LOG_BYTES {
            self.record.log = history::log_tail(&self.record.log);
        }
        let _ = self.channel.send(StreamEvent::Output {
            stream: "stdout",
            text,
        });
    }

    fn save(&mut self) -> Result<()> {
        self.saved = true;
        self.record.duration_ms = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(0);
        history::add(&self.file, self.record.clone())
    }

    /// Records how the build ended and passes its result on.
    fn finish(mut self, result: Result<String>) -> Result<()> {
        match &result {
            Ok(id) => {
                self.record.outcome = Outcome::Succeeded;
                self.record.image_id = Some(id.clone());
            }
            Err(e) => {
                self.record.outcome = Outcome::Failed;
                self.record.error = Some(e.to_string());
            }
        }
        let saved = self.save();
        result.and(saved)
    }
}

impl Drop for Recorder {
    /// A build dropped unfinished was cancelled (its stream stopped, or the app quit): it is
    /// recorded, then the UI, which keeps listening after asking for the cancel, gets `end`.
    fn drop(&mut self) {
        if !self.saved {
            self.record.outcome = Outcome::Cancelled;
            if let Err(e) = self.save() {
                tracing::warn!(error = %e, "cancelled build not recorded");
            }
            let _ = self.channel.send(StreamEvent::End { error: None });
        }
    }
}

/// How the docker CLI prints a context size (`2.048kB`: decimal units, 4 significant digits).
fn context_size(n: usize) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    // Go's `%.4g`: 4 significant digits.
    let whole = (v.trunc() as u64).to_string().len();
    let prec = 4usize.saturating_sub(whole);
    let text = format!("{v:.prec$}");
    let digits = text.trim_end_matches('0').trim_end_matches('.');
    let digits = if u == 0 {
        n.to_string()
    } else {
        digits.to_string()
    };
    format!("{digits}{}", units[u])
}

/// Packs, sends and follows one build; returns the image id.
async fn run_build(
    e: &Engine,
    req: &BuildRequest,
    tags: &[String],
    args: HashMap<String, String>,
    rec: &mut Recorder,
) -> Result<String> {
    let (dir, file) = (req.context.clone(), req.dockerfile.clone());
    let packed = tokio::task::spawn_blocking(move || context::pack(&dir, &file))
        .await
        .map_err(|x| AppError::Client(format!("packing the context: {x}")))??;
    rec.output(format!(
        "Sending build context to Docker daemon  {}\n",
        context_size(packed.tar.len())
    ));
    let opts = BuildImageOptions {
        dockerfile: packed.dockerfile,
        t: tags.first().cloned(),
        nocache: req.no_cache,
        pull: req.pull.then(|| "1".to_string()),
        rm: true,
        buildargs: (!args.is_empty()).then_some(args),
        target: req.target.trim().to_string(),
        version: BuilderVersion::BuilderV1,
        ..BuildImageOptions::default()
    };
    let docker = e.docker()?;
    let body = bollard::body_full(packed.tar.into());
    let mut lines = docker.build_image(opts, None, Some(body));
    let mut image = None;
    while let Some(item) = lines.next().await {
        let info = item.map_err(|x| e.err(x))?;
        if let Some(text) = info.stream {
            rec.output(text);
        }
        if let Some(BuildInfoAux::Default(ImageId { id: Some(id) })) = info.aux {
            image = Some(id);
        }
    }
    let image = image
        .ok_or_else(|| AppError::Client("the engine did not say which image it built".into()))?;
    for t in tags.iter().skip(1) {
        let (repo, tag) = validate_tag_name(t)?;
        let opts = TagImageOptionsBuilder::default()
            .repo(&repo)
            .tag(&tag)
            .build();
        docker
            .tag_image(&image, Some(opts))
            .await
            .map_err(|x| e.err(x))?;
        rec.output(format!("Successfully tagged {t}\n"));
    }
    Ok(image)
}

/// Starts a build; its output comes on `channel` as `output` lines, then `end` (with Docker's
/// message when it failed).
#[tauri::command]
pub async fn images_build(
    app: AppHandle,
    state: State<'_, AppState>,
    request: BuildRequest,
    channel: Channel<StreamEvent>,
) -> Result<BuildStarted> {
    let tags = build::tags(&request)?;
    let args = build::build_args(&request)?;
    let started = unix_millis();
    let id = format!("{started}-{}", NEXT_BUILD.fetch_add(1, Ordering::Relaxed));
    let mut rec = Recorder {
        file: history_file(&app)?,
        record: BuildRecord {
            id: id.clone(),
            request: request.clone(),
            started,
            duration_ms: 0,
            outcome: Outcome::Cancelled,
            image_id: None,
            error: None,
            log: String::new(),
        },
        clock: Instant::now(),
        channel: channel.clone(),
        saved: false,
    };
    let e = state.engine();
    let span = tracing::info_span!("build", id = %id, context = %request.context);
    let body = async move {
        let result = run_build(&e, &request, &tags, args, &mut rec).await;
        tracing::info!(ok = result.is_ok(), "build ended");
        rec.finish(result)
    };
    let stream = state.streams.spawn(channel, None, body.instrument(span));
    Ok(BuildStarted { stream, build: id })
}

/// The builds kept, newest first, without their logs.
#[tauri::command]
pub async fn builds_list(app: AppHandle) -> Result<Vec<BuildRecord>> {
    let file = history_file(&app)?;
    let mut all = tokio::task::spawn_blocking(move || history::load(&file))
        .await
        .map_err(|x| AppError::Client(x.to_string()))??;
    for r in &mut all {
        r.log.clear();
    }
    Ok(all)
}

/// The saved log of build `id`.
#[tauri::command]
pub async fn builds_log(app: AppHandle, id: String) -> Result<String> {
    let file = history_file(&app)?;
    let all = tokio::task::spawn_blocking(move || history::load(&file))
        .await
        .map_err(|x| AppError::Client(x.to_string()))??;
    all.into_iter()
        .find(|r| r.id == id)
        .map(|r| r.log)
        .ok_or_else(|| AppError::NotFound(format!("no build {id} in the history")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_sizes_read_like_the_cli() {
        assert_eq!(context_size(512), "512B");
        assert_eq!(context_size(2048), "2.048kB");
        assert_eq!(context_size(3_000_000), "3MB");
        assert_eq!(context_size(1_234_567), "1.235MB");
    }
}
