//! `RUN --mount=…` (BuildKit's Dockerfile syntax): the options parsed into [`RunMount`]s, then
//! made into the `RUN` container's mounts ([`Build::prepare_mounts`]) — nothing of them is
//! in the step's layer, since the layer is the container's upper directory and these are
//! mounted over it:
//!
//! - `type=cache`: a directory under `<data-root>/build/cache-mounts/`, named by the mount's
//!   `id` (default: its target), kept across builds; `sharing=shared` (default) lets steps
//!   use it at once, `locked` makes them take turns, `private` gives a step that finds it in
//!   use a fresh empty directory for that step.
//! - `type=bind`: a path of the context (default) or of another stage or image (`from=`),
//!   read-only unless `rw`; with `rw` the step writes to a throwaway copy.
//! - `type=tmpfs`: an empty tmpfs (`size=` in bytes).
//! - `type=secret`: the build's secret `id` (from `--secret id=…,src=…`) as a file,
//!   `/run/secrets/<id>` by default; a missing secret is skipped unless `required`.
//!
//! The step's cache key covers each mount's options, a bind's content and nothing of a
//! secret's value (BuildKit does the same).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use berth_docker_api::container::Mount;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::copy::{clean_rel, copy_layer, CopySpec};
use super::view::ImageView;
use super::words::{expand, Vars};
use super::{Build, TempDir};
use crate::{EngineError, Result};

/// How concurrent steps share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunMount {
    Cache {
        id: String,
        target: String,
        sharing: Sharing,
        readonly: bool,
        /// Mode and owner of the directory when it is first made.
        mode: u32,
        owner: (u32, u32),
    },
    Bind {
        from: Option<String>,
        source: String,
        target: String,
        rw: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    Secret {
        id: String,
        target: String,
        required: bool,
        mode: u32,
        owner: (u32, u32),
    },
}

fn invalid(m: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(m)
}

/// The options of one `--mount` value, variables expanded: `key=value` or a bare flag.
fn fields(spec: &str, vars: &Vars, escape: char) -> Result<Vec<(String, Option<String>)>> {
    spec.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let f = expand(f, vars, escape)?;
            Ok(match f.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
                None => (f.to_ascii_lowercase(), None),
            })
        })
        .collect()
}

fn bool_value(key: &str, v: Option<&str>) -> Result<bool> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(invalid(format!("invalid value for {key}: {other}"))),
    }
}

fn number(key: &str, v: Option<&str>, radix: u32) -> Result<u32> {
    let v = v.unwrap_or_default();
    u32::from_str_radix(v, radix).map_err(|_| invalid(format!("invalid value for {key}: {v}")))
}

/// The options every mount type reads, gathered before the type decides which apply.
#[derive(Default)]
struct Options {
    typ: Option<String>,
    target: Option<String>,
    source: Option<String>,
    from: Option<String>,
    id: Option<String>,
    sharing: Option<String>,
    readonly: Option<bool>,
    required: bool,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
}

impl Options {
    fn read(spec: &str, vars: &Vars, escape: char) -> Result<Self> {
        let mut o = Options::default();
        for (k, v) in fields(spec, vars, escape)? {
            let val = v.as_deref();
            match k.as_str() {
                "type" => o.typ = v,
                "target" | "dst" | "destination" => o.target = v,
                "source" | "src" => o.source = v,
                "from" => o.from = v,
                "id" => o.id = v,
                "sharing" => o.sharing = v,
                "readonly" | "ro" => o.readonly = Some(bool_value(&k, val)?),
                "readwrite" | "rw" => o.readonly = Some(!bool_value(&k, val)?),
                "required" => o.required = bool_value(&k, val)?,
                "mode" => o.mode = Some(number(&k, val, 8)?),
                "uid" => o.uid = Some(number(&k, val, 10)?),
                "gid" => o.gid = Some(number(&k, val, 10)?),
                "size" => {
                    let s = val.unwrap_or_default();
                    o.size = Some(
                        s.parse()
                            .map_err(|_| invalid(format!("invalid value for size: {s}")))?,
                    );
                }
                _ => {
                    return Err(invalid(format!(
                        "unexpected key '{k}' in '{}'",
                        v.map_or(k.clone(), |v| format!("{k}={v}"))
                    )))
                }
            }
        }
        Ok(o)
    }

