//! The container's stdio, prepared before the runtime runs: pipes, or for a TTY container the
//! console socket the runtime sends the pty master on.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::ShimResult;
use crate::shim::ShimConfig;

/// Our ends of the container's stdio, and the ends (or the console socket) handed to the
/// runtime.
pub(super) struct Io {
    pub(super) stdin: Option<File>,
    pub(super) outputs: Vec<(u8, File)>,
    pub(super) child_stdio: Option<ChildStdio>,
    pub(super) console: Option<UnixListener>,
}

/// The runtime's (and so the container's) ends of the pipes.
pub(super) struct ChildStdio {
    pub(super) stdin: Option<OwnedFd>,
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
}

impl Io {
    /// Pipes for stdout, stderr and (with `OpenStdin`) stdin; for a TTY the bound console
    /// socket instead.
    pub(super) fn prepare(cfg: &ShimConfig) -> ShimResult<Io> {
        Ok(if cfg.tty {
            let con = console_path(&cfg.socket);
            let _ = std::fs::remove_file(&con);
            let con_listener =
                UnixListener::bind(&con).map_err(|e| format!("bind {}: {e}", con.display()))?;
            Io {
                stdin: None,
                outputs: vec![],
                child_stdio: None,
                console: Some(con_listener),
            }
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let (stdin, child_in) = if cfg.open_stdin {
                let (in_r, in_w) = pipe()?;
                (Some(File::from(in_w)), Some(in_r))
            } else {
                (None, None)
            };
            Io {
                stdin,
                outputs: vec![(1, File::from(out_r)), (2, File::from(err_r))],
                child_stdio: Some(ChildStdio {
                    stdin: child_in,
                    stdout: out_w,
                    stderr: err_w,
                }),
                console: None,
            }
        })
    }
}

/// Where the runtime connects to send a TTY container's pty master.
pub(super) fn console_path(socket: &Path) -> PathBuf {
    socket.with_extension("con")
}

fn pipe() -> ShimResult<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}
