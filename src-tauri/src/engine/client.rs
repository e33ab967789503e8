//! The Docker client on the chosen socket.
//!
//! We use `bollard` (already a workspace dependency for the SDK tests) rather than a hand-rolled
//! hyper client: it has typed requests and responses for every endpoint the UI needs, decodes
//! the multiplexed log/exec framing and the JSON-lines progress, stats and event streams, and
//! hands back the hijacked exec connection as an `AsyncWrite` for the terminal. Its errors carry
//! the Docker status and `message`, which [`crate::error::AppError::from_docker`] maps to codes.

use std::sync::Arc;

use bollard::Docker;

use super::SocketChoice;
use crate::error::{AppError, Result};

/// Seconds a single (non-streaming) request may take.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A Docker client bound to one socket; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    socket: Arc<SocketChoice>,
}

impl Engine {
    /// A client for `socket`; nothing is dialled until the first request.
    pub fn new(socket: SocketChoice) -> Result<Self> {
        let path = socket.path.to_string_lossy().into_owned();
        let docker =
            Docker::connect_with_unix(&path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                .map_err(|e| AppError::from_docker(e, &path))?;
        Ok(Self {
            docker,
            socket: Arc::new(socket),
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn socket(&self) -> &SocketChoice {
        &self.socket
    }

    /// Maps a client error, naming this engine's socket.
    pub fn err(&self, e: bollard::errors::Error) -> AppError {
        AppError::from_docker(e, &self.socket.path.to_string_lossy())
    }
}
