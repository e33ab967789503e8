//! The engine's one error type: a closed set of kinds that the server maps to HTTP statuses.

use std::fmt;

/// What went wrong, in the classes clients act on (moby's error classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    NotModified,
    Unauthorized,
    Forbidden,
    Unavailable,
    NotImplemented,
    Internal,
}

/// An engine error: a kind plus a lower-case message naming the object, shown to users as
/// `Error response from daemon: <message>`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    kind: ErrorKind,
    message: String,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn not_found(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn invalid(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidArgument, m)
    }
    pub fn conflict(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Conflict, m)
    }
    pub fn not_modified(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotModified, m)
    }
    pub fn unauthorized(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Unauthorized, m)
    }
    pub fn unavailable(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Unavailable, m)
    }
    pub fn not_implemented(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotImplemented, m)
    }
    pub fn internal(m: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    /// Prefixes the message with context, keeping the kind: `context: message`.
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{ctx}: {}", self.message),
        }
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::Forbidden,
            std::io::ErrorKind::AlreadyExists => ErrorKind::Conflict,
            std::io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, e)
    }
}

impl From<serde_json::Error> for EngineError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(format!("invalid json: {e}"))
    }
}

impl From<nix::Error> for EngineError {
    fn from(e: nix::Error) -> Self {
        std::io::Error::from(e).into()
    }
}

/// Adds context to any error convertible into an [`EngineError`].
pub trait ResultExt<T> {
    fn ctx(self, ctx: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<EngineError>> ResultExt<T> for std::result::Result<T, E> {
    fn ctx(self, ctx: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(ctx))
    }
}
