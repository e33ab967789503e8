//! The classic builder (`POST /build?version=1`): the context tar is unpacked into a temp
//! directory, the Dockerfile parsed ([`dockerfile`]), and each instruction of the stages up
//! to the target becomes one image on top of the previous one, as dockerd's classic builder
//! does: config-only steps add history, `COPY`/`ADD` add a layer written from the context
//! ([`copy`]), `RUN` runs a real container and commits its upper directory ([`run`]). Every
//! step is looked up in the [`cache`] first. Output lines follow dockerd's (`Step 1/3 : …`,
//! ` ---> <id>`, `Successfully built …`).

pub mod cache;
pub mod copy;
pub mod dockerfile;
mod graph;
mod ignore;
pub mod inline;
mod mounts;
mod run;
mod steps;
pub mod view;
pub mod words;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_docker_api::auth::AuthConfig;
use berth_docker_api::progress::{ErrorDetail, ProgressMessage};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::id::short;
use crate::image::create::ImageSpec;
use crate::image::reference::Reference;
use crate::image::Progress;
use crate::{Engine, EngineError, Result};
use dockerfile::Instruction;

/// `POST /build` parameters.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context (`Dockerfile` when empty).
    pub dockerfile: String,
    pub tags: Vec<String>,
    /// `--build-arg`s; `None` values are unset args.
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: String,
    pub no_cache: bool,
    pub pull: bool,
    /// Remove intermediate containers after a successful step (dockerd's default).
    pub remove: bool,
    /// Remove them after failures too.
    pub force_remove: bool,
    pub quiet: bool,
    pub network_mode: String,
    pub platform: String,
    /// `X-Registry-Config`: registry → credentials, for `FROM` pulls.
    pub auths: BTreeMap<String, AuthConfig>,
    /// `--add-host` entries (`host:ip`) for the `RUN` containers' `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    /// `--cache-from` images: when given, only steps these images were built from are cache
    /// hits (dockerd's classic builder with cache sources).
    pub cache_from: Vec<String>,
    /// BuildKit's `--cache-from <image>`: images whose inline cache record ([`inline`]) is a
    /// cache source beside the local step cache.
    pub cache_images: Vec<String>,
    /// BuildKit's way (the `dockerfile.v0` frontend): only the stages the target needs are
    /// built, independent ones at once ([`graph`]).
    pub buildkit: bool,
    /// Build secrets by id, for `RUN --mount=type=secret` (BuildKit builds only).
    pub secrets: Secrets,
    /// Cancelled when the client goes away (dockerd ends a build whose request is gone): no
    /// further step starts, a running `RUN` container is killed and removed, nothing is tagged.
    pub cancel: CancellationToken,
}

/// Secret values by id; never printed.
#[derive(Clone, Default)]
pub struct Secrets(pub BTreeMap<String, Vec<u8>>);

impl Secrets {
    pub(crate) fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(Vec::as_slice)
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// The ids of the secrets the `RUN --mount=type=secret` instructions of `dockerfile` use
/// (what a BuildKit frontend asks the client's session for before the build).
pub fn secret_ids(dockerfile: &str) -> Result<Vec<String>> {
    let df = dockerfile::parse(dockerfile)?;
    let mut ids = BTreeSet::new();
    for i in df.instructions.iter().filter(|i| i.cmd == "RUN") {
        for (_, v) in i.flags.iter().filter(|(k, _)| k == "mount") {
            if let Ok(mounts::RunMount::Secret { id, .. }) =
                mounts::parse(v, &words::Vars::new(), df.escape)
            {
                ids.insert(id);
            }
        }
    }
    Ok(ids.into_iter().collect())
}

/// The images the `FROM` lines of `dockerfile` name, global `ARG`s expanded (`build_args`
/// over their defaults), `scratch` and earlier stages left out: what a BuildKit frontend asks
/// the client's session for registry credentials for before the build.
pub fn base_image_refs(
    dockerfile: &str,
    build_args: &BTreeMap<String, Option<String>>,
) -> Result<Vec<String>> {
    let df = dockerfile::parse(dockerfile)?;
    let (meta, stages) = stages(df.instructions)?;
    let mut vars = words::Vars::new();
    for i in &meta {
        for (k, default) in words::key_values(&i.rest, &words::Vars::new(), df.escape, false)? {
            let value = match build_args.get(&k) {
                Some(Some(v)) => Some(v.clone()),
                _ => default,
            };
            if let Some(v) = value {
                vars.insert(k, v);
            }
        }
    }
    let mut names = BTreeSet::new();
    let mut refs: Vec<String> = Vec::new();
    for s in &stages {
        let word = s.from.rest.split_whitespace().next().unwrap_or_default();
        let image = words::expand(word, &vars, df.escape)?;
        if !image.eq_ignore_ascii_case("scratch")
            && !names.contains(&image.to_ascii_lowercase())
            && !refs.contains(&image)
        {
            refs.push(image);
        }
        if let Some(n) = &s.name {
            names.insert(n.clone());
        }
    }
    Ok(refs)
}

/// How a build ended when it did not fail with an [`EngineError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The image id (`sha256:…`).
    Built(String),
    /// A step failed and the error line (with its exit code) has been sent.
    Failed,
}

