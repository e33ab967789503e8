//! The shim process itself (synchronous: std threads, nix, libc).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::jsonlog;
use super::{ExitRecord, Reply, Request, ShimConfig, PROTOCOL_VERSION};
use crate::mount::{HostMounter, Mounter};
use crate::runtime::{self, CreateOptions, Runtime};

type ShimResult<T> = Result<T, String>;

/// How long the shim waits for the engine's `start` after `create`.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long output may keep flowing after the init process exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

struct Client {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
}

type StartReply = mpsc::Sender<ShimResult<i32>>;

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

/// Output read while the runtime runs is held, in the order it arrived on either pipe: once
/// the runtime succeeded it is the container's and goes out in that order; after a failure it
/// is the runtime's own error text (reported from its log file) and is dropped. The pumps
/// read from the start, so stdout and stderr keep their relative order.
enum Gate {
    Holding(Vec<(u8, Vec<u8>)>),
    Open,
    Closed,
}

/// The container's stdio prepared before the runtime runs: our ends, and the ends (or the
/// console socket) handed to the runtime.
struct Io {
    stdin: Option<File>,
    outputs: Vec<(u8, File)>,
    child_stdio: Option<ChildStdio>,
    console: Option<UnixListener>,
}

struct ChildStdio {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
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
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut n_pumps = 0;
    let spawn_pumps = |outputs: Vec<(u8, File)>, n: &mut usize| {
        for (stream, file) in outputs {
            *n += 1;
            let s = shared.clone();
            let done = done_tx.clone();
            std::thread::spawn(move || {
                pump(&s, stream, file);
                let _ = done.send(());
            });
        }
    };
    {
        let s = shared.clone();
        std::thread::spawn(move || serve(&s, listener));
    }
    report("ok 0");

    // Wait for the engine's go (attaches are connected by then, so no output is lost), then
    // create and start the container in one runtime call.
    let pid = match start_rx.recv_timeout(START_TIMEOUT) {
        Ok(reply) => {
            spawn_pumps(std::mem::take(&mut io.outputs), &mut n_pumps);
            let r = launch(&cfg, rt.as_ref(), &mut io, &files);
            open_gate(&shared, r.is_ok());
            let r = r.map(|(pid, master)| {
                if let Some(m) = master {
                    let outputs = tty_io(&shared, m);
                    spawn_pumps(outputs, &mut n_pumps);
                }
                pid
            });
            let pid = r.as_ref().ok().copied();
            let _ = reply.send(r);
            pid
        }
        Err(_) => None,
    };
    // Our copies of the child's ends must not keep the pumps alive.
    drop(io);
    let code = pid.map(reap).unwrap_or(255);
    // Drain output, then record the exit.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    for _ in 0..n_pumps {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    if let Ok(mut l) = shared.log.lock() {
        let _ = l.flush();
    }
    if pid.is_some() {
        let rec = ExitRecord {
            exit_code: code,
            finished_at: jsonlog::now_rfc3339(),
            oom_killed: false,
        };
        if let Err(e) = crate::fsutil::write_json_atomic(&cfg.exit_file, &rec) {
            log_line(&format!("write exit file: {e}"));
        }
    }
    // The exit is recorded: answer waiters first, then clean up. The socket stays bound until
    // the cleanup is done, so the engine waits for it (connect succeeds) before a restart.
    if let Ok(mut clients) = shared.clients.lock() {
        for c in clients.drain(..) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
    if let Ok(mut e) = shared.exit.lock() {
        *e = Some(code);
    }
    shared.exited.notify_all();
    let answered = Instant::now();
    cleanup(&cfg, rt.as_ref(), &mounter);
    let _ = std::fs::remove_file(&cfg.socket);
    // Give `wait` connections a moment to read their answer.
    std::thread::sleep(Duration::from_millis(100).saturating_sub(answered.elapsed()));
    Ok(())
}

fn set_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Writes the one status line to the engine and closes stdout.
/// Writes a line to the shim's log (its stderr, a file on the data root). Unlike `eprintln!`,
/// which panics when the write fails, a full disk does not end the shim before it has told
/// the engine the exit code.
pub(super) fn log_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

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

fn console_path(socket: &Path) -> PathBuf {
    socket.with_extension("con")
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
    let io = if cfg.tty {
        let con = console_path(&cfg.socket);
        let _ = std::fs::remove_file(&con);
        let con_listener =
            UnixListener::bind(&con).map_err(|e| format!("bind {}: {e}", con.display()))?;
        Io {
            stdin: None,
            outputs: vec![],
            child_stdio: None,
            console: Some(con_listener),
        }
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin, child_in) = if cfg.open_stdin {
            let (in_r, in_w) = pipe()?;
            (Some(File::from(in_w)), Some(in_r))
        } else {
            (None, None)
        };
        Io {
            stdin,
            outputs: vec![(1, File::from(out_r)), (2, File::from(err_r))],
            child_stdio: Some(ChildStdio {
                stdin: child_in,
                stdout: out_w,
                stderr: err_w,
            }),
            console: None,
        }
    };
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

