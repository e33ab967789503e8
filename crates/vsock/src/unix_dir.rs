//! A stand-in for vsock in tests and native mode: guest port `P` is the unix socket `<dir>/P.sock`.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use crate::{BoxIo, Connector};

#[derive(Debug, Clone)]
pub struct UnixDirConnector {
    dir: PathBuf,
}

impl UnixDirConnector {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The socket path standing for `port`.
    pub fn path(dir: &Path, port: u32) -> PathBuf {
        dir.join(format!("{port}.sock"))
    }
}

impl Connector for UnixDirConnector {
    fn connect(&self, port: u32) -> Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send + '_>> {
        Box::pin(async move {
            let s = tokio::net::UnixStream::connect(Self::path(&self.dir, port)).await?;
            Ok(Box::new(s) as BoxIo)
        })
    }
}
