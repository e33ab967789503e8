//! `RUN`: a real container from the stage's image through the engine (create, attach,
//! start, wait), its output streamed into the build, then its upper directory committed as
//! the step's layer (the same path as `docker commit`). The container is removed after.

use berth_docker_api::container::{ContainerConfig, ContainerCreateRequest, HostConfig};
use tokio::io::AsyncReadExt;

use super::cache::step_key;
use super::dockerfile::Instruction;
use super::{Build, Fail, StageState, StepResult};
use crate::container::io::{AttachOptions, SessionFuture};
use crate::container::WaitCondition;
use crate::id::short;
use crate::image::create::ImageSpec;
use crate::EngineError;

/// A failed `RUN`'s error, in the classic builder's or BuildKit's words.
fn run_failed(argv: &[String], code: i64, buildkit: bool) -> String {
    let command = argv.join(" ");
    if buildkit {
        format!("process \"{command}\" did not complete successfully: exit code: {code}")
    } else {
        format!("The command '{command}' returned a non-zero code: {code}")
    }
}

impl Build {
    pub(crate) async fn run_step(&mut self, st: &mut StageState, i: &Instruction) -> StepResult {
        let argv = super::steps::command(st, i);
        if argv.is_empty() {
            return Err(EngineError::invalid("RUN requires at least one argument").into());
        }
        // Build args reach the command's environment (not the image), unless ENV set them.
        let env = st.env();
        let arg_env: Vec<String> = st
            .args
            .iter()
            .filter(|(k, _)| !env.iter().any(|e| e.split('=').next() == Some(k.as_str())))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let created_by = if arg_env.is_empty() {
            argv.join(" ")
        } else {
            format!(
                "|{} {} {}",
                arg_env.len(),
                arg_env.join(" "),
                argv.join(" ")
            )
        };
        let mounts = self.run_mounts(&i.flags, &st.vars())?;
        let mounts_key = self.mounts_key(&mounts).await?;
        let key = step_key(
            st.cache_parent.as_deref(),
            &created_by,
            &st.config,
            &mounts_key,
        );
        if self.cached(st, &key) {
            return Ok(());
        }
        let Some(image) = st.image.clone() else {
            return Err(EngineError::invalid(
                "RUN needs a base image: the stage has no layers to run in",
            )
            .into());
        };
        let mut config = ContainerConfig {
            image: image.clone(),
            cmd: Some(argv.clone()),
            entrypoint: Some(vec![]),
            env: Some(env.into_iter().chain(arg_env).collect()),
            working_dir: st.config["WorkingDir"].as_str().unwrap_or("").to_string(),
            user: st.config["User"].as_str().unwrap_or("").to_string(),
            attach_stdout: true,
            attach_stderr: true,
            ..ContainerConfig::default()
        };
        if config.working_dir.is_empty() {
            config.working_dir = "/".into();
        }
        // Held until the container is removed: locks, views and files its mounts use.
        let prepared = self.prepare_mounts(&mounts).await?;
        let req = ContainerCreateRequest {
            config,
            host_config: HostConfig {
                mounts: (!prepared.mounts.is_empty()).then(|| prepared.mounts.clone()),
                network_mode: self.opts.network_mode.clone(),
                extra_hosts: (!self.opts.extra_hosts.is_empty())
                    .then(|| self.opts.extra_hosts.clone()),
                ..HostConfig::default()
            },
            ..ContainerCreateRequest::default()
        };
        let containers = self.engine.containers.clone();
        let cid = containers.create(None, None, req).await?;
        self.out.line(format!(" ---> Running in {}\n", short(&cid)));
        let res = self.run_container(&cid).await;
        let res = match res {
            Ok(0) => {
                let spec = ImageSpec {
                    parent: Some(image),
                    config: Some(st.config.clone()),
                    created_by,
                    author: st.author.clone(),
                    ..ImageSpec::default()
                };
                containers
                    .commit_upper(&cid, spec)
                    .await
                    .map_err(Fail::from)
            }
            Ok(code) => Err(Fail::Run {
                message: run_failed(&argv, code, self.opts.buildkit),
                code,
            }),
            Err(e) => Err(Fail::Engine(e)),
        };
        // A failed step's container goes too unless all are kept (`--rm=false`), so a
        // failed build leaves nothing behind.
        if self.opts.remove || self.opts.force_remove || self.opts.cancel.is_cancelled() {
            match containers.remove(&cid, true, true).await {
                Ok(()) if res.is_ok() => self
                    .out
                    .line(format!("Removing intermediate container {}\n", short(&cid))),
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(container = %cid, error = %e, "build container not removed")
                }
            }
        }
        drop(prepared);
        let id = res?;
        self.finish_step(st, &key, id)?;
        Ok(())
    }

    /// Starts the container and runs it to its exit (see [`Self::output_until_exit`]); a
    /// cancelled build kills it instead and fails.
    ///
    /// The start itself is never cut short by a cancel: dropped half-way, it left the step's
    /// process running with the container not yet marked running, so neither the kill here
    /// nor the forced remove after it stopped that process.
    async fn run_container(&self, cid: &str) -> crate::Result<i64> {
        let containers = &self.engine.containers;
        let (_, session) = containers
            .attach(
                cid,
                AttachOptions {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                },
            )
            .await?;
        let exited = containers.wait(cid, WaitCondition::NextExit)?;
        containers.start(cid).await?;
        tokio::select! {
            code = self.output_until_exit(session, exited) => Ok(code),
            () = self.opts.cancel.cancelled() => {
                tracing::info!(container = %cid, "build cancelled: killing its RUN container");
                if let Err(e) = containers.kill(cid, Some("KILL")).await {
                    tracing::warn!(container = %cid, error = %e, "build container not killed");
                }
                Err(super::cancelled())
            }
        }
    }

    /// Streams the started container's output into the build and returns its exit code.
    async fn output_until_exit(
        &self,
        session: SessionFuture,
        exited: impl std::future::Future<Output = i64>,
    ) -> i64 {
        if let Some(mut s) = session.await {
            // Docker's multiplexed frames: 8-byte header, then the payload.
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 32 * 1024];
            loop {
                let n = match s.output.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while buf.len() >= 8 {
                    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
                    if buf.len() < 8 + len {
                        break;
                    }
                    let stream = buf[0];
                    let payload: Vec<u8> = buf.drain(..8 + len).skip(8).collect();
                    let text = String::from_utf8_lossy(&payload);
                    // dockerd shows a step's stderr in red.
                    self.out.line(if stream == 2 {
                        format!("\x1b[91m{text}\x1b[0m")
                    } else {
                        text.into_owned()
                    });
                }
            }
        }
        exited.await
    }
}