/// Wires a TTY container's pty master: stdin (if open), resize, and the one output stream.
fn tty_io(s: &Shared, master: File) -> Vec<(u8, File)> {
    let mut outputs = vec![];
    if s.cfg.open_stdin {
        if let (Ok(w), Ok(mut g)) = (master.try_clone(), s.stdin.lock()) {
            *g = Some(w);
        }
    }
    if let Ok(r) = master.try_clone() {
        outputs.push((1, r));
    }
    let _ = s.master.set(master);
    outputs
}

fn pipe() -> ShimResult<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
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

/// Copies one output stream to the log and every attached client.
fn pump(s: &Shared, stream: u8, mut src: File) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Ok(mut gate) = s.gate.lock() else {
            break;
        };
        match &mut *gate {
            Gate::Holding(held) => held.push((stream, buf[..n].to_vec())),
            Gate::Open => deliver(s, stream, &buf[..n]),
            Gate::Closed => {}
        }
    }
}

/// Ends the holding period: delivers what was held (the runtime succeeded) or drops it.
fn open_gate(s: &Shared, launched: bool) {
    let Ok(mut gate) = s.gate.lock() else {
        return;
    };
    let next = if launched { Gate::Open } else { Gate::Closed };
    if let Gate::Holding(held) = std::mem::replace(&mut *gate, next) {
        if launched {
            for (stream, data) in held {
                deliver(s, stream, &data);
            }
        }
    }
}

/// Writes output to the log and to every attached client that wants its stream.
fn deliver(s: &Shared, stream: u8, data: &[u8]) {
    if let Ok(mut log) = s.log.lock() {
        let _ = log.write(stream, data);
    }
    let Ok(mut clients) = s.clients.lock() else {
        return;
    };
    clients.retain_mut(|c| {
        let wanted = if stream == 2 { c.stderr } else { c.stdout };
        if !wanted {
            return true;
        }
        if s.cfg.tty {
            c.stream.write_all(data).is_ok()
        } else {
            let mut frame = Vec::with_capacity(8 + data.len());
            frame.extend_from_slice(&crate::stream::frame_header(stream, data.len()));
            frame.extend_from_slice(data);
            c.stream.write_all(&frame).is_ok()
        }
    });
}

fn serve(s: &Arc<Shared>, listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let s = s.clone();
        std::thread::spawn(move || {
            if let Err(e) = handle(&s, conn) {
                log_line(&format!("shim connection: {e}"));
            }
        });
    }
}

fn read_line(conn: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 256 {
        if conn.read(&mut b)? == 0 {
            break;
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn handle(s: &Shared, mut conn: UnixStream) -> std::io::Result<()> {
    let line = read_line(&mut conn)?;
    let ok = Reply::Ok { pid: None }.encode();
    match Request::parse(&line) {
        Some(Request::Hello) => conn.write_all(
            Reply::Hello {
                version: PROTOCOL_VERSION,
            }
            .encode()
            .as_bytes(),
        ),
        Some(Request::Attach {
            stdin,
            stdout,
            stderr,
        }) => {
            {
                let mut clients = s
                    .clients
                    .lock()
                    .map_err(|_| std::io::Error::other("lock"))?;
                conn.write_all(ok.as_bytes())?;
                if s.exit.lock().map(|e| e.is_some()).unwrap_or(true) {
                    return Ok(());
                }
                clients.push(Client {
                    stream: conn.try_clone()?,
                    stdout,
                    stderr,
                });
            }
            if stdin {
                copy_stdin(s, &mut conn);
            }
            Ok(())
        }
        Some(Request::Start) => {
            let (tx, rx) = mpsc::channel();
            let sent = s
                .start_tx
                .lock()
                .ok()
                .and_then(|mut t| t.take())
                .is_some_and(|t| t.send(tx).is_ok());
            let reply = if sent {
                rx.recv().unwrap_or_else(|_| Err("shim is exiting".into()))
            } else {
                Err("container already started".into())
            };
            let reply = match reply {
                Ok(pid) => Reply::Ok { pid: Some(pid) },
                Err(message) => Reply::Error { message },
            };
            conn.write_all(reply.encode().as_bytes())
        }
        Some(Request::Resize { height, width }) => {
            if let Some(m) = s.master.get() {
                super::console::resize(m, height, width);
            }
            conn.write_all(ok.as_bytes())
        }
        Some(Request::Wait) => {
            let mut e = s.exit.lock().map_err(|_| std::io::Error::other("lock"))?;
            while e.is_none() {
                e = s
                    .exited
                    .wait(e)
                    .map_err(|_| std::io::Error::other("lock"))?;
            }
            let code = e.unwrap_or(255);
            drop(e);
            conn.write_all(Reply::Exit { code }.encode().as_bytes())
        }
        None => conn.write_all(
            Reply::Error {
                message: "unknown request".into(),
            }
            .encode()
            .as_bytes(),
        ),
    }
}

/// Copies an attach client's bytes to the container's stdin; on EOF closes stdin when the
/// container was created with `StdinOnce`.
fn copy_stdin(s: &Shared, conn: &mut UnixStream) {
    let mut buf = [0u8; 8192];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let Ok(mut g) = s.stdin.lock() else { return };
                let Some(f) = g.as_mut() else { continue };
                if f.write_all(&buf[..n]).is_err() {
                    *g = None;
                }
            }
        }
    }
    if s.cfg.stdin_once && !s.cfg.tty {
        if let Ok(mut g) = s.stdin.lock() {
            *g = None;
        }
    }
}
