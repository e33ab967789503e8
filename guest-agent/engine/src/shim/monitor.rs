//! The shim process itself (synchronous: std threads, nix, libc): sets up the rootfs, the
//! control socket ([`control`]) and the stdio, waits for the engine's `start`, runs the
//! runtime's `run --detach`, copies the output ([`output`]) until the init exits, records the
//! exit and cleans up.

mod control;
mod output;
mod stdio;

use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use self::output::{open_gate, tty_io, Client, Gate, Pumps};
use self::stdio::{console_path, Io};
use super::jsonlog;
use super::{ExitRecord, ShimConfig};
use crate::mount::{HostMounter, Mounter};
use crate::runtime::{self, CreateOptions, Runtime};

type ShimResult<T> = Result<T, String>;

/// How long the shim waits for the engine's `start` after `create`.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long output may keep flowing after the init process exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

type StartReply = mpsc::Sender<ShimResult<i32>>;

/// What the main thread, the output pumps and the control connections share.
struct Shared {
    cfg: ShimConfig,
    clients: Mutex<Vec<Client>>,
    stdin: Mutex<Option<File>>,
    /// The pty master of a TTY container, once the runtime has sent it.
    master: OnceLock<File>,
    log: Mutex<jsonlog::Writer>,
    exit: Mutex<Option<i32>>,
    exited: Condvar,
    /// Taken by the first `start` request: a second one (an engine that restarted while the
    /// first was under way) is told at once that the container was started.
    start_tx: Mutex<Option<mpsc::Sender<StartReply>>>,
    /// Whether output read so far is the container's (see [`Gate`]).
    gate: Mutex<Gate>,
}

/// Paths the runtime writes to.
struct Files {
    pid: PathBuf,
    log: PathBuf,
}

pub(super) fn run(path: &Path) -> ShimResult<()> {
    let text = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let cfg: ShimConfig = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let _ = nix::unistd::setsid();
    set_subreaper();
    // The real back-ends: the engine's seams end at this process (see `super::seam`).
    let rt = runtime::for_spec(&cfg.runtime);
    let mounter = HostMounter;
    let (mut io, listener, files) = match setup(&cfg, &mounter) {
        Ok(v) => v,
        Err(e) => {
            report(&format!("error {}", e.replace('\n', " ")));
            cleanup(&cfg, rt.as_ref(), &mounter);
            return Err(e);
        }
    };
    let log = jsonlog::Writer::open(&cfg.log_path, cfg.log_max_size, cfg.log_max_files)
        .map_err(|e| format!("open log {}: {e}", cfg.log_path.display()))?;
    let (start_tx, start_rx) = mpsc::channel::<StartReply>();
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        clients: Mutex::new(vec![]),
        stdin: Mutex::new(io.stdin.take()),
        master: OnceLock::new(),
        log: Mutex::new(log),
        exit: Mutex::new(None),
        exited: Condvar::new(),
        start_tx: Mutex::new(Some(start_tx)),
        gate: Mutex::new(Gate::Holding(vec![])),
    });
    let mut pumps = Pumps::new(shared.clone());
    {
        let s = shared.clone();
        std::thread::spawn(move || control::serve(&s, listener));
    }
    report("ok 0");
    let pid = start_on_go(&shared, &start_rx, rt.as_ref(), &mut io, &files, &mut pumps);
    // Our copies of the child's ends must not keep the pumps alive.
    drop(io);
    let code = pid.map(reap).unwrap_or(255);
    pumps.drain(Instant::now() + DRAIN_TIMEOUT);
    if let Ok(mut l) = shared.log.lock() {
        let _ = l.flush();
    }
    if pid.is_some() {
        write_exit_file(&cfg, code);
    }
    answer_waiters(&shared, code);
    let answered = Instant::now();
    cleanup(&cfg, rt.as_ref(), &mounter);
    let _ = std::fs::remove_file(&cfg.socket);
    // Give `wait` connections a moment to read their answer.
    std::thread::sleep(Duration::from_millis(100).saturating_sub(answered.elapsed()));
    Ok(())
}

/// Waits for the engine's go (attaches are connected by then, so no output is lost), then
/// creates and starts the container in one runtime call and answers the `start` request;
/// returns the init's pid, or `None` when there was no go or the launch failed.
fn start_on_go(
    shared: &Shared,
    start_rx: &mpsc::Receiver<StartReply>,
    rt: &dyn Runtime,
    io: &mut Io,
    files: &Files,
    pumps: &mut Pumps,
) -> Option<i32> {
    let reply = start_rx.recv_timeout(START_TIMEOUT).ok()?;
    pumps.spawn(std::mem::take(&mut io.outputs));
    let r = launch(&shared.cfg, rt, io, files);
    open_gate(shared, r.is_ok());
    let r = r.map(|(pid, master)| {
        if let Some(m) = master {
            pumps.spawn(tty_io(shared, m));
        }
        pid
    });
    let pid = r.as_ref().ok().copied();
    let _ = reply.send(r);
    pid
}

