//! Fakes of the engine's OS seams (feature `engine`): a [`FakeHost`] hands out a fake runtime,
//! fake shims, a fake mounter and a fake host network that share one log of what the engine asked, in order, and
//! one table of fake containers, so a test can drive a container's life (its exit, a signal
//! that ends it) and check the calls each lifecycle step makes, without root or runc.
//!
//! What the fakes keep of the real contract (and nothing more):
//! - a shim reads the config the engine wrote, waits for `start`, then the container runs
//!   with a pid; it outlives the engine (the table lives in the [`FakeHost`], not the engine);
//! - at the container's exit the shim writes the exit file, answers `wait`, then goes away;
//! - the runtime's `kill` ends a running container with `128 + signal` unless the signal is
//!   one whose default action does not end a process, or the test told the container to
//!   ignore it ([`FakeHost::ignore_signal`]).

mod mount;
mod net;
mod runtime;
mod shim;

pub use mount::MountCall;
pub use net::NetCall;
pub use runtime::RuntimeCall;
pub use shim::ShimCall;

use std::sync::{Arc, Mutex, MutexGuard};

use berth_engine::Seams;

/// One call the engine made through a seam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Runtime(RuntimeCall),
    Shim(ShimCall),
    Mount(MountCall),
    Net(NetCall),
}

/// The log shared by the fakes of one host.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<Call>>>);

impl Log {
    fn push(&self, call: Call) {
        lock(&self.0).push(call);
    }

    fn all(&self) -> Vec<Call> {
        lock(&self.0).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fake host: the seams to give [`berth_engine::Engine::open_with`], and the controls and
/// records a test uses. Clones share everything; keep one across engine restarts.
#[derive(Clone, Default)]
pub struct FakeHost {
    log: Log,
    containers: shim::Table,
}

impl FakeHost {
    /// The engine's seams, all fake.
    pub fn seams(&self) -> Seams {
        Seams {
            runtimes: Arc::new(runtime::FakeRuntimes::new(
                self.log.clone(),
                self.containers.clone(),
            )),
            shims: Arc::new(shim::FakeShims::new(
                self.log.clone(),
                self.containers.clone(),
            )),
            mounter: Arc::new(mount::FakeMounter::new(self.log.clone())),
            net: Arc::new(net::FakeNet::new(self.log.clone())),
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.log.all()
    }

    /// The runtime calls so far, in order.
    pub fn runtime_calls(&self) -> Vec<RuntimeCall> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Runtime(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The host-network calls so far, in order.
    pub fn net_calls(&self) -> Vec<NetCall> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Net(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    /// Ends the running container `id` with `code`, as its init exiting would. Returns false
    /// if no started container `id` is running.
    pub fn exit(&self, id: &str, code: i32) -> bool {
        self.containers.exit(id, code)
    }

    /// Whether a shim of container `id` is alive (spawned and not yet gone).
    pub fn shim_alive(&self, id: &str) -> bool {
        self.containers.alive(id)
    }

    /// Makes the container `id` (its current and later runs) survive `signal`, as an init
    /// without a handler for it does (so `docker stop` has to escalate to SIGKILL).
    pub fn ignore_signal(&self, id: &str, signal: i32) {
        self.containers.ignore(id, signal);
    }
}
