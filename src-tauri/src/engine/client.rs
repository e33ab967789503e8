//! The Docker client on the chosen socket.
//!
//! We use `bollard` (already a workspace dependency for the SDK tests) rather than a hand-rolled
//! hyper client: it has typed requests and responses for every endpoint the UI needs, decodes
//! the multiplexed log/exec framing and the JSON-lines progress, stats and event streams, and
//! hands back the hijacked exec connection as an `AsyncWrite` for the terminal. Its errors carry
//! the Docker status and `message`, which [`crate::error::AppError::from_docker`] maps to codes.

use std::sync::{Arc, OnceLock};

use bollard::Docker;

use super::SocketChoice;
use crate::error::{AppError, Result};

/// Seconds a single (non-streaming) request may take.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A Docker client bound to one socket; cheap to clone. The app must start, and stay up, while
/// the engine is down (the user may start the VM from it), so the client is made on first use:
/// bollard refuses to create one for a socket path that does not exist yet.
#[derive(Clone)]
pub struct Engine {
    socket: Arc<SocketChoice>,
    docker: Arc<OnceLock<Docker>>,
}

impl Engine {
    /// An engine handle for `socket`; nothing is checked or dialled here.
    pub fn new(socket: SocketChoice) -> Self {
        Self {
            socket: Arc::new(socket),
            docker: Arc::default(),
        }
    }

    /// The client; fails with `unavailable` while the socket does not exist.
    pub fn docker(&self) -> Result<Docker> {
        if let Some(d) = self.docker.get() {
            return Ok(d.clone());
        }
        let path = self.socket.path.to_string_lossy().into_owned();
        let d = connect(&path).map_err(|e| AppError::from_docker(e, &path))?;
        Ok(self.docker.get_or_init(|| d).clone())
    }

    pub fn socket(&self) -> &SocketChoice {
        &self.socket
    }

    /// Maps a client error, naming this engine's socket.
    pub fn err(&self, e: bollard::errors::Error) -> AppError {
        AppError::from_docker(e, &self.socket.path.to_string_lossy())
    }
}

/// A unix socket; on Windows a named pipe (`\\.\pipe\name`).
#[cfg(unix)]
fn connect(path: &str) -> std::result::Result<Docker, bollard::errors::Error> {
    Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
}

#[cfg(windows)]
fn connect(path: &str) -> std::result::Result<Docker, bollard::errors::Error> {
    Docker::connect_with_named_pipe(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SocketSource;

    #[cfg(unix)]
    #[test]
    fn a_missing_socket_is_unavailable_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::new(SocketChoice {
            path: d.path().join("later.sock"),
            source: SocketSource::BerthVm,
        });
        let err = e.docker().expect_err("no socket yet");
        assert_eq!(err.code().as_str(), "unavailable");
        // Once the socket exists the same handle connects.
        let _l = std::os::unix::net::UnixListener::bind(d.path().join("later.sock")).unwrap();
        assert!(e.docker().is_ok());
    }
}
