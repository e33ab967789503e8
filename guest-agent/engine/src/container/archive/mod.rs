//! `docker cp` (`HEAD`/`GET`/`PUT /containers/{id}/archive`) and `docker export`, for running
//! and stopped containers alike.
//!
//! The file work happens in a short-lived helper process ([`helper`]) that builds a private
//! view of the container's root (overlay, volumes, binds) in its own mount namespace and
//! `chroot`s into it, so paths and symlinks resolve inside the container and nothing stays
//! mounted after it exits. While a helper works on a stopped container, the container's
//! operation lock is held, so it cannot start (and mount its rootfs) underneath.

pub mod helper;
pub mod tarball;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use berth_docker_api::files::PathStat;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::{Container, Svc};
use crate::mount::RootfsMount;
use crate::{EngineError, ErrorKind, Result};
use helper::{Bind, Op, Reply, Request};

/// A stream of tar bytes; an `Err` item means the archive was cut short.
pub type TarStream = tokio_stream::wrappers::ReceiverStream<std::io::Result<Bytes>>;

/// Options of `PUT …/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

const CHUNK: usize = 128 * 1024;

impl Svc {
    /// `HEAD …/archive?path=`: the stat of a path in the container.
    pub async fn archive_stat(self: &Arc<Self>, key: &str, path: &str) -> Result<PathStat> {
        let c = self.get(key)?;
        let (stat, _) = self
            .run_view(&c, key, Op::Stat { path: path.into() }, None)
            .await?;
        stat.ok_or_else(|| EngineError::internal("archive helper sent no stat"))
    }

    /// `GET …/archive?path=`: the stat of a path and a tar of it (its base name on top).
    pub async fn archive_get(
        self: &Arc<Self>,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, TarStream)> {
        let c = self.get(key)?;
        let (stat, tar) = self
            .run_view(&c, key, Op::Get { path: path.into() }, None)
            .await?;
        let stat = stat.ok_or_else(|| EngineError::internal("archive helper sent no stat"))?;
        self.publish(&c, "archive-path", &[]);
        Ok((stat, tar))
    }

    /// `PUT …/archive?path=`: extracts a tar into the existing directory `path`.
    pub async fn archive_put<S, E>(
        self: &Arc<Self>,
        key: &str,
        path: &str,
        opts: PutOptions,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let c = self.get(key)?;
        self.check_writable(&c, path)?;
        let op = Op::Put {
            path: path.into(),
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            copy_uid_gid: opts.copy_uid_gid,
        };
        let input = body.map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
        self.run_view(&c, key, op, Some(Box::pin(input))).await?;
        self.publish(&c, "extract-to-dir", &[]);
        Ok(())
    }

    /// `GET …/export`: a tar of the container's root filesystem (without its volumes).
    pub async fn export(self: &Arc<Self>, key: &str) -> Result<TarStream> {
        let c = self.get(key)?;
        let (_, tar) = self.run_view(&c, key, Op::Export, None).await?;
        self.publish(&c, "export", &[]);
        Ok(tar)
    }

    /// dockerd refuses writes to a read-only root or volume before extracting anything.
    fn check_writable(&self, c: &Container, path: &str) -> Result<()> {
        let s = c.snapshot();
        let clean = helper::clean_request_path(path);
        let mount = s
            .record
            .mounts
            .iter()
            .filter(|m| Path::new(&clean).starts_with(&m.destination))
            .max_by_key(|m| m.destination.len());
        match mount {
            Some(m) if !m.rw => Err(EngineError::new(
                ErrorKind::Forbidden,
                "mounted volume is marked read-only",
            )),
            None if s.host.readonly_rootfs => Err(EngineError::new(
                ErrorKind::Forbidden,
                "container rootfs is marked read-only",
            )),
            _ => Ok(()),
        }
    }

