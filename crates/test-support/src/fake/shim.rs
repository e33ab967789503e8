//! The fake [`Shims`] and the table of fake containers they run.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_engine::shim::seam::BoxFuture;
use berth_engine::shim::{ExitRecord, Shim, ShimConfig, Shims};
use berth_engine::{EngineError, Result};
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::{lock, Call, Log};

/// One shim call the engine made (liveness checks and waits are not recorded: the engine's
/// background tasks make them at times a test does not control).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShimCall {
    Spawn { id: String },
    Attach { id: String },
    Start { id: String },
    Resize { id: String, height: u16, width: u16 },
}

/// Signals whose default action does not end a process.
const HARMLESS: [i32; 9] = [
    0,
    libc::SIGCHLD,
    libc::SIGCONT,
    libc::SIGURG,
    libc::SIGWINCH,
    libc::SIGSTOP,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// One shim and its container.
struct FakeShim {
    id: String,
    exit_file: PathBuf,
    pid: Option<i32>,
    exit: watch::Sender<Option<i32>>,
    /// The shim's ends of the attach streams, closed at the exit.
    attached: Vec<UnixStream>,
    gone: bool,
}

#[derive(Default)]
struct Inner {
    /// By control socket: how the engine finds a shim.
    shims: HashMap<PathBuf, FakeShim>,
    ignored: HashMap<String, HashSet<i32>>,
    last_pid: i32,
}

/// The fake containers of a host, shared by its fake runtime and fake shims.
#[derive(Clone, Default)]
pub(super) struct Table(Arc<Mutex<Inner>>);

impl Table {
    /// Runs `f` on the live shim at `socket`; unavailable (as a refused connection) if none.
    fn with<T>(&self, socket: &Path, f: impl FnOnce(&mut FakeShim, &mut i32) -> T) -> Result<T> {
        let mut t = lock(&self.0);
        let Inner {
            shims, last_pid, ..
        } = &mut *t;
        match shims.get_mut(socket) {
            Some(s) if !s.gone => Ok(f(s, last_pid)),
            _ => Err(EngineError::unavailable(format!(
                "shim {} unreachable: connection refused",
                socket.display()
            ))),
        }
    }

    pub(super) fn exit(&self, id: &str, code: i32) -> bool {
        let mut t = lock(&self.0);
        let running = t
            .shims
            .values_mut()
            .find(|s| s.id == id && !s.gone && s.pid.is_some());
        let Some(s) = running else {
            return false;
        };
        // As the real shim: the exit file first, then the answer to waiters, then gone.
        let rec = ExitRecord {
            exit_code: code,
            finished_at: berth_engine::shim::jsonlog::now_rfc3339(),
            oom_killed: false,
        };
        if let Err(e) = berth_engine::fsutil::write_json_atomic(&s.exit_file, &rec) {
            panic!("fake shim cannot write {}: {e}", s.exit_file.display());
        }
        s.exit.send_replace(Some(code));
        s.attached.clear();
        s.gone = true;
        true
    }

    /// A signal from the runtime's `kill`: ends the container unless it survives `signal`.
    pub(super) fn signal(&self, id: &str, signal: i32) {
        let survives = HARMLESS.contains(&signal)
            || lock(&self.0)
                .ignored
                .get(id)
                .is_some_and(|s| s.contains(&signal));
        if !survives {
            self.exit(id, 128 + signal);
        }
    }

    pub(super) fn alive(&self, id: &str) -> bool {
        lock(&self.0).shims.values().any(|s| s.id == id && !s.gone)
    }

    pub(super) fn ignore(&self, id: &str, signal: i32) {
        lock(&self.0)
            .ignored
            .entry(id.to_string())
            .or_default()
            .insert(signal);
    }
}

pub(super) struct FakeShims {
    log: Log,
    table: Table,
}

impl FakeShims {
    pub(super) fn new(log: Log, table: Table) -> Self {
        Self { log, table }
    }
}

impl Shims for FakeShims {
    fn spawn<'a>(
        &'a self,
        _exe: &'a Path,
        config: &'a Path,
        _log: &'a Path,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let text = tokio::fs::read(config).await?;
            let cfg: ShimConfig = serde_json::from_slice(&text)
                .map_err(|e| EngineError::internal(format!("fake shim: bad config: {e}")))?;
            self.log
                .push(Call::Shim(ShimCall::Spawn { id: cfg.id.clone() }));
            let shim = FakeShim {
                id: cfg.id,
                exit_file: cfg.exit_file,
                pid: None,
                exit: watch::channel(None).0,
                attached: vec![],
                gone: false,
            };
            let mut t = lock(&self.table.0);
            if t.shims.get(&cfg.socket).is_some_and(|s| !s.gone) {
                return Err(EngineError::internal(format!(
                    "fake shim: {} is in use",
                    cfg.socket.display()
                )));
            }
            t.shims.insert(cfg.socket, shim);
            Ok(())
        })
    }

    fn connect(&self, socket: &Path) -> Box<dyn Shim> {
        Box::new(FakeShimClient {
            socket: socket.to_path_buf(),
            log: self.log.clone(),
            table: self.table.clone(),
        })
    }
}

struct FakeShimClient {
    socket: PathBuf,
    log: Log,
    table: Table,
}

impl FakeShimClient {
    fn record(&self, call: impl FnOnce(String) -> ShimCall) -> Result<()> {
        let id = self.table.with(&self.socket, |s, _| s.id.clone())?;
        self.log.push(Call::Shim(call(id)));
        Ok(())
    }
}

impl Shim for FakeShimClient {
    fn alive(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.table.with(&self.socket, |_, _| ()).is_ok() })
    }

    /// Fake shims speak the engine's own protocol version; not logged (a question, no act).
    fn hello(&self) -> BoxFuture<'_, Result<u32>> {
        Box::pin(async move {
            self.table.with(&self.socket, |_, _| ())?;
            Ok(berth_engine::shim::PROTOCOL_VERSION)
        })
    }

    fn attach(
        &self,
        _stdin: bool,
        _stdout: bool,
        _stderr: bool,
    ) -> BoxFuture<'_, Result<UnixStream>> {
        Box::pin(async move {
            let (ours, theirs) = UnixStream::pair()?;
            self.record(|id| ShimCall::Attach { id })?;
            self.table
                .with(&self.socket, |s, _| s.attached.push(theirs))?;
            Ok(ours)
        })
    }

    fn start(&self) -> BoxFuture<'_, Result<i32>> {
        Box::pin(async move {
            self.record(|id| ShimCall::Start { id })?;
            self.table.with(&self.socket, |s, last_pid| match s.pid {
                Some(_) => Err(EngineError::internal(
                    "failed to create task for container: container already started",
                )),
                None => {
                    *last_pid += 1;
                    let pid = 1000 + *last_pid;
                    s.pid = Some(pid);
                    Ok(pid)
                }
            })?
        })
    }

    fn resize(&self, height: u16, width: u16) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.record(|id| ShimCall::Resize { id, height, width }) })
    }

    fn wait(&self) -> BoxFuture<'_, Result<i32>> {
        Box::pin(async move {
            let mut rx = self.table.with(&self.socket, |s, _| s.exit.subscribe())?;
            let code = *rx
                .wait_for(Option::is_some)
                .await
                .map_err(|e| EngineError::unavailable(format!("fake shim wait: {e}")))?;
            Ok(code.unwrap_or(255))
        })
    }
}