    fn target(&self, typ: &str) -> Result<String> {
        match self.target.as_deref() {
            Some(t) if !t.is_empty() => Ok(absolute(t)),
            _ => Err(invalid(format!("mount type={typ}: a target is required"))),
        }
    }

    fn owner(&self) -> (u32, u32) {
        (self.uid.unwrap_or(0), self.gid.unwrap_or(0))
    }
}

/// `/` + the cleaned path.
fn absolute(p: &str) -> String {
    format!("/{}", clean_rel(p).display())
}

/// Parses one `--mount` value of a `RUN`.
pub(crate) fn parse(spec: &str, vars: &Vars, escape: char) -> Result<RunMount> {
    let o = Options::read(spec, vars, escape)?;
    let typ = o.typ.clone().unwrap_or_else(|| "bind".into());
    match typ.as_str() {
        "cache" => {
            let target = o.target("cache")?;
            let sharing = match o.sharing.as_deref() {
                None | Some("shared") => Sharing::Shared,
                Some("private") => Sharing::Private,
                Some("locked") => Sharing::Locked,
                Some(other) => {
                    return Err(invalid(format!("unsupported sharing value \"{other}\"")))
                }
            };
            Ok(RunMount::Cache {
                id: o
                    .id
                    .clone()
                    .filter(|i| !i.is_empty())
                    .unwrap_or(target.clone()),
                target,
                sharing,
                readonly: o.readonly.unwrap_or(false),
                mode: o.mode.unwrap_or(0o755),
                owner: o.owner(),
            })
        }
        "bind" => Ok(RunMount::Bind {
            target: o.target("bind")?,
            from: o.from.clone().filter(|f| !f.is_empty()),
            source: o.source.clone().unwrap_or_else(|| ".".into()),
            rw: o.readonly == Some(false),
        }),
        "tmpfs" => Ok(RunMount::Tmpfs {
            target: o.target("tmpfs")?,
            size: o.size,
        }),
        "secret" => {
            let id = match (&o.id, &o.target) {
                (Some(id), _) if !id.is_empty() => id.clone(),
                (_, Some(t)) => Path::new(t)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            if id.is_empty() {
                return Err(invalid("mount type=secret: an id or a target is required"));
            }
            Ok(RunMount::Secret {
                target: o
                    .target
                    .as_deref()
                    .map_or_else(|| format!("/run/secrets/{id}"), absolute),
                id,
                required: o.required,
                mode: o.mode.unwrap_or(0o400),
                owner: o.owner(),
            })
        }
        "ssh" => Err(invalid(
            "mount type=ssh is not supported by Berth's builder yet",
        )),
        other => Err(invalid(format!("unsupported mount type \"{other}\""))),
    }
}

/// What keeps a step's mounts usable until its container is gone (dropped after): image
/// views, throwaway directories, cache mount locks.
type Guard = Box<dyn std::any::Any + Send>;

/// The container mounts of one `RUN`, and what must live as long as it runs.
pub(crate) struct Prepared {
    pub mounts: Vec<Mount>,
    _guards: Vec<Guard>,
}

/// Cache mounts in use with `sharing=locked|private`, by directory.
static CACHE_LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

fn cache_lock(dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = CACHE_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks.entry(dir.to_path_buf()).or_default().clone()
}

fn bind(source: &Path, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: "bind".into(),
        source: source.display().to_string(),
        target: target.to_string(),
        read_only,
        ..Mount::default()
    }
}

/// The directory of cache mount `id` under the data root.
pub(crate) fn cache_dir(data_root: &Path, id: &str) -> PathBuf {
    let name = hex::encode(&Sha256::digest(id.as_bytes())[..16]);
    data_root.join("build").join("cache-mounts").join(name)
}

/// Makes `dir` (and its parents) when missing, with `mode` and `owner` on `dir` itself.
fn make_dir(dir: &Path, mode: u32, owner: (u32, u32)) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::chown(dir, Some(owner.0), Some(owner.1))?;
    Ok(())
}

/// Copies the tree at `src` into `dst` (a throwaway copy for a `rw` bind).
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    if meta.is_dir() {
        std::fs::create_dir_all(dst)?;
        std::fs::set_permissions(dst, meta.permissions())?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
    } else if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
    } else {
        std::fs::copy(src, dst)?;
    }
    Ok(())
}

