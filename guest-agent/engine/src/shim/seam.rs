//! The engine's seam to the shims: launching one, and the requests of its control socket.
//!
//! Why the seam is here and not only at the runtime: the engine never runs a container's
//! process itself. It spawns a shim (a separate process, `berth-agent shim`) that mounts the
//! rootfs, runs the runtime's `run --detach`, reaps the init and writes the exit file; the
//! engine asks the runtime directly only for kill, pause, resume, update, ps and deletes of
//! leftovers. A fake runtime alone therefore cannot make a container run or exit. A fake of
//! this seam can, honestly: it keeps the contract the engine relies on (a started container
//! has a pid, `wait` answers with the exit code, the exit file is written before the socket
//! goes away, a shim outlives the engine), which is what lifecycle, restart policy and restore
//! are built on. The shim process itself uses the real runtime and mounts.

use std::path::Path;
use std::time::Duration;

pub use futures::future::BoxFuture;
use tokio::net::UnixStream;

use super::client::{self, ShimClient};
use crate::Result;

/// Launches shims and connects to them by socket. Injected at [`crate::Engine::open_with`].
pub trait Shims: Send + Sync {
    /// Spawns the shim of the [`super::ShimConfig`] written at `config` (the program
    /// `exe shim <config>`, its stderr to `log`) and waits until it is ready for `start`.
    fn spawn<'a>(
        &'a self,
        exe: &'a Path,
        config: &'a Path,
        log: &'a Path,
    ) -> BoxFuture<'a, Result<()>>;

    /// The shim listening on `socket` (which may be gone: then its requests fail).
    fn connect(&self, socket: &Path) -> Box<dyn Shim>;
}

/// The requests of one shim's control socket (see [`super`] for the protocol).
pub trait Shim: Send + Sync {
    /// Whether the shim answers at all.
    fn alive(&self) -> BoxFuture<'_, bool>;

    /// The shim's control protocol version ([`super::PROTOCOL_VERSION`]; 0 for shims from
    /// before the `hello` request).
    fn hello(&self) -> BoxFuture<'_, Result<u32>>;

    /// Opens an attach stream: output from the shim, stdin to it.
    fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> BoxFuture<'_, Result<UnixStream>>;

    /// Starts the container; returns its init's pid.
    fn start(&self) -> BoxFuture<'_, Result<i32>>;

    /// Resizes the container's terminal.
    fn resize(&self, height: u16, width: u16) -> BoxFuture<'_, Result<()>>;

    /// Waits for the container to exit; returns its exit code.
    fn wait(&self) -> BoxFuture<'_, Result<i32>>;

    /// Waits (bounded) until no shim answers any more: a shim that has reported its exit
    /// keeps its socket until it has deleted the runtime container and unmounted.
    fn wait_gone(&self) -> BoxFuture<'_, ()> {
        const LIMIT: Duration = Duration::from_secs(10);
        Box::pin(async move {
            let _ = tokio::time::timeout(LIMIT, async {
                while self.alive().await {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        })
    }
}

/// The real shims: `berth-agent shim` processes and their unix sockets.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostShims;

impl Shims for HostShims {
    fn spawn<'a>(
        &'a self,
        exe: &'a Path,
        config: &'a Path,
        log: &'a Path,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(client::spawn(exe, config, log))
    }

    fn connect(&self, socket: &Path) -> Box<dyn Shim> {
        Box::new(ShimClient::new(socket.to_path_buf()))
    }
}

impl Shim for ShimClient {
    fn alive(&self) -> BoxFuture<'_, bool> {
        Box::pin(ShimClient::alive(self))
    }

    fn hello(&self) -> BoxFuture<'_, Result<u32>> {
        Box::pin(ShimClient::hello(self))
    }

    fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> BoxFuture<'_, Result<UnixStream>> {
        Box::pin(ShimClient::attach(self, stdin, stdout, stderr))
    }

    fn start(&self) -> BoxFuture<'_, Result<i32>> {
        Box::pin(ShimClient::start(self))
    }

    fn resize(&self, height: u16, width: u16) -> BoxFuture<'_, Result<()>> {
        Box::pin(ShimClient::resize(self, height, width))
    }

    fn wait(&self) -> BoxFuture<'_, Result<i32>> {
        Box::pin(ShimClient::wait(self))
    }
}
