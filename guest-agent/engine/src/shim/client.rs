//! The engine's side of the real shim: spawning it and talking to its control socket (async).
//! The engine reaches both through [`super::seam`].

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{Reply, Request};
use crate::{EngineError, ErrorKind, Result};

/// What can go wrong between the engine and a shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("failed to spawn the shim: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("shim {socket} unreachable: {source}")]
    Unreachable {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("shim connection: {0}")]
    Io(#[from] std::io::Error),
    /// The shim answered `error <message>` (its own words: the runtime's error on a start).
    #[error("{0}")]
    Refused(String),
    #[error("bad shim reply: {0:?}")]
    BadReply(String),
}

impl From<ShimError> for EngineError {
    fn from(e: ShimError) -> Self {
        let kind = match e {
            ShimError::Unreachable { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        EngineError::new(kind, &e).with_source(e)
    }
}

/// Spawns `berth-agent shim <config>` detached (it calls setsid itself) and waits for its
/// status line.
pub async fn spawn(self_exe: &Path, config: &Path, shim_log: &Path) -> Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(shim_log)?;
    let mut child = tokio::process::Command::new(self_exe)
        .arg("shim")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(false)
        .spawn()
        .map_err(ShimError::Spawn)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| EngineError::internal("shim has no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(ShimError::Io)?;
    // Reap the shim whenever it ends; it outlives us if we die first.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    parse_status(line.trim()).map(drop)
}

/// The shim's ready line or its answer to `start`: `ok <pid>`, else the start's error in
/// dockerd's words.
fn parse_status(line: &str) -> Result<i32> {
    let refused = |msg: &str| {
        EngineError::from(ShimError::Refused(msg.into()))
            .context("failed to create task for container")
    };
    match Reply::parse(line) {
        Some(Reply::Ok { pid: Some(pid) }) => Ok(pid),
        Some(Reply::Error { message }) => Err(refused(&message)),
        _ if line.is_empty() => Err(refused("shim exited without a status")),
        _ => Err(ShimError::BadReply(line.into()).into()),
    }
}

/// A connection to one shim.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    async fn connect(&self) -> Result<UnixStream, ShimError> {
        UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ShimError::Unreachable {
                socket: self.socket.display().to_string(),
                source,
            })
    }

    async fn line(conn: &mut UnixStream) -> Result<String, ShimError> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while out.len() < 4096 {
            if conn.read(&mut b).await? == 0 || b[0] == b'\n' {
                break;
            }
            out.push(b[0]);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    async fn call(&self, req: &Request) -> Result<(UnixStream, String), ShimError> {
        let mut conn = self.connect().await?;
        conn.write_all(req.encode().as_bytes()).await?;
        let reply = Self::line(&mut conn).await?;
        Ok((conn, reply))
    }

    /// The shim's protocol version: 0 for a shim from before the `hello` request.
    pub async fn hello(&self) -> Result<u32> {
        let (_, reply) = self.call(&Request::Hello).await?;
        Reply::parse(&reply)
            .and_then(|r| r.version())
            .ok_or_else(|| ShimError::BadReply(reply).into())
    }

    /// Whether the shim answers at all.
    pub async fn alive(&self) -> bool {
        self.connect().await.is_ok()
    }

    /// Opens an attach stream: output from the shim, stdin to it.
    pub async fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream> {
        let (conn, reply) = self
            .call(&Request::Attach {
                stdin,
                stdout,
                stderr,
            })
            .await?;
        match Reply::parse(&reply) {
            Some(Reply::Ok { pid: None }) => {}
            Some(Reply::Error { message }) => {
                return Err(EngineError::from(ShimError::Refused(message)).context("attach"))
            }
            _ => return Err(ShimError::BadReply(reply).into()),
        }
        Ok(conn)
    }

    /// Starts the container; returns its pid.
    pub async fn start(&self) -> Result<i32> {
        let (_, reply) = self.call(&Request::Start).await?;
        parse_status(&reply)
    }

    pub async fn resize(&self, height: u16, width: u16) -> Result<()> {
        self.call(&Request::Resize { height, width }).await?;
        Ok(())
    }

    /// Waits for the container to exit; returns its exit code.
    pub async fn wait(&self) -> Result<i32> {
        let (_, reply) = self.call(&Request::Wait).await?;
        match Reply::parse(&reply) {
            Some(Reply::Exit { code }) => Ok(code),
            _ => Err(EngineError::from(ShimError::BadReply(reply))
                .context("shim wait failed")
                .with_kind(ErrorKind::Unavailable)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("ok 42").unwrap(), 42);
        let e = parse_status("error exec: \"x\": executable file not found in $PATH").unwrap_err();
        assert!(e.message().contains("executable file not found"), "{e}");
        assert!(parse_status("").is_err());
    }
}