impl Build {
    /// The `--mount`s of `RUN` instruction flags, parsed.
    pub(crate) fn run_mounts(
        &self,
        flags: &[(String, String)],
        vars: &Vars,
    ) -> Result<Vec<RunMount>> {
        flags
            .iter()
            .filter(|(k, _)| k == "mount")
            .map(|(_, v)| parse(v, vars, self.escape))
            .collect()
    }

    /// The root a bind mount reads from: the context, or a view of a stage or image.
    async fn bind_root(&self, from: Option<&str>) -> Result<(PathBuf, Option<ImageView>)> {
        let Some(from) = from else {
            return Ok((self.context.clone(), None));
        };
        let id = self.image_for(from).await?;
        let layers = self.layers_of(Some(&id)).await?;
        let scratch = self.scratch("mnt");
        let view = tokio::task::spawn_blocking(move || ImageView::open(&layers, scratch))
            .await
            .map_err(|e| EngineError::internal(format!("bind mount view failed: {e}")))??;
        Ok((view.root().to_path_buf(), Some(view)))
    }

    /// What the step's cache key holds for its mounts: their options, the content of binds
    /// (a checksum of the files, as `COPY` computes it).
    pub(crate) async fn mounts_key(&self, mounts: &[RunMount]) -> Result<String> {
        let mut key = String::new();
        for m in mounts {
            key.push_str(&format!("{m:?};"));
            if let RunMount::Bind { from, source, .. } = m {
                let (root, view) = self.bind_root(from.as_deref()).await?;
                let sources = vec![source.clone()];
                let scratch = self.scratch("mnt");
                let sum = tokio::task::spawn_blocking(move || -> Result<String> {
                    let empty = ImageView::open(&[], scratch)?;
                    let spec = CopySpec {
                        src_root: &root,
                        sources,
                        dest: "/bind/".into(),
                        owner: (0, 0),
                        chmod: None,
                        add: false,
                        link: false,
                        cmd: "RUN --mount=type=bind",
                    };
                    let sum = copy_layer(&spec, &empty, std::io::sink());
                    drop(view);
                    sum
                })
                .await
                .map_err(|e| EngineError::internal(format!("bind mount checksum failed: {e}")))??;
                key.push_str(&sum);
            }
        }
        Ok(key)
    }

    /// Makes the container mounts of `mounts` for one run of a step.
    pub(crate) async fn prepare_mounts(&self, mounts: &[RunMount]) -> Result<Prepared> {
        let mut out = Prepared {
            mounts: vec![],
            _guards: vec![],
        };
        for m in mounts {
            match m {
                RunMount::Cache {
                    id,
                    target,
                    sharing,
                    readonly,
                    mode,
                    owner,
                } => {
                    let mut dir = cache_dir(&self.engine.config.data_root, id);
                    match sharing {
                        Sharing::Shared => {}
                        Sharing::Locked => {
                            let g = cache_lock(&dir).lock_owned().await;
                            out._guards.push(Box::new(g));
                        }
                        Sharing::Private => match cache_lock(&dir).try_lock_owned() {
                            Ok(g) => out._guards.push(Box::new(g)),
                            Err(_) => {
                                let tmp = TempDir(self.scratch("ctx-cache"));
                                dir = tmp.0.clone();
                                out._guards.push(Box::new(tmp));
                            }
                        },
                    }
                    make_dir(&dir, *mode, *owner)?;
                    out.mounts.push(bind(&dir, target, *readonly));
                }
                RunMount::Bind {
                    from,
                    source,
                    target,
                    rw,
                } => {
                    let (root, view) = self.bind_root(from.as_deref()).await?;
                    let path = root.join(clean_rel(source));
                    if std::fs::symlink_metadata(&path).is_err() {
                        return Err(invalid(format!(
                            "mount type=bind: source \"{source}\" not found"
                        )));
                    }
                    if let Some(v) = view {
                        out._guards.push(Box::new(v));
                    }
                    if *rw {
                        let tmp = TempDir(self.scratch("ctx-bind"));
                        let copy = tmp.0.join("src");
                        let (p, c) = (path.clone(), copy.clone());
                        tokio::task::spawn_blocking(move || {
                            std::fs::create_dir_all(c.parent().unwrap_or(Path::new("/")))?;
                            copy_tree(&p, &c)
                        })
                        .await
                        .map_err(|e| EngineError::internal(format!("bind copy failed: {e}")))??;
                        out.mounts.push(bind(&copy, target, false));
                        out._guards.push(Box::new(tmp));
                    } else {
                        out.mounts.push(bind(&path, target, true));
                    }
                }
                RunMount::Tmpfs { target, size } => out.mounts.push(Mount {
                    typ: "tmpfs".into(),
                    target: target.clone(),
                    tmpfs_options: size.map(|s| json!({ "SizeBytes": s })),
                    ..Mount::default()
                }),
                RunMount::Secret {
                    id,
                    target,
                    required,
                    mode,
                    owner,
                } => {
                    let Some(value) = self.opts.secrets.get(id) else {
                        if *required {
                            return Err(invalid(format!("secret {id}: not found")));
                        }
                        continue;
                    };
                    let tmp = TempDir(self.scratch("ctx-secret"));
                    let file = tmp.0.join("secret");
                    write_secret(&file, value, *mode, *owner)?;
                    out.mounts.push(bind(&file, target, true));
                    out._guards.push(Box::new(tmp));
                }
            }
        }
        Ok(out)
    }
}

