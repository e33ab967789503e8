//! `docker exec`: processes started in a running container with the runtime's `exec`,
//! as children of the engine (they do not outlive it).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use berth_docker_api::container::ExecConfig;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::io::Session;
use super::{user, Svc};
use crate::runtime::spec::{self, ProcessInput};
use crate::runtime::ExecOptions;
use crate::stream::framed;
use crate::{EngineError, Result};

#[derive(Debug, Default)]
struct ExecState {
    running: bool,
    started: bool,
    exit_code: Option<i64>,
    pid: i64,
    master: Option<Arc<std::fs::File>>,
    /// The last size a client asked for (`rows`, `cols`). Clients resize right after the
    /// start request, while the process may not have a terminal yet: the size is kept and
    /// applied once it has one.
    size: Option<(u16, u16)>,
}

/// One exec instance.
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

#[derive(Default)]
pub struct ExecTable {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl ExecTable {
    fn get(&self, id: &str) -> Result<Arc<Exec>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::not_found(format!("No such exec instance: {id}")))
    }

    pub(crate) fn forget_container(&self, cid: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, e| e.container_id != cid);
    }

    pub(crate) fn ids_of(&self, cid: &str) -> Vec<String> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.container_id == cid)
            .map(|e| e.id.clone())
            .collect()
    }
}

