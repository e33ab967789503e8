//! Errors of the host library.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("failed to access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}")]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid engine configuration {path}: {detail}")]
    DaemonJson {
        path: PathBuf,
        detail: crate::daemon_json::Invalid,
    },
    /// The docker CLI's `config.json` or a context's `meta.json` is not what the CLI writes.
    #[error("invalid docker CLI file {path}")]
    DockerConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The docker CLI's words for a context that is not in the store.
    #[error("context \"{0}\" does not exist")]
    NoSuchContext(String),
    #[error("failed to start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is missing: run scripts/install-vm-tools.sh")]
    MissingTool(String),
    #[error("VM image file {0} is missing: run vm-image/build.sh")]
    MissingImage(PathBuf),
    #[error("invalid VM image manifest {path}")]
    ImageManifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} names architecture {arch:?}, which Berth cannot boot (amd64 or arm64)")]
    UnsupportedArch { path: PathBuf, arch: String },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    #[error("control channel: {0}")]
    Control(String),
    #[error("the VM failed to start: {0}")]
    VmFailed(String),
    /// A Docker API answered with an error status; `message` is its `{"message"}`.
    #[error("{message}")]
    Api { status: u16, message: String },
    /// Refused because Berth's VM runs (stop it first).
    #[error("{0}")]
    VmRunning(String),
    #[error("{0} is not supported on this platform")]
    NotSupported(&'static str),
}

impl HostError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

pub type Result<T, E = HostError> = std::result::Result<T, E>;