    /// The helper's request: the container's overlay and the mounts laid over it.
    async fn view_request(&self, c: &Container, op: Op) -> Result<Request> {
        let s = c.snapshot();
        let image = self.images.resolve(&s.record.image_id).await?;
        let paths = self.paths(&c.id);
        let mut binds = Vec::new();
        if op != Op::Export {
            for m in &s.record.mounts {
                if matches!(m.typ.as_str(), "volume" | "bind") && !m.source.is_empty() {
                    binds.push(Bind {
                        source: m.source.clone().into(),
                        destination: m.destination.clone(),
                        readonly: !m.rw,
                    });
                }
            }
            for (file, dest) in [
                (paths.hosts(), "/etc/hosts"),
                (paths.hostname(), "/etc/hostname"),
                (paths.resolv_conf(), "/etc/resolv.conf"),
            ] {
                if file.is_file() && !binds.iter().any(|b| b.destination == dest) {
                    binds.push(Bind {
                        source: file,
                        destination: dest.into(),
                        readonly: false,
                    });
                }
            }
            // Parents before the mounts nested in them.
            binds.sort_by_key(|b| Path::new(&b.destination).components().count());
        }
        Ok(Request {
            op,
            rootfs: RootfsMount {
                lower: image.layer_dirs.clone(),
                upper: paths.upper(),
                work: paths.work(),
                target: paths.rootfs(),
            },
            readonly_rootfs: s.host.readonly_rootfs,
            binds,
        })
    }

    /// Runs the helper for `op`; returns its stat and its output stream (empty for `put`).
    /// With `input`, that stream is the helper's stdin and the reply comes after it.
    async fn run_view(
        self: &Arc<Self>,
        c: &Arc<Container>,
        key: &str,
        op: Op,
        input: Option<BoxedInput>,
    ) -> Result<(Option<PathStat>, TarStream)> {
        let req = self.view_request(c, op).await?;
        let arg = serde_json::to_string(&req)?;
        let exe = self.config.self_exe.clone();
        let (first_tx, first_rx) = oneshot::channel::<Result<Option<PathStat>>>();
        let (data_tx, data_rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
        let c = c.clone();
        tokio::spawn(async move {
            // A stopped container must not start while its overlay is mounted here.
            let guard = c.op.lock().await;
            let _guard = (!c.snapshot().state.state.running).then_some(guard);
            let spawned = tokio::process::Command::new(&exe)
                .arg("archive")
                .arg(&arg)
                .stdin(if input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            let mut child = match spawned {
                Ok(ch) => ch,
                Err(e) => {
                    let _ = first_tx.send(Err(EngineError::internal(format!(
                        "failed to spawn the archive helper: {e}"
                    ))));
                    return;
                }
            };
            if let (Some(mut input), Some(mut stdin)) = (input, child.stdin.take()) {
                while let Some(chunk) = input.next().await {
                    let Ok(chunk) = chunk else { break };
                    // The helper stops reading when it fails; its reply says why.
                    if stdin.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                drop(stdin);
            }
            let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
            else {
                return;
            };
            let mut stdout = BufReader::with_capacity(CHUNK, stdout);
            let mut line = String::new();
            let _ = stdout.read_line(&mut line).await;
            let reply = serde_json::from_str::<Reply>(line.trim())
                .map_err(|_| EngineError::internal("archive helper exited without a reply"))
                .and_then(Reply::into_result);
            let ok = reply.is_ok();
            if first_tx.send(reply).is_err() || !ok {
                let _ = child.kill().await;
                return;
            }
            let mut buf = vec![0u8; CHUNK];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        if data_tx
                            .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            // The client went away: stop the helper.
                            let _ = child.kill().await;
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = data_tx.send(Err(e)).await;
                        break;
                    }
                }
            }
            let status = child.wait().await;
            if !status.map(|s| s.success()).unwrap_or(false) {
                let mut msg = String::new();
                let _ = stderr.read_to_string(&mut msg).await;
                tracing::warn!(error = %msg.trim(), "archive helper failed while streaming");
                let _ = data_tx
                    .send(Err(std::io::Error::other(msg.trim().to_string())))
                    .await;
            }
        });
        let stat = first_rx
            .await
            .map_err(|_| EngineError::internal("archive helper task ended"))?
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => EngineError::not_found(format!(
                    "Could not find the file {} in container {key}",
                    e.message()
                )),
                _ => e,
            })?;
        Ok((stat, tokio_stream::wrappers::ReceiverStream::new(data_rx)))
    }
}

type BoxedInput = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;