/// Writes a secret's value into a fresh file readable by `owner` only (by default).
fn write_secret(file: &Path, value: &[u8], mode: u32, owner: (u32, u32)) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(file.parent().unwrap_or(Path::new("/")))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(value)?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::chown(file, Some(owner.0), Some(owner.1))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spec: &str) -> Result<RunMount> {
        let vars: Vars = [("D".to_string(), "/deps".to_string())].into();
        parse(spec, &vars, '\\')
    }

    #[test]
    fn mount_options_parse_with_buildkit_defaults() {
        assert_eq!(
            p("type=cache,target=$D").unwrap(),
            RunMount::Cache {
                id: "/deps".into(),
                target: "/deps".into(),
                sharing: Sharing::Shared,
                readonly: false,
                mode: 0o755,
                owner: (0, 0),
            }
        );
        let RunMount::Cache { id, sharing, .. } =
            p("type=cache,id=x,dst=/c,sharing=locked").unwrap()
        else {
            panic!("not a cache mount");
        };
        assert_eq!((id.as_str(), sharing), ("x", Sharing::Locked));
        assert_eq!(
            p("target=/src,from=build,source=out,rw").unwrap(),
            RunMount::Bind {
                from: Some("build".into()),
                source: "out".into(),
                target: "/src".into(),
                rw: true,
            }
        );
        assert_eq!(
            p("type=secret,id=tok").unwrap(),
            RunMount::Secret {
                id: "tok".into(),
                target: "/run/secrets/tok".into(),
                required: false,
                mode: 0o400,
                owner: (0, 0),
            }
        );
        let RunMount::Secret { id, required, .. } =
            p("type=secret,target=/etc/key,required").unwrap()
        else {
            panic!("not a secret");
        };
        assert_eq!((id.as_str(), required), ("key", true));
        assert_eq!(
            p("type=tmpfs,target=/t,size=1024").unwrap(),
            RunMount::Tmpfs {
                target: "/t".into(),
                size: Some(1024),
            }
        );
    }

    #[test]
    fn bad_mounts_are_errors_in_buildkit_words() {
        let msg = |s: &str| p(s).unwrap_err().message().to_string();
        assert_eq!(msg("type=nfs,target=/x"), "unsupported mount type \"nfs\"");
        assert_eq!(msg("type=cache"), "mount type=cache: a target is required");
        assert_eq!(
            msg("type=cache,target=/c,colour=red"),
            "unexpected key 'colour' in 'colour=red'"
        );
        assert_eq!(
            msg("type=cache,target=/c,sharing=sometimes"),
            "unsupported sharing value \"sometimes\""
        );
        assert!(msg("type=ssh").contains("not supported"));
    }

    #[test]
    fn cache_dirs_are_named_by_id() {
        let root = Path::new("/r");
        assert_eq!(cache_dir(root, "a"), cache_dir(root, "a"));
        assert_ne!(cache_dir(root, "a"), cache_dir(root, "b"));
        assert!(cache_dir(root, "../../x").starts_with("/r/build/cache-mounts"));
    }
}
