//! Orderly power-off: stop the engine, then every other process, sync, unmount the data disk,
//! `reboot(RB_POWER_OFF)`. QEMU started with `-no-reboot` then exits.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::disk::DATA_ROOT;

/// How long the engine gets to stop after SIGTERM.
const ENGINE_GRACE: Duration = Duration::from_secs(10);
/// How long the remaining processes get after SIGTERM before SIGKILL.
const OTHERS_GRACE: Duration = Duration::from_secs(2);

/// Stops everything and powers off; never returns.
pub(crate) fn shutdown(engine: Option<Pid>) -> ! {
    tracing::info!("shutting down");
    if let Some(pid) = engine {
        if kill(pid, Signal::SIGTERM).is_ok() && !wait_for(Some(pid), ENGINE_GRACE) {
            tracing::warn!(
                "engine did not stop in {} s; killing it",
                ENGINE_GRACE.as_secs()
            );
        }
    }
    // Everything else: shims, containers, a debug shell.
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    if !wait_for(None, OTHERS_GRACE) {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        wait_for(None, OTHERS_GRACE);
    }
    nix::unistd::sync();
    match umount2(DATA_ROOT, MntFlags::empty()) {
        Ok(()) => tracing::info!("data disk unmounted"),
        Err(Errno::EINVAL) => {}
        Err(e) => {
            tracing::warn!("cannot unmount {DATA_ROOT}: {e}; detaching it");
            let _ = umount2(DATA_ROOT, MntFlags::MNT_DETACH);
        }
    }
    power_off()
}

/// Syncs and powers off at once (also the path of a fatal boot error).
pub(crate) fn power_off() -> ! {
    nix::unistd::sync();
    tracing::info!("powering off");
    let err = match reboot(RebootMode::RB_POWER_OFF) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // PID 1 must not exit (the kernel would panic); nothing else is left to do.
    tracing::error!("power off failed: {err}");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Reaps children until `pid` (or, with `None`, every child) is gone or `limit` passes.
/// Returns whether it is gone.
fn wait_for(pid: Option<Pid>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return true,
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(status) => {
                if pid.is_some() && status.pid() == pid {
                    return true;
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