/// Why a step stopped the build.
pub(crate) enum Fail {
    Engine(EngineError),
    /// A `RUN` exited non-zero: reported with its code.
    Run {
        message: String,
        code: i64,
    },
}

impl From<EngineError> for Fail {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        Self::Engine(e.into())
    }
}

pub(crate) type StepResult<T = ()> = std::result::Result<T, Fail>;

/// The build's output stream.
pub(crate) struct Out {
    progress: Progress,
    quiet: bool,
}

impl Out {
    pub(crate) fn line(&self, s: impl Into<String>) {
        if !self.quiet {
            self.progress.send(ProgressMessage {
                stream: Some(s.into()),
                ..ProgressMessage::default()
            });
        }
    }
}

pub(crate) use crate::fsutil::TempDir;

/// One `FROM` and the instructions after it.
pub(crate) struct Stage {
    pub name: Option<String>,
    pub from: Instruction,
    pub body: Vec<Instruction>,
}

/// The state of the stage being built.
#[derive(Debug, Clone, Default)]
pub(crate) struct StageState {
    /// Current image id; `None` while a `FROM scratch` stage has no step yet.
    pub image: Option<String>,
    /// What the next step's cache key hashes as its parent: the last step's key, or the base
    /// image's id after `FROM`. Keys chain keys, as BuildKit's do, so a step image restored
    /// from an inline cache record ([`inline`]) continues the chain whatever its own id.
    pub cache_parent: Option<String>,
    /// The image config being built (Docker's PascalCase JSON).
    pub config: Value,
    /// Build args declared in this stage, with values.
    pub args: BTreeMap<String, String>,
    /// Whether `CMD` was set in this stage (`ENTRYPOINT` resets an inherited one).
    pub cmd_set: bool,
    pub author: String,
}