impl Svc {
    /// `POST /containers/{id}/exec`.
    pub async fn exec_create(&self, key: &str, cfg: ExecConfig) -> Result<String> {
        let c = self.get(key)?;
        // `runc exec` joins the container's cgroup: let the start that follows find the
        // cgroup attach lock warm (see runtime::cgroup).
        crate::runtime::cgroup::warm_attach_lock();
        let s = c.snapshot();
        if !s.state.state.running {
            return Err(super::not_running(&c.id));
        }
        if s.state.state.paused {
            return Err(EngineError::conflict(format!(
                "container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::invalid("No exec command specified"));
        }
        let id = crate::id::new_id();
        let cmdline = cfg.cmd.clone().unwrap_or_default().join(" ");
        self.execs
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.clone(),
                Arc::new(Exec {
                    id: id.clone(),
                    container_id: c.id.clone(),
                    config: cfg,
                    state: Mutex::new(ExecState::default()),
                }),
            );
        self.publish(
            &c,
            &format!("exec_create: {cmdline}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<serde_json::Value> {
        let e = self.execs.get(id)?;
        let st = e.state.lock().unwrap_or_else(|p| p.into_inner());
        let cmd = e.config.cmd.clone().unwrap_or_default();
        Ok(serde_json::json!({
            "ID": e.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "tty": e.config.tty,
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.get(1..).unwrap_or_default(),
                "privileged": e.config.privileged,
                "user": e.config.user,
            },
            "OpenStdin": e.config.attach_stdin,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdout": e.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": e.config.detach_keys,
            "Pid": st.pid,
        }))
    }

    /// `POST /exec/{id}/resize`.
    pub fn exec_resize(&self, id: &str, h: u16, w: u16) -> Result<()> {
        let e = self.execs.get(id)?;
        let mut st = e.state.lock().unwrap_or_else(|p| p.into_inner());
        st.size = Some((h, w));
        if let Some(m) = &st.master {
            // Our pty is the runtime's controlling terminal: the kernel sends it SIGWINCH, and
            // it relays the new size to the container's terminal.
            crate::shim::console::resize(m, h, w);
        }
        Ok(())
    }

    /// The exec's TTY flag and detach keys, for the server's framing.
    pub fn exec_info(&self, id: &str) -> Result<(bool, String)> {
        let e = self.execs.get(id)?;
        Ok((e.config.tty, e.config.detach_keys.clone()))
    }

    /// `POST /exec/{id}/start`: starts the process; the session carries its stdio, in
    /// Docker's frames when `mux` (the start request's `Tty` is false, whatever the exec's
    /// own `Tty`: dockerd frames by the start request) and raw otherwise.
    pub async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        console: Option<[u32; 2]>,
        mux: bool,
    ) -> Result<Session> {
        let e = self.execs.get(id)?;
        {
            let mut st = e.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.started {
                return Err(EngineError::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
            st.running = true;
        }
        match self.exec_spawn(&e, console, mux).await {
            Ok(s) => Ok(s),
            Err(err) => {
                let mut st = e.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                st.exit_code = Some(126);
                Err(err)
            }
        }
    }

    async fn exec_spawn(
        self: &Arc<Self>,
        e: &Arc<Exec>,
        console: Option<[u32; 2]>,
        mux: bool,
    ) -> Result<Session> {
        let c = self.get(&e.container_id)?;
        let s = c.snapshot();
        if !s.state.state.running {
            return Err(super::not_running(&c.id));
        }
        let paths = self.paths(&c.id);
        // A resize that came before the start wins over the start's own size.
        let asked = e.state.lock().unwrap_or_else(|p| p.into_inner()).size;
        let console = asked
            .filter(|&(h, w)| h > 0 && w > 0)
            .map(|(h, w)| [u32::from(h), u32::from(w)])
            .or(console);
        let process = self.exec_process(&s, &e.config, console)?;
        let process_file = paths.bundle().join(format!("exec-{}.json", &e.id[..12]));
        // Read once by the runtime right away: no fsync needed.
        std::fs::write(&process_file, serde_json::to_vec(&process)?)?;
        let rt = self.runtime(&self.runtime_spec(&s.host.runtime)?);
        let opts = ExecOptions {
            process_file: process_file.clone(),
            tty: e.config.tty,
            log_file: Some(paths.bundle().join(format!("exec-{}.log", &e.id[..12]))),
        };
        let mut cmd = tokio::process::Command::from(rt.exec_command(&c.id, &opts));
        let (tx_out, rx_out) = tokio::io::duplex(64 * 1024);
        let attach_stdin = e.config.attach_stdin;
        let svc = self.clone();
        let exec = e.clone();
        let cid = c.clone();
        let input: Option<std::pin::Pin<Box<dyn AsyncWrite + Send>>>;
        if e.config.tty {
            // A pty of ours is the runtime's stdio and controlling terminal; it relays to the
            // container's pty, and resizes that one from ours on SIGWINCH (see `exec_resize`).
            let master = runtime_terminal(&mut cmd, console.unwrap_or([24, 80]))?;
            let mut child = cmd
                .spawn()
                .map_err(|err| EngineError::internal(format!("exec: {err}")))?;
            // Our copies of the slave must go, or the master never sees the end.
            drop(cmd);
            let master = Arc::new(master);
            {
                let mut st = e.state.lock().unwrap_or_else(|p| p.into_inner());
                // One that came while the runtime was being spawned reaches it by SIGWINCH.
                if let Some((h, w)) = st.size.filter(|&size| Some(size) != asked) {
                    crate::shim::console::resize(&master, h, w);
                }
                st.master = Some(master.clone());
                st.pid = child.id().map(i64::from).unwrap_or(0);
            }
            let log_file = opts.log_file.clone();
            let reader = super::pty::AsyncPty::new(master.try_clone()?)?;
            let writer = super::pty::AsyncPty::new(master.try_clone()?)?;
            input =
                attach_stdin.then(|| Box::pin(writer) as std::pin::Pin<Box<dyn AsyncWrite + Send>>);
            tokio::spawn(async move {
                let mut reader = reader;
                let mut out = tx_out;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out.write_all(&framed(mux, 1, &buf[..n])).await.is_err() {
                                // Client gone: keep draining so the process is not blocked.
                            }
                        }
                    }
                }
                let code = exit_code(&mut child, log_file.as_deref()).await;
                svc.exec_finished(&exec, &cid, code);
                drop(out);
            });
        } else {
            cmd.stdin(if attach_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd
                .spawn()
                .map_err(|err| EngineError::internal(format!("exec: {err}")))?;
            e.state.lock().unwrap_or_else(|p| p.into_inner()).pid =
                child.id().map(i64::from).unwrap_or(0);
            input = child
                .stdin
                .take()
                .map(|s| Box::pin(s) as std::pin::Pin<Box<dyn AsyncWrite + Send>>);
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let (want_out, want_err) = (e.config.attach_stdout, e.config.attach_stderr);
            tokio::spawn(async move {
                let out = Arc::new(tokio::sync::Mutex::new(tx_out));
                let pump = |src: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
                            stream: u8,
                            want: bool| {
                    let out = out.clone();
                    async move {
                        let Some(mut src) = src else { return };
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match src.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) if want => {
                                    let chunk = framed(mux, stream, &buf[..n]);
                                    let _ = out.lock().await.write_all(&chunk).await;
                                }
                                Ok(_) => {}
                            }
                        }
                    }
                };
                tokio::join!(
                    pump(stdout.map(|s| Box::new(s) as _), 1, want_out),
                    pump(stderr.map(|s| Box::new(s) as _), 2, want_err)
                );
                let code = exit_code(&mut child, opts.log_file.as_deref()).await;
                svc.exec_finished(&exec, &cid, code);
            });
        }
        self.publish(
            &c,
            &format!(
                "exec_start: {}",
                e.config.cmd.clone().unwrap_or_default().join(" ")
            ),
            &[("execID", e.id.clone())],
        );
        Ok(Session {
            output: Box::pin(rx_out),
            input,
        })
    }

    /// The process spec of an exec in the container `s`.
    pub(crate) fn exec_process(
        &self,
        s: &super::record::Stored,
        cfg: &ExecConfig,
        console: Option<[u32; 2]>,
    ) -> Result<oci_spec::runtime::Process> {
        let usr_spec = if cfg.user.is_empty() {
            s.record.config.user.clone()
        } else {
            cfg.user.clone()
        };
        let usr = user::resolve(
            &self.paths(&s.record.id).rootfs(),
            &usr_spec,
            s.host.group_add.as_deref().unwrap_or_default(),
        )?;
        // The container's environment (as its init gets it), the exec's own over it.
        let mut env = super::env::container_env(
            (s.host.network_mode != "host").then_some(s.record.config.hostname.as_str()),
            self.link_settings(&s.record.name, &s.host)?.env,
            s.record.config.env.as_deref().unwrap_or_default(),
        );
        env = super::env::merge_env(&env, cfg.env.as_deref().unwrap_or_default());
        super::env::add_process_defaults(&mut env, cfg.tty, &usr.home);
        let size = console.or(cfg.console_size).filter(|s| s[0] > 0);
        spec::build_process(&ProcessInput {
            args: cfg.cmd.clone().unwrap_or_default(),
            env,
            cwd: if cfg.working_dir.is_empty() {
                s.record.config.working_dir.clone()
            } else {
                cfg.working_dir.clone()
            },
            uid: usr.uid,
            gid: usr.gid,
            additional_gids: usr.additional_gids,
            rlimits: super::spec_opts::rlimits(&s.host)?,
            tty: cfg.tty,
            console_size: size.map(|s| {
                (
                    u16::try_from(s[0]).unwrap_or(24),
                    u16::try_from(s[1]).unwrap_or(80),
                )
            }),
            caps: spec::capabilities(
                s.host.privileged || cfg.privileged,
                s.host.cap_add.as_deref().unwrap_or_default(),
                s.host.cap_drop.as_deref().unwrap_or_default(),
            )?,
            no_new_privileges: false,
        })
    }

    fn exec_finished(&self, e: &Exec, c: &super::Container, code: i64) {
        let bundle = self.paths(&c.id).bundle();
        let _ = std::fs::remove_file(bundle.join(format!("exec-{}.json", &e.id[..12])));
        let _ = std::fs::remove_file(bundle.join(format!("exec-{}.log", &e.id[..12])));
        {
            let mut st = e.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = false;
            st.exit_code = Some(code);
            st.master = None;
        }
        self.publish(
            c,
            "exec_die",
            &[("execID", e.id.clone()), ("exitCode", code.to_string())],
        );
    }
}

