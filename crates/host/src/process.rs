//! Child processes of the supervisor (QEMU, helper daemons): output to a log file, a pid file,
//! death with the parent (PR_SET_PDEATHSIG, Linux only), stop by PID with a grace period.
//! Process signalling by PID is per platform ([`sys`]): signals on unix, process handles on
//! Windows.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

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
        #[cfg(target_os = "linux")]
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

    /// Asks it to stop (SIGTERM; on Windows, which has no such request, it is killed), then
    /// kills it after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            let _ = sys::terminate(pid);
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
pub fn live_pid(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid > 0 && sys::alive(pid)).then_some(pid)
}

/// Asks `pid` to stop in order (SIGTERM on unix; on Windows see [`crate::shutdown`], this kills).
pub fn terminate(pid: u32) -> std::io::Result<()> {
    sys::terminate(pid)
}

/// Kills `pid` at once.
pub fn kill(pid: u32) -> std::io::Result<()> {
    sys::kill(pid)
}

/// Polls until `pid` has exited or `timeout` passes; true if it exited.
pub async fn wait_pid_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if !sys::alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[cfg(unix)]
mod sys {
    use nix::sys::signal::{kill as send, Signal};
    use nix::unistd::Pid;

    fn pid_t(pid: u32) -> std::io::Result<Pid> {
        i32::try_from(pid)
            .map(Pid::from_raw)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid out of range"))
    }

    pub(super) fn alive(pid: u32) -> bool {
        pid_t(pid).is_ok_and(|p| send(p, None).is_ok())
    }

    pub(super) fn terminate(pid: u32) -> std::io::Result<()> {
        Ok(send(pid_t(pid)?, Signal::SIGTERM)?)
    }

    pub(super) fn kill(pid: u32) -> std::io::Result<()> {
        Ok(send(pid_t(pid)?, Signal::SIGKILL)?)
    }
}

#[cfg(windows)]
mod sys {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_TIMEOUT};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, TerminateProcess, WaitForSingleObject, PROCESS_QUERY_LIMITED_INFORMATION,
        PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
    };

    /// An open process handle, closed on drop.
    struct Process(HANDLE);

    impl Process {
        fn open(pid: u32, access: u32) -> std::io::Result<Self> {
            // SAFETY: OpenProcess takes plain values; a null result is an error, not UB.
            let h = unsafe { OpenProcess(access, 0, pid) };
            if h.is_null() {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(Self(h))
            }
        }
    }

    impl Drop for Process {
        fn drop(&mut self) {
            // SAFETY: the handle is ours and still open.
            unsafe { CloseHandle(self.0) };
        }
    }

    pub(super) fn alive(pid: u32) -> bool {
        let Ok(p) = Process::open(pid, PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION)
        else {
            return false;
        };
        // SAFETY: a valid handle with SYNCHRONIZE access; zero timeout only polls.
        unsafe { WaitForSingleObject(p.0, 0) == WAIT_TIMEOUT }
    }

    pub(super) fn terminate(pid: u32) -> std::io::Result<()> {
        kill(pid)
    }

    pub(super) fn kill(pid: u32) -> std::io::Result<()> {
        let p = Process::open(pid, PROCESS_TERMINATE)?;
        // SAFETY: a valid handle with TERMINATE access.
        if unsafe { TerminateProcess(p.0, 1) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Whether process `pid` is stopped (state `T` in `/proc/<pid>/stat`).
#[cfg(target_os = "linux")]
pub fn is_stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_is_seen_alive_then_gone_after_kill() {
        let d = tempfile::tempdir().unwrap();
        // This test binary again, running only the ignored `sleeper` below.
        let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "process::tests::sleeper", "--ignored"]);
        let pid_file = d.path().join("c.pid");
        let mut child = Child::spawn("sleeper", cmd, &d.path().join("c.log"), &pid_file).unwrap();
        let pid = live_pid(&pid_file).expect("alive after spawn");
        kill(pid).unwrap();
        // Waiting reaps it (a unix zombie still answers signal 0).
        let (_, gone) = tokio::join!(child.wait(), wait_pid_gone(pid, Duration::from_secs(20)));
        assert!(gone);
        assert_eq!(live_pid(&pid_file), None);
    }

    /// Sleeps long; started as a child by the test above (ignored when run directly).
    #[test]
    #[ignore]
    fn sleeper() {
        std::thread::sleep(Duration::from_secs(120));
    }
}
