//! The engine's side of the real shim: spawning it and talking to its control socket (async).
//! The engine reaches both through [`super::seam`].

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::Request;
use crate::{EngineError, Result};

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
        .map_err(|e| EngineError::internal(format!("failed to spawn the shim: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| EngineError::internal("shim has no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    // Reap the shim whenever it ends; it outlives us if we die first.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    parse_status(line.trim()).map(drop)
}

fn parse_status(line: &str) -> Result<i32> {
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid
            .parse()
            .map_err(|_| EngineError::internal(format!("bad shim reply: {line}")));
    }
    let msg = line.strip_prefix("error ").unwrap_or(if line.is_empty() {
        "shim exited without a status"
    } else {
        line
    });
    Err(EngineError::internal(format!(
        "failed to create task for container: {msg}"
    )))
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

    async fn connect(&self) -> Result<UnixStream> {
        UnixStream::connect(&self.socket).await.map_err(|e| {
            EngineError::unavailable(format!("shim {} unreachable: {e}", self.socket.display()))
        })
    }

    async fn line(conn: &mut UnixStream) -> Result<String> {
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

    async fn call(&self, req: &Request) -> Result<(UnixStream, String)> {
        let mut conn = self.connect().await?;
        conn.write_all(req.encode().as_bytes()).await?;
        let reply = Self::line(&mut conn).await?;
        Ok((conn, reply))
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
        if reply != "ok" {
            return Err(EngineError::internal(format!(
                "shim refused attach: {reply}"
            )));
        }
        Ok(conn)
    }

    /// Starts the container; returns its pid.
    pub async fn start(&self) -> Result<i32> {
        let (_, reply) = self.call(&Request::Start).await?;
        parse_status(&reply)
    }

    pub async fn resize(&self, height: u16, width: u16) -> Result<()> {
        self.call(&Request::Resize { height, width })
            .await
            .map(drop)
    }

    /// Waits for the container to exit; returns its exit code.
    pub async fn wait(&self) -> Result<i32> {
        let (_, reply) = self.call(&Request::Wait).await?;
        reply
            .strip_prefix("exit ")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| EngineError::unavailable(format!("shim wait failed: {reply:?}")))
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
