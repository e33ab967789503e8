//! The `dockerfile.v0` frontend on the classic builder: the Dockerfile and the context come
//! over the session's file sync (the context filtered by its `.dockerignore` on the client's
//! side, as BuildKit does), are packed into the tar the classic builder takes, and the
//! builder's output lines become the build's vertexes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use berth_docker_api::auth::AuthConfig;
use berth_engine::build::view::ImageView;
use berth_engine::build::{BuildOptions, Outcome, Secrets};
use berth_engine::fsutil::TempDir;
use berth_engine::image::reference::Reference;
use berth_engine::image::Progress;
use berth_engine::{Engine, EngineError};

use super::filesend;
use super::filesync::{self, SyncRequest};
use super::registry::BuildEntry;
use super::session::{origin, SessionClient};
use super::status::Vertexes;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrontendError {
    #[error("{0}")]
    Sync(#[from] filesync::SyncError),
    #[error("{}", .0.message())]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

impl From<FrontendError> for tonic::Status {
    fn from(e: FrontendError) -> Self {
        use berth_engine::ErrorKind;
        match &e {
            FrontendError::Engine(ee) if ee.kind() == ErrorKind::InvalidArgument => {
                tonic::Status::invalid_argument(e.to_string())
            }
            FrontendError::Engine(ee) if ee.kind() == ErrorKind::NotFound => {
                tonic::Status::not_found(e.to_string())
            }
            _ => tonic::Status::unknown(e.to_string()),
        }
    }
}

/// The classic builder's options from the frontend's attributes (`build-arg:K`, `label:K`,
/// `target`, `no-cache`, `image-resolve-mode`, `platform`, `force-network-mode`).
pub(crate) fn build_options(attrs: &HashMap<String, String>) -> BuildOptions {
    let mut o = BuildOptions {
        remove: true,
        force_remove: true,
        buildkit: true,
        ..BuildOptions::default()
    };
    for (k, v) in attrs {
        if let Some(name) = k.strip_prefix("build-arg:") {
            o.build_args.insert(name.to_string(), Some(v.clone()));
        } else if let Some(name) = k.strip_prefix("label:") {
            o.labels.insert(name.to_string(), v.clone());
        }
    }
    o.target = attrs.get("target").cloned().unwrap_or_default();
    o.no_cache = attrs.contains_key("no-cache");
    o.pull = attrs.get("image-resolve-mode").map(String::as_str) == Some("pull");
    o.platform = attrs
        .get("platform")
        .filter(|p| !p.contains(','))
        .cloned()
        .unwrap_or_default();
    o.network_mode = attrs.get("force-network-mode").cloned().unwrap_or_default();
    o.cache_images = cache_import_refs(attrs);
    o
}

/// One of BuildKit's cache imports, as its client writes them into `cache-imports`.
#[derive(serde::Deserialize)]
struct CacheImport {
    #[serde(rename = "Type", alias = "type")]
    kind: String,
    #[serde(rename = "Attrs", alias = "attrs", default)]
    attrs: HashMap<String, String>,
}

/// The images of the build's registry cache imports (`--cache-from <image>`, or
/// `type=registry,ref=<image>`), whose inline cache records the build may reuse: from the
/// `cache-imports` attribute (JSON, what BuildKit's client sends) and the older `cache-from`
/// (comma separated). Other types are not read (`local` needs the session's content store).
pub(crate) fn cache_import_refs(attrs: &HashMap<String, String>) -> Vec<String> {
    let mut refs: Vec<String> = attrs
        .get("cache-imports")
        .and_then(|j| serde_json::from_str::<Vec<CacheImport>>(j).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == "registry")
        .filter_map(|e| e.attrs.get("ref").cloned())
        .collect();
    if let Some(list) = attrs.get("cache-from") {
        refs.extend(
            list.split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty() && !refs.iter().any(|x| x == r))
                .map(String::from)
                .collect::<Vec<_>>(),
        );
    }
    refs
}

/// `.dockerignore` lines as exclude patterns.
fn ignore_patterns(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Fetches one file of a session directory, `None` when it does not exist.
async fn fetch_file(
    session: &SessionClient,
    dir_name: &str,
    name: &str,
    scratch: &Path,
) -> Result<Option<Vec<u8>>, FrontendError> {
    let dir = scratch.join(format!("{dir_name}-{}", &berth_engine::id::new_id()[..8]));
    std::fs::create_dir_all(&dir)?;
    let req = SyncRequest {
        dir_name: dir_name.to_string(),
        include: vec![name.to_string()],
        exclude: vec![],
    };
    filesync::fetch(session, &req, &dir).await?;
    match std::fs::read(dir.join(name)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";

/// Registry credentials for the images `refs` from the client's auth provider (what `docker
/// login` stored, which buildx serves on the session), keyed by registry as the builder looks
/// them up. Docker Hub is asked for as `registry-1.docker.io`, as BuildKit does; an empty
/// user name means the secret is an identity token. Registries the client has nothing for are
/// left out (their pulls go anonymous).
async fn fetch_credentials(
    session: &SessionClient,
    refs: &[String],
) -> BTreeMap<String, AuthConfig> {
    use bollard_buildkit_proto::moby::filesync::v1 as auth;
    let mut out = BTreeMap::new();
    if refs.is_empty() || !session.supports(CREDENTIALS) {
        return out;
    }
    let domains: BTreeSet<String> = refs
        .iter()
        .filter_map(|r| Reference::parse(r).ok())
        .map(|r| r.domain)
        .collect();
    let mut client = auth::auth_client::AuthClient::with_origin(session.channel.clone(), origin());
    for domain in domains {
        let host = if domain == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            domain.clone()
        };
        let res = match client.credentials(auth::CredentialsRequest { host }).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                tracing::debug!(registry = %domain, error = %s, "no credentials from the session");
                continue;
            }
        };
        if res.secret.is_empty() {
            continue;
        }
        let mut a = AuthConfig {
            serveraddress: domain.clone(),
            ..AuthConfig::default()
        };
        if res.username.is_empty() {
            a.identitytoken = res.secret;
        } else {
            a.username = res.username;
            a.password = res.secret;
        }
        out.insert(domain, a);
    }
    out
}

const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";

/// The values of the secrets `ids` from the client's session (`--secret id=…`); ids the
/// client does not have are left out (a `required` mount fails the build on them).
async fn fetch_secrets(
    session: &SessionClient,
    ids: Vec<String>,
) -> Result<BTreeMap<String, Vec<u8>>, FrontendError> {
    use bollard_buildkit_proto::moby::buildkit::secrets::v1 as secrets;
    let mut out = BTreeMap::new();
    if ids.is_empty() || !session.supports(GET_SECRET) {
        return Ok(out);
    }
    let mut client =
        secrets::secrets_client::SecretsClient::with_origin(session.channel.clone(), origin());
    for id in ids {
        let req = secrets::GetSecretRequest {
            id: id.clone(),
            ..Default::default()
        };
        match client.get_secret(req).await {
            Ok(r) => {
                out.insert(id, r.into_inner().data);
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => {
                return Err(FrontendError::Failed(format!(
                    "secret {id}: {}",
                    s.message()
                )))
            }
        }
    }
    Ok(out)
}

/// Packs `dir` into a tar file for the classic builder.
fn pack(dir: &Path, tar_path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::create(tar_path)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(false);
    b.append_dir_all(".", dir)?;
    b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// Runs the Dockerfile frontend for `entry`; returns the built image id.
pub(crate) async fn dockerfile(
    engine: Arc<Engine>,
    session: SessionClient,
    entry: Arc<BuildEntry>,
    build_ref: &str,
    attrs: &HashMap<String, String>,
) -> Result<String, FrontendError> {
    let scratch = TempDir(
        engine
            .config
            .data_root
            .join("build")
            .join(format!("ctx-bk-{}", &berth_engine::id::new_id()[..16])),
    );
    std::fs::create_dir_all(&scratch.0)?;
    let mut vx = Vertexes::new(build_ref);
    let filename = attrs
        .get("filename")
        .filter(|f| !f.is_empty())
        .cloned()
        .unwrap_or_else(|| "Dockerfile".into());

    entry
        .status
        .publish(vx.start("[internal] load build definition from Dockerfile"));
    let df = fetch_file(&session, "dockerfile", &filename, &scratch.0)
        .await?
        .ok_or_else(|| {
            FrontendError::Failed(format!(
                "failed to read dockerfile: open {filename}: no such file or directory"
            ))
        })?;
    entry
        .status
        .publish(vx.log(&format!("transferring dockerfile: {}B\n", df.len())));

    entry
        .status
        .publish(vx.start("[internal] load .dockerignore"));
    let ignore = match fetch_file(
        &session,
        "context",
        &format!("{filename}.dockerignore"),
        &scratch.0,
    )
    .await?
    {
        Some(b) => Some(b),
        None => fetch_file(&session, "context", ".dockerignore", &scratch.0).await?,
    };
    let exclude = ignore
        .map(|b| ignore_patterns(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();

    entry
        .status
        .publish(vx.start("[internal] load build context"));
    let ctx = scratch.0.join("context");
    std::fs::create_dir_all(&ctx)?;
    let req = SyncRequest {
        dir_name: "context".into(),
        include: vec![],
        exclude,
    };
    filesync::fetch(&session, &req, &ctx).await?;
    // The Dockerfile goes into the context under its name unless the context has it as is.
    let in_context = ctx.join(&filename);
    let mut opts = build_options(attrs);
    opts.dockerfile = filename.clone();
    // Unparsable Dockerfiles are reported by the build itself.
    let text = String::from_utf8_lossy(&df);
    let ids = berth_engine::build::secret_ids(&text).unwrap_or_default();
    opts.secrets = Secrets(fetch_secrets(&session, ids).await?);
    let bases = berth_engine::build::base_image_refs(&text, &opts.build_args).unwrap_or_default();
    opts.auths = fetch_credentials(&session, &bases).await;
    if std::fs::read(&in_context).ok().as_deref() != Some(df.as_slice()) {
        let name = format!(".berth-dockerfile-{}", &berth_engine::id::new_id()[..12]);
        std::fs::write(ctx.join(&name), &df)?;
        opts.dockerfile = name;
    }
    let tar_path = scratch.0.join("context.tar");
    let (c, t) = (ctx.clone(), tar_path.clone());
    tokio::task::spawn_blocking(move || pack(&c, &t))
        .await
        .map_err(|e| FrontendError::Failed(format!("packing the context: {e}")))??;
    entry.status.publish(vx.complete(""));

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let file = std::fs::File::open(&tar_path)?;
    let eng = engine.clone();
    let task = tokio::spawn(async move { eng.build(opts, file, Progress::new(tx)).await });
    let mut last_error = None;
    while let Some(m) = rx.recv().await {
        if let Some(e) = &m.error {
            last_error = Some(e.clone());
        }
        if let Some(u) = vx.on_message(&m) {
            entry.status.publish(u);
        }
    }
    let outcome = task
        .await
        .map_err(|e| FrontendError::Failed(format!("build task failed: {e}")))?;
    match outcome {
        Ok(Outcome::Built(id)) => {
            entry.status.publish(vx.complete(""));
            Ok(id)
        }
        Ok(Outcome::Failed) => Err(FrontendError::Failed(
            last_error.unwrap_or_else(|| "build failed".into()),
        )),
        Err(e) => {
            entry.status.publish(vx.complete(e.message()));
            Err(e.into())
        }
    }
}

/// Sends the filesystem of image `id` to the client: `kind` is `local` (the files) or
/// `tar` (one tar stream), as [`filesend`] does them.
pub(crate) async fn export_files(
    engine: &Arc<Engine>,
    session: &SessionClient,
    id: &str,
    kind: &str,
) -> Result<(), FrontendError> {
    let layers = engine.images.resolve(id).await?.layer_dirs;
    let build_dir = engine.config.data_root.join("build");
    let suffix = &berth_engine::id::new_id()[..16];
    let mnt = build_dir.join(format!("mnt-export-{suffix}"));
    let view = tokio::task::spawn_blocking(move || ImageView::open(&layers, mnt))
        .await
        .map_err(|e| FrontendError::Failed(format!("opening the image: {e}")))??;
    if kind == "local" {
        return Ok(filesend::send_dir(session, view.root()).await?);
    }
    let scratch = TempDir(build_dir.join(format!("ctx-export-{suffix}")));
    std::fs::create_dir_all(&scratch.0)?;
    let tar_path = scratch.0.join("out.tar");
    let (root, t) = (view.root().to_path_buf(), tar_path.clone());
    tokio::task::spawn_blocking(move || filesend::write_tar(&root, &t))
        .await
        .map_err(|e| FrontendError::Failed(format!("writing the tar: {e}")))??;
    drop(view);
    Ok(filesend::send_tar(session, &tar_path).await?)
}

/// The exporter names of an `image`/`moby` export: `name` is comma separated.
pub(crate) fn export_names(attrs: &HashMap<String, String>) -> Vec<String> {
    attrs
        .get("name")
        .map(|n| {
            n.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_attrs_map_to_build_options() {
        let attrs: HashMap<String, String> = [
            ("build-arg:A", "1"),
            ("label:l", "v"),
            ("target", "t"),
            ("no-cache", ""),
            ("image-resolve-mode", "pull"),
            ("platform", "linux/amd64"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = build_options(&attrs);
        assert_eq!(o.build_args.get("A"), Some(&Some("1".to_string())));
        assert_eq!(o.labels.get("l").map(String::as_str), Some("v"));
        assert_eq!(o.target, "t");
        assert!(o.no_cache && o.pull && o.remove && o.force_remove);
        assert_eq!(o.platform, "linux/amd64");
        assert!(!build_options(&HashMap::new()).no_cache);
    }

    #[test]
    fn registry_cache_imports_name_their_images() {
        let attrs: HashMap<String, String> = [
            (
                "cache-imports",
                r#"[{"Type":"registry","Attrs":{"ref":"reg/app:cache"}},{"Type":"local","Attrs":{"src":"/d"}}]"#,
            ),
            ("cache-from", "reg/app:cache, other"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            build_options(&attrs).cache_images,
            ["reg/app:cache", "other"]
        );
        assert!(cache_import_refs(&HashMap::new()).is_empty());
    }

    #[test]
    fn dockerignore_lines_become_excludes_and_names_split() {
        assert_eq!(
            ignore_patterns("# c\n\n node_modules \n*.log\n"),
            vec!["node_modules", "*.log"]
        );
        let a: HashMap<String, String> = [("name".to_string(), "a:1, b".to_string())].into();
        assert_eq!(export_names(&a), vec!["a:1", "b"]);
    }
}
