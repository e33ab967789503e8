//! QEMU's human monitor (HMP), as the QEMU back-ends of every platform start it (`-monitor` on
//! a unix socket, or a named pipe on Windows): one command per connection, its reply read up to
//! the next `(qemu) ` prompt, so the caller knows QEMU has acted on it.
//!
//! Why HMP and not QMP: the few commands Berth needs (`system_powerdown`, `stop`, `cont`,
//! `info status`) are one line each with one-line answers; QMP would add a JSON handshake and a
//! crate for no more certainty, and the monitor socket was already HMP.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::endpoint::Endpoint;
use crate::error::{HostError, Result};
use crate::vm::Pauser;

/// What QEMU prints when it is ready for the next command.
const PROMPT: &[u8] = b"(qemu) ";
/// A command and its answer, banner included, never take longer than this on a live QEMU.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on what one answer may hold (`info status` is one line).
const MAX_REPLY: usize = 64 * 1024;

/// Runs `command` on the monitor at `at`; returns what QEMU answered (the echo of the command
/// included, prompts left out).
pub async fn command(at: &Endpoint, command: &str) -> Result<String> {
    let what = format!("QEMU monitor {at}: {command}");
    tokio::time::timeout(TIMEOUT, exchange(at, command))
        .await
        .map_err(|_| HostError::Timeout {
            what: what.clone(),
            secs: TIMEOUT.as_secs(),
        })?
        .map_err(HostError::io(what))
}

async fn exchange(at: &Endpoint, command: &str) -> std::io::Result<String> {
    let mut io = crate::endpoint::connect(at).await?;
    let mut buf = Vec::new();
    read_to_prompt(&mut io, &mut buf).await?;
    buf.clear();
    io.write_all(format!("{command}\n").as_bytes()).await?;
    read_to_prompt(&mut io, &mut buf).await?;
    Ok(String::from_utf8_lossy(&buf[..buf.len() - PROMPT.len()]).into_owned())
}

/// Reads into `buf` until it ends with the prompt.
async fn read_to_prompt(io: &mut berth_vsock::BoxIo, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(PROMPT) {
        let n = io.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > MAX_REPLY {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the monitor closed or answered too much before its prompt",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Whether `info status`'s answer says the guest's CPUs are stopped.
pub fn says_paused(info_status: &str) -> bool {
    info_status.contains("VM status: paused")
}

/// Pauses and resumes a QEMU guest through its monitor (`stop` / `cont`), checking the result
/// with `info status`.
#[derive(Debug, Clone)]
pub struct MonitorPauser {
    pub at: Endpoint,
}

impl MonitorPauser {
    async fn switch(&self, verb: &str, want_paused: bool) -> Result<()> {
        command(&self.at, verb).await?;
        let status = command(&self.at, "info status").await?;
        if says_paused(&status) != want_paused {
            return Err(HostError::Command {
                what: format!("QEMU `{verb}`"),
                detail: format!("the monitor still says: {}", status.trim()),
            });
        }
        Ok(())
    }
}

impl Pauser for MonitorPauser {
    fn pause(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.switch("stop", true))
    }

    fn resume(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.switch("cont", false))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncBufReadExt;

    /// A monitor that speaks like QEMU's: banner and prompt, then a prompt after each line,
    /// keeping a paused flag for `stop`/`cont`. Records the commands it got.
    fn fake_monitor(path: &std::path::Path) -> Arc<Mutex<Vec<String>>> {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let paused = Arc::new(Mutex::new(false));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (r, mut w) = s.into_split();
                let (log, paused) = (log.clone(), paused.clone());
                tokio::spawn(async move {
                    w.write_all(
                        b"QEMU 10.0.2 monitor - type 'help' for more information\r\n(qemu) ",
                    )
                    .await
                    .unwrap();
                    let mut lines = tokio::io::BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        log.lock().unwrap().push(line.clone());
                        let answer = match line.as_str() {
                            "stop" => {
                                *paused.lock().unwrap() = true;
                                String::new()
                            }
                            "cont" => {
                                *paused.lock().unwrap() = false;
                                String::new()
                            }
                            "info status" if *paused.lock().unwrap() => {
                                "VM status: paused\r\n".into()
                            }
                            "info status" => "VM status: running\r\n".into(),
                            _ => format!("unknown command: '{line}'\r\n"),
                        };
                        w.write_all(format!("{line}\r\n{answer}(qemu) ").as_bytes())
                            .await
                            .unwrap();
                    }
                });
            }
        });
        seen
    }

    #[tokio::test]
    async fn pause_and_resume_are_checked_with_info_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mon.sock");
        let seen = fake_monitor(&path);
        let p = MonitorPauser {
            at: Endpoint::Unix(path.clone()),
        };
        p.pause().await.unwrap();
        let status = command(&p.at, "info status").await.unwrap();
        assert!(says_paused(&status), "{status}");
        p.resume().await.unwrap();
        assert!(!says_paused(&command(&p.at, "info status").await.unwrap()));
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "stop",
                "info status",
                "info status",
                "cont",
                "info status",
                "info status"
            ]
        );
    }

    #[tokio::test]
    async fn a_closed_monitor_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mon.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            drop(s);
        });
        let err = command(&Endpoint::Unix(path), "stop").await.unwrap_err();
        assert!(matches!(err, HostError::Io { .. }), "{err:?}");
    }
}
