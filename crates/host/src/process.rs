//! Child processes of the supervisor (QEMU, helper daemons): output to a log file, a pid file,
//! death with the parent (PR_SET_PDEATHSIG), stop by PID with a grace period.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{HostError, Result};

/// A running child we own; dropping it kills it.
pub struct Child {
    name: String,
    child: tokio::process::Child,
    pid_file: PathBuf,
}

impl Child {
    /// Spawns `cmd` with stdout and stderr appended to `log`, recording its PID in `pid_file`.
    pub fn spawn(
        name: &str,
        mut cmd: tokio::process::Command,
        log: &Path,
        pid_file: &Path,
    ) -> Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(HostError::io(log))?;
        let err = out.try_clone().map_err(HostError::io(log))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| HostError::Spawn {
            program: name.to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        std::fs::write(pid_file, format!("{pid}\n")).map_err(HostError::io(pid_file))?;
        tracing::debug!(name, pid, "started");
        Ok(Self {
            name: name.to_string(),
            child,
            pid_file: pid_file.to_path_buf(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the child to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Whether it has exited, without waiting.
    pub fn try_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                tracing::warn!(name = self.name, pid, "did not stop in time; killing");
                let _ = self.child.kill().await;
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// The PID recorded in `pid_file`, if that process is alive.
pub fn live_pid(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid > 0 && kill(Pid::from_raw(pid), None).is_ok()).then_some(pid)
}

/// Polls until `pid` has exited or `timeout` passes; true if it exited.
pub async fn wait_pid_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if kill(Pid::from_raw(pid), None).is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
