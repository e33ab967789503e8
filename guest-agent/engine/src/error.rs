//! The engine's one error type: a closed set of kinds that the server maps to HTTP statuses,
//! a message for the client, and the cause (any error, boxed) for the log: [`EngineError::chain`]
//! shows the message and every cause under it.

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
/// `Error response from daemon: <message>`, and the error that caused it, if any.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
            source: None,
        }
    }
    /// Keeps `cause` as this error's source (for the log; the client sees the message).
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(cause));
        self
    }
    /// The same error in another class.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
    /// The message and each cause below it that adds something, joined by `: `.
    pub fn chain(&self) -> String {
        let mut text = self.message.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let more = c.to_string();
            if !text.contains(&more) {
                text = format!("{text}: {more}");
            }
            cause = c.source();
        }
        text
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
            source: self.source,
        }
    }
}

/// An io error is the engine's own failure (500) whatever its kind: a missing file the engine
/// expected is no client's "not found". Lookups that mean "no such object" say so themselves
/// ([`EngineError::not_found`], as `docker cp` does for a missing path).
impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(&e).with_source(e)
    }
}

impl From<serde_json::Error> for EngineError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(format!("invalid json: {e}")).with_source(e)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("shim unreachable")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_shows_each_cause_once_and_the_client_only_the_message() {
        let io = std::io::Error::other("connection refused");
        let e = EngineError::unavailable("container x is not running")
            .with_source(Outer(io))
            .context("cannot attach");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.message(), "cannot attach: container x is not running");
        assert_eq!(
            e.chain(),
            "cannot attach: container x is not running: shim unreachable: connection refused"
        );
        // A cause whose text the message already carries is not repeated.
        let e = EngineError::from(std::io::Error::other("disk full")).context("write");
        assert_eq!(e.chain(), "write: disk full");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the io error is kept"
        );
    }

    #[test]
    fn io_errors_are_internal_even_when_a_file_is_missing() {
        for kind in [
            std::io::ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied,
            std::io::ErrorKind::AlreadyExists,
        ] {
            let e = EngineError::from(std::io::Error::from(kind));
            assert_eq!(e.kind(), ErrorKind::Internal, "{kind:?}");
        }
    }
}