/// Records the exit for the engine, atomically.
fn write_exit_file(cfg: &ShimConfig, code: i32) {
    let rec = ExitRecord {
        exit_code: code,
        finished_at: jsonlog::now_rfc3339(),
        oom_killed: false,
    };
    if let Err(e) = crate::fsutil::write_json_atomic(&cfg.exit_file, &rec) {
        log_line(&format!("write exit file: {e}"));
    }
}

/// The exit is recorded: ends the attach streams and answers `wait`ers. The socket stays
/// bound until the cleanup is done, so the engine waits for it (connect succeeds) before a
/// restart.
fn answer_waiters(shared: &Shared, code: i32) {
    if let Ok(mut clients) = shared.clients.lock() {
        for c in clients.drain(..) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
    if let Ok(mut e) = shared.exit.lock() {
        *e = Some(code);
    }
    shared.exited.notify_all();
}

fn set_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Writes a line to the shim's log (its stderr, a file on the data root). Unlike `eprintln!`,
/// which panics when the write fails, a full disk does not end the shim before it has told
/// the engine the exit code.
pub(super) fn log_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Writes the one status line to the engine and closes stdout.
fn report(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

fn cleanup(cfg: &ShimConfig, rt: &dyn Runtime, mounter: &dyn Mounter) {
    let _ = rt.delete(&cfg.id, true);
    if let Some(r) = &cfg.rootfs {
        mounter.unmount(&r.target);
    }
    let _ = std::fs::remove_file(console_path(&cfg.socket));
}

/// Mounts the rootfs, binds the control socket and prepares the stdio (pipes, or the console
/// socket of a TTY container).
fn setup(cfg: &ShimConfig, mounter: &dyn Mounter) -> ShimResult<(Io, UnixListener, Files)> {
    if let Some(r) = &cfg.rootfs {
        mounter.mount_overlay(r).map_err(|e| e.to_string())?;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    let listener = UnixListener::bind(&cfg.socket)
        .map_err(|e| format!("bind {}: {e}", cfg.socket.display()))?;
    let files = Files {
        pid: cfg.bundle.join("init.pid"),
        log: cfg.bundle.join("runtime.log"),
    };
    let _ = std::fs::remove_file(&files.pid);
    let _ = std::fs::remove_file(&files.log);
    let io = Io::prepare(cfg)?;
    Ok((io, listener, files))
}

/// Runs `run --detach`; returns the init pid and, for a TTY, the pty master.
fn launch(
    cfg: &ShimConfig,
    rt: &dyn Runtime,
    io: &mut Io,
    files: &Files,
) -> ShimResult<(i32, Option<File>)> {
    let opts = CreateOptions {
        pid_file: files.pid.clone(),
        console_socket: io.console.as_ref().map(|_| console_path(&cfg.socket)),
        log_file: Some(files.log.clone()),
    };
    let mut cmd = rt.run_command(&cfg.id, &cfg.bundle, &opts);
    let mut master = None;
    if let Some(con_listener) = io.console.take() {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("spawn runtime: {e}"))?;
        let m = match receive_console(&con_listener, &mut child) {
            Ok(m) => m,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(runtime_failure(&files.log).unwrap_or(e));
            }
        };
        wait_runtime(&mut child, &files.log)?;
        if let Some((h, w)) = cfg.console_size {
            super::console::resize(&m, h, w);
        }
        master = Some(m);
    } else if let Some(st) = io.child_stdio.take() {
        match st.stdin {
            Some(fd) => cmd.stdin(Stdio::from(fd)),
            None => cmd.stdin(Stdio::null()),
        };
        cmd.stdout(Stdio::from(st.stdout))
            .stderr(Stdio::from(st.stderr));
        let mut child = cmd.spawn().map_err(|e| format!("spawn runtime: {e}"))?;
        // Our copies of the child's ends are closed when `cmd` drops.
        drop(cmd);
        wait_runtime(&mut child, &files.log)?;
    }
    let pid = std::fs::read_to_string(&files.pid)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| "runtime wrote no pid file".to_string())?;
    Ok((pid, master))
}

fn runtime_failure(log_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log_file).ok()?;
    let mut msg = None;
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if v["level"] == "error" {
                msg = v["msg"].as_str().map(str::to_string);
            }
        }
    }
    msg.or_else(|| Some(runtime::cli::last_message(&text)))
        .filter(|m| !m.is_empty())
}

fn wait_runtime(child: &mut Child, log_file: &Path) -> ShimResult<()> {
    let status = child.wait().map_err(|e| format!("wait runtime: {e}"))?;
    if status.success() {
        return Ok(());
    }
    Err(runtime_failure(log_file).unwrap_or_else(|| format!("runtime run failed: {status}")))
}

/// Accepts the runtime's console-socket connection and takes the pty master it sends.
fn receive_console(listener: &UnixListener, child: &mut Child) -> ShimResult<File> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(st)) = child.try_wait() {
                    return Err(format!("runtime run failed: {st}"));
                }
                if Instant::now() > deadline {
                    return Err("timed out waiting for the console".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accept console: {e}")),
        }
    };
    conn.set_nonblocking(false).map_err(|e| e.to_string())?;
    super::console::recv_fd(&conn)
}

/// Reaps children (we are their subreaper) until the container's init exits; returns its
/// Docker-style exit code.
fn reap(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 255,
        }
    }
}