impl StageState {
    /// Variables for substitution: args, then `ENV` over them.
    pub(crate) fn vars(&self) -> words::Vars {
        let mut v = self.args.clone();
        for e in self.env() {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.to_string(), val.to_string());
            }
        }
        v
    }

    pub(crate) fn env(&self) -> Vec<String> {
        self.config["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn shell(&self) -> Vec<String> {
        self.config["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    pub(crate) fn workdir(&self) -> String {
        self.config["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }
}

/// What one build needs while it runs.
pub(crate) struct Build {
    pub engine: Arc<Engine>,
    pub opts: BuildOptions,
    pub out: Out,
    pub context: PathBuf,
    pub escape: char,
    pub cache: cache::BuildCache,
    /// Global `ARG`s (before the first `FROM`) with their values.
    pub meta_args: BTreeMap<String, Option<String>>,
    /// Build args some `ARG` declared.
    pub consumed: BTreeSet<String>,
    /// Finished stages: name (lower case) or index → image id.
    pub stages: Vec<(Option<String>, Option<String>)>,
    pub step: usize,
    pub total: usize,
    /// With `--cache-from`: the images those are built from (themselves included).
    pub cache_sources: Option<BTreeSet<String>>,
    /// The inline cache records of [`BuildOptions::cache_images`].
    pub inline: inline::InlineSources,
}

/// Splits instructions into stages; `ARG`s before the first `FROM` are returned apart.
fn stages(ins: Vec<Instruction>) -> Result<(Vec<Instruction>, Vec<Stage>)> {
    let mut meta = Vec::new();
    let mut out: Vec<Stage> = Vec::new();
    for i in ins {
        if i.cmd == "FROM" {
            let w: Vec<&str> = i.rest.split_whitespace().collect();
            let name = match w.as_slice() {
                [_] => None,
                [_, as_, n] if as_.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
                _ => {
                    return Err(EngineError::invalid(format!(
                        "dockerfile parse error on line {}: FROM requires either one or three arguments",
                        i.line
                    )))
                }
            };
            out.push(Stage {
                name,
                from: i,
                body: vec![],
            });
        } else if let Some(s) = out.last_mut() {
            s.body.push(i);
        } else if i.cmd == "ARG" {
            meta.push(i);
        } else {
            return Err(EngineError::invalid(
                "no build stage in current context".to_string(),
            ));
        }
    }
    if out.is_empty() {
        return Err(EngineError::invalid(
            "the Dockerfile (Dockerfile) cannot be empty",
        ));
    }
    Ok((meta, out))
}

/// The credentials `X-Registry-Config` holds for the registry of `reference`.
fn auth_for(auths: &BTreeMap<String, AuthConfig>, reference: &str) -> Option<AuthConfig> {
    let domain = Reference::parse(reference).ok()?.domain;
    let keys: Vec<String> = if domain == "docker.io" {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            domain.clone(),
            format!("https://{domain}"),
            format!("http://{domain}"),
        ]
    };
    keys.iter().find_map(|k| auths.get(k).cloned())
}

fn quote_label(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Build {
    pub(crate) fn header(&mut self, original: &str) {
        self.step += 1;
        self.out
            .line(format!("Step {}/{} : {original}\n", self.step, self.total));
    }

    /// Stops the build between steps once it is cancelled.
    pub(crate) fn check_cancelled(&self) -> StepResult {
        if self.opts.cancel.is_cancelled() {
            return Err(Fail::Engine(cancelled()));
        }
        Ok(())
    }

    pub(crate) fn image_exists(&self, id: &str) -> bool {
        self.engine.images.image_id(id).is_ok()
    }

    /// A local image for `reference`, pulled when missing (or always with `--pull`).
    pub(crate) async fn base_image(&self, reference: &str) -> Result<String> {
        if !self.opts.pull {
            if let Ok(id) = self.engine.images.image_id(reference) {
                return Ok(id);
            }
        }
        let progress = if self.out.quiet {
            Progress::discard()
        } else {
            self.out.progress.clone()
        };
        let auth = auth_for(&self.opts.auths, reference);
        self.engine
            .images
            .pull(reference, &self.opts.platform, auth, progress)
            .await
    }

    /// The image of an earlier stage named `name` (or numbered), else the image `name`
    /// ([`Self::base_image`]): what `FROM`, `COPY --from` and bind mounts read.
    pub(crate) async fn image_for(&self, name: &str) -> Result<String> {
        match self.stage_image(name) {
            Some(id) => Ok(id),
            None => self.base_image(name).await,
        }
    }

    /// The image of an earlier stage named `name` (or numbered), if any.
    pub(crate) fn stage_image(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        if let Ok(n) = name.parse::<usize>() {
            return self.stages.get(n).and_then(|(_, id)| id.clone());
        }
        self.stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
            .and_then(|(_, id)| id.clone())
    }

    /// Looks `key` up in the cache; on a hit moves the stage there.
    pub(crate) fn cached(&self, st: &mut StageState, key: &str) -> bool {
        if self.opts.no_cache {
            return false;
        }
        let hit = self.cache.get(key, |id| {
            self.image_exists(id)
                && self
                    .cache_sources
                    .as_ref()
                    .is_none_or(|ids| ids.contains(id))
        });
        match hit {
            Some(id) => {
                self.out.line(" ---> Using cache\n");
                self.out.line(format!(" ---> {}\n", short(&id)));
                st.image = Some(id);
                st.cache_parent = Some(key.to_string());
                true
            }
            None => self.restore_from_inline(st, key),
        }
    }

    /// Makes the step's image from the stage state and an optional layer tar.
    pub(crate) async fn commit(
        &self,
        st: &mut StageState,
        created_by: String,
        key: &str,
        layer: Option<PathBuf>,
    ) -> Result<()> {
        let spec = ImageSpec {
            parent: st.image.clone(),
            config: Some(st.config.clone()),
            created_by,
            author: st.author.clone(),
            ..ImageSpec::default()
        };
        let images = self.engine.images.clone();
        let id = tokio::task::spawn_blocking(move || match layer {
            Some(p) => images.create_image(spec, Some(std::fs::File::open(p)?)),
            None => images.create_image(spec, None::<std::fs::File>),
        })
        .await
        .map_err(|e| EngineError::internal(format!("build step failed: {e}")))??;
        self.finish_step(st, key, id)
    }

    /// Records a new step image in the cache and moves the stage there.
    pub(crate) fn finish_step(&self, st: &mut StageState, key: &str, id: String) -> Result<()> {
        self.cache.put(key, &id, |i| self.image_exists(i))?;
        self.out.line(format!(" ---> {}\n", short(&id)));
        st.image = Some(id);
        st.cache_parent = Some(key.to_string());
        Ok(())
    }

    /// A scratch path under the build directory.
    pub(crate) fn scratch(&self, what: &str) -> PathBuf {
        self.engine
            .config
            .data_root
            .join("build")
            .join(format!("{what}-{}", &crate::id::new_id()[..16]))
    }
}

/// The error of a build whose client went away (dockerd's text for a cancelled request).
pub(crate) fn cancelled() -> EngineError {
    EngineError::new(crate::error::ErrorKind::Unavailable, "context canceled")
}

/// Removes what builds cut short by a crash left under `<data-root>/build/`: contexts,
/// layer tars and image views (unmounted first). Called at engine open, before any build.
pub fn clean_leftovers(data_root: &Path) {
    crate::fsutil::remove_interrupted_writes(&data_root.join("build"));
    let Ok(entries) = std::fs::read_dir(data_root.join("build")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if name.starts_with("mnt-") {
            crate::mount::unmount(&p);
        }
        if ["ctx-", "layer-", "mnt-"]
            .iter()
            .any(|x| name.starts_with(x))
        {
            tracing::info!(path = %p.display(), "removing leftover of an interrupted build");
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// Unpacks the context (a tar, plain or compressed) into a fresh directory. The docker CLI's
/// rewritten tars (`-f` outside the context) may end without the final padding and trailer:
/// zeros after the stream complete them (a well-formed tar ignores them).
fn unpack_context(context: impl Read, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let decoded = crate::compression::decoder(std::io::BufReader::new(context))?;
    let mut padded = decoded.chain(std::io::repeat(0).take(1024));
    crate::image::unpack::unpack(&mut padded, dir)
        .map_err(|e| e.context("unpacking the build context"))?;
    std::io::copy(&mut padded, &mut std::io::sink())?;
    Ok(())
}

impl Engine {
    /// The ids of the `--cache-from` images and of the images each was built on (missing
    /// ones are skipped, as dockerd does).
    fn cache_sources(&self, refs: &[String]) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for r in refs {
            let mut next = self.images.inspect(r).ok();
            while let Some(img) = next.take() {
                if !ids.insert(img.id.clone()) || img.parent.is_empty() {
                    break;
                }
                next = self.images.inspect(&img.parent).ok();
            }
        }
        ids
    }

    /// `POST /build/prune`: forgets the step cache; returns the dropped keys.
    pub fn prune_build_cache(&self) -> Result<Vec<String>> {
        let cache_mounts = self.config.data_root.join("build").join("cache-mounts");
        if let Err(e) = std::fs::remove_dir_all(&cache_mounts) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(e.into());
            }
        }
        cache::BuildCache::new(&self.config.data_root).clear()
    }

    /// Runs a classic build of `context` (a tar stream), reporting on `progress`.
    pub async fn build(
        self: &Arc<Self>,
        opts: BuildOptions,
        context: impl Read + Send + 'static,
        progress: Progress,
    ) -> Result<Outcome> {
        let mut tags = Vec::new();
        for t in &opts.tags {
            let r = Reference::parse(t).map_err(|e| {
                EngineError::invalid(format!("invalid tag \"{t}\": {}", e.message()))
            })?;
            if r.digest.is_some() {
                return Err(EngineError::invalid(format!(
                    "invalid tag \"{t}\": tags cannot contain digests"
                )));
            }
            tags.push(r.with_default_tag());
        }
        let ctx = TempDir(
            self.config
                .data_root
                .join("build")
                .join(format!("ctx-{}", &crate::id::new_id()[..16])),
        );
        let dir = ctx.0.clone();
        tokio::task::spawn_blocking(move || unpack_context(context, &dir))
            .await
            .map_err(|e| EngineError::internal(format!("context unpack failed: {e}")))??;
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let text = std::fs::read_to_string(ctx.0.join(copy::clean_rel(&name))).map_err(|_| {
            EngineError::invalid(format!("Cannot locate specified Dockerfile: {name}"))
        })?;
        ignore::drop_ignored_specials(&ctx.0, &name)?;
        let df = dockerfile::parse(&text)?;
        let (meta, mut stages) = stages(df.instructions)?;
        let target = if opts.target.is_empty() {
            stages.len() - 1
        } else {
            let t = opts.target.to_ascii_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    EngineError::invalid(format!(
                        "failed to reach build target {} in Dockerfile",
                        opts.target
                    ))
                })?
        };
        stages.truncate(target + 1);
        if !opts.labels.is_empty() {
            let pairs: Vec<String> = opts
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", quote_label(k), quote_label(v)))
                .collect();
            let rest = pairs.join(" ");
            if let Some(last) = stages.last_mut() {
                last.body.push(Instruction {
                    cmd: "LABEL".into(),
                    flags: vec![],
                    original: format!("LABEL {rest}"),
                    rest,
                    json: None,
                    line: 0,
                    heredocs: vec![],
                });
            }
        }
        let total = meta.len() + stages.iter().map(|s| 1 + s.body.len()).sum::<usize>();
        let quiet = opts.quiet;
        let mut b = Build {
            engine: self.clone(),
            cache: cache::BuildCache::new(&self.config.data_root),
            out: Out {
                progress: progress.clone(),
                quiet,
            },
            context: ctx.0.clone(),
            escape: df.escape,
            meta_args: BTreeMap::new(),
            consumed: BTreeSet::new(),
            stages: vec![],
            step: 0,
            total,
            cache_sources: (!opts.cache_from.is_empty())
                .then(|| self.cache_sources(&opts.cache_from)),
            inline: self.inline_sources(&opts.cache_images),
            opts,
        };
        match b.run(&meta, stages).await {
            Ok(id) => {
                let unused: Vec<&String> = b
                    .opts
                    .build_args
                    .keys()
                    .filter(|k| !b.consumed.contains(*k))
                    .collect();
                if !unused.is_empty() {
                    let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
                    b.out.line(format!(
                        "[Warning] One or more build-args [{}] were not consumed\n",
                        names.join(" ")
                    ));
                }
                progress.send(ProgressMessage {
                    aux: Some(json!({ "ID": id })),
                    ..ProgressMessage::default()
                });
                b.out.line(format!("Successfully built {}\n", short(&id)));
                for t in &tags {
                    self.images.tag(&id, &t.to_string(), "")?;
                    b.out
                        .line(format!("Successfully tagged {}\n", t.familiar()));
                }
                if quiet {
                    progress.send(ProgressMessage {
                        stream: Some(format!("{id}\n")),
                        ..ProgressMessage::default()
                    });
                }
                Ok(Outcome::Built(id))
            }
            Err(Fail::Engine(e)) => Err(e),
            Err(Fail::Run { message, code }) => {
                progress.send(ProgressMessage {
                    error_detail: Some(ErrorDetail {
                        code: Some(code),
                        message: message.clone(),
                    }),
                    error: Some(message),
                    ..ProgressMessage::default()
                });
                Ok(Outcome::Failed)
            }
        }
    }
}

impl Build {
    async fn run(&mut self, meta: &[Instruction], stages: Vec<Stage>) -> StepResult<String> {
        for i in meta {
            self.header(&i.original);
            let pairs = words::key_values(&i.rest, &words::Vars::new(), self.escape, false)?;
            for (k, default) in pairs {
                self.consumed.insert(k.clone());
                let v = match self.opts.build_args.get(&k) {
                    Some(Some(v)) => Some(v.clone()),
                    _ => default,
                };
                self.meta_args.insert(k, v);
            }
        }
        let last = if self.opts.buildkit {
            self.run_graph(stages).await?
        } else {
            let mut last = None;
            for stage in stages {
                self.check_cancelled()?;
                let id = self.stage(&stage).await?;
                self.stages.push((stage.name.clone(), id.clone()));
                last = id;
            }
            last
        };
        last.ok_or_else(|| {
            Fail::Engine(EngineError::invalid(
                "No image was generated. Is your Dockerfile empty?",
            ))
        })
    }

    /// The global `ARG`s (before the first `FROM`) that have a value.
    fn meta_vars(&self) -> words::Vars {
        self.meta_args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    /// Builds the stages the last one needs, wave by wave, the stages of a wave at once
    /// (each in its own [`Build::fork`]); returns the last stage's image.
    async fn run_graph(&mut self, stages: Vec<Stage>) -> StepResult<Option<String>> {
        let vars = self.meta_vars();
        let deps = graph::dependencies(&stages, &vars, self.escape);
        let target = stages.len() - 1;
        let needed = graph::needed(&deps, target);
        // Step numbers as if the needed stages ran in order.
        let mut first_step = vec![0; stages.len()];
        let mut step = self.step;
        for &k in &needed {
            first_step[k] = step;
            step += 1 + stages[k].body.len();
        }
        self.total = step;
        self.stages = stages.iter().map(|s| (s.name.clone(), None)).collect();
        for wave in graph::waves(&deps, &needed) {
            self.check_cancelled()?;
            let mut forks: Vec<(usize, Build)> = wave
                .iter()
                .map(|&k| (k, self.fork(first_step[k])))
                .collect();
            let results =
                futures::future::join_all(forks.iter_mut().map(|(k, b)| b.stage(&stages[*k])))
                    .await;
            for ((k, b), res) in forks.into_iter().zip(results) {
                self.consumed.extend(b.consumed);
                self.stages[k].1 = res?;
            }
        }
        self.step = step;
        Ok(self.stages[target].1.clone())
    }

    /// A copy of this build's state for one stage that runs beside others, numbering its
    /// steps from `step`.
    fn fork(&self, step: usize) -> Build {
        Build {
            engine: self.engine.clone(),
            opts: self.opts.clone(),
            out: Out {
                progress: self.out.progress.clone(),
                quiet: self.out.quiet,
            },
            context: self.context.clone(),
            escape: self.escape,
            cache: cache::BuildCache::new(&self.engine.config.data_root),
            meta_args: self.meta_args.clone(),
            consumed: BTreeSet::new(),
            stages: self.stages.clone(),
            step,
            total: self.total,
            cache_sources: self.cache_sources.clone(),
            inline: self.inline.clone(),
        }
    }

    async fn stage(&mut self, stage: &Stage) -> StepResult<Option<String>> {
        self.header(&stage.from.original);
        let vars = self.meta_vars();
        let base_word = stage
            .from
            .rest
            .split_whitespace()
            .next()
            .unwrap_or_default();
        let base = words::expand(base_word, &vars, self.escape)?;
        let mut st = StageState::default();
        if base.eq_ignore_ascii_case("scratch") {
            st.config = json!({});
            self.out.line(" ---> \n");
        } else {
            let id = self.image_for(&base).await?;
            let (id, config) = self.engine.images.config_json(&id)?;
            self.out.line(format!(" ---> {}\n", short(&id)));
            st.cache_parent = Some(id.clone());
            st.image = Some(id);
            st.config = config;
        }
        self.run_triggers(&mut st).await?;
        for i in &stage.body {
            self.check_cancelled()?;
            self.header(&i.original);
            self.instruction(&mut st, i).await?;
        }
        Ok(st.image)
    }

    /// The base image's `ONBUILD` triggers run first, in order; the new image has none.
    async fn run_triggers(&mut self, st: &mut StageState) -> StepResult {
        let triggers: Vec<String> = st.config["OnBuild"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        st.config["OnBuild"] = Value::Null;
        let s = if triggers.len() == 1 { "" } else { "s" };
        self.out
            .line(format!("# Executing {} build trigger{s}\n", triggers.len()));
        for t in &triggers {
            let i = dockerfile::parse_trigger(t, self.escape)?;
            self.instruction(st, &i).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_expand_global_args_and_skip_stages_and_scratch() {
        let df = "ARG REG=reg.example:5000\nARG TAG\n\
                  FROM ${REG}/base:${TAG} AS build\nRUN true\n\
                  FROM build\nFROM scratch\nFROM busybox AS b2\nFROM ${REG}/base:${TAG}\n";
        let args = [("TAG".to_string(), Some("1".to_string()))].into();
        assert_eq!(
            base_image_refs(df, &args).unwrap(),
            ["reg.example:5000/base:1", "busybox"]
        );
    }
}