/// Makes a pty whose slave becomes `cmd`'s stdio and controlling terminal (the runtime
/// relays it to the container's pty, and resizes that one on SIGWINCH); returns the master.
fn runtime_terminal(cmd: &mut tokio::process::Command, [h, w]: [u32; 2]) -> Result<std::fs::File> {
    let err = |e: nix::Error| EngineError::internal(format!("exec: cannot open a terminal: {e}"));
    let size = nix::pty::Winsize {
        ws_row: u16::try_from(h).unwrap_or(24),
        ws_col: u16::try_from(w).unwrap_or(80),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).map_err(err)?;
    let master = std::fs::File::from(pty.master);
    // openpty's descriptors are inheritable: the master must not leak into other children.
    nix::fcntl::fcntl(
        &master,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(err)?;
    let slave = std::fs::File::from(pty.slave);
    // Raw from the start: the runtime makes it raw only once it runs, and anything typed
    // before would be echoed back by this outer terminal.
    let mut mode = nix::sys::termios::tcgetattr(&slave).map_err(err)?;
    nix::sys::termios::cfmakeraw(&mut mode);
    nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &mode).map_err(err)?;
    cmd.stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave);
    // SAFETY: between fork and exec only async-signal-safe calls: setsid and an ioctl on fd 0.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(master)
}

/// The exec's exit code: its process's, or 126 (as dockerd) when the runtime could not start
/// it (not found, not executable), which the runtime's log tells.
async fn exit_code(child: &mut tokio::process::Child, log_file: Option<&std::path::Path>) -> i64 {
    let status = child.wait().await.ok();
    let code = status.and_then(|s| s.code()).unwrap_or(255);
    if code != 0 && log_error(log_file).is_some() {
        126
    } else {
        i64::from(code)
    }
}

/// The error a failed runtime exec logged (e.g. executable not found).
fn error_line(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next()
        .map(|m| format!("OCI runtime exec failed: {m}\n"))
}

fn log_error(path: Option<&std::path::Path>) -> Option<String> {
    std::fs::read_to_string(path?)
        .ok()
        .and_then(|t| error_line(&t))
}
