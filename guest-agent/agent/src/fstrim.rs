//! Giving disk space back: in the VM the data disk passes discard through to the host's qcow2
//! (QEMU `discard=unmap`), so trimming the data filesystem's free blocks shrinks the file on the
//! host. The agent trims (the `FITRIM` ioctl, what `fstrim` does) a moment after space was
//! freed (image, container or volume removed) and once an hour; a host `trim` request (`berth
//! disk compact`) trims at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_engine::EventBus;
use tokio_util::sync::CancellationToken;

/// Actions that free disk space.
const FREEING: &[(&str, &str)] = &[
    ("image", "delete"),
    ("container", "destroy"),
    ("volume", "destroy"),
];

/// Wait after a removal, so a burst (`docker system prune`) is one trim.
const SETTLE: Duration = Duration::from_secs(2);
/// Trim this often even without removals (space freed inside containers).
const PERIOD: Duration = Duration::from_secs(3600);

#[repr(C)]
#[derive(Debug, Default)]
struct FstrimRange {
    start: u64,
    len: u64,
    minlen: u64,
}

nix::ioctl_readwrite!(fitrim, b'X', 121, FstrimRange);

/// Commits the filesystem of `path` (blocks freed by a removal become free in the committed
/// bitmaps, which is what FITRIM walks), then trims it; returns the bytes trimmed.
pub(crate) fn trim(path: &Path) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path)?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut range = FstrimRange {
        start: 0,
        len: u64::MAX,
        minlen: 0,
    };
    // SAFETY: FITRIM reads and writes one fstrim_range, which `range` is.
    unsafe { fitrim(dir.as_raw_fd(), &mut range) }.map_err(std::io::Error::from)?;
    Ok(range.len)
}

/// Trims `data_root` after removals and every [`PERIOD`].
pub(crate) fn spawn(
    data_root: PathBuf,
    events: &EventBus,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (_, mut rx) = events.subscribe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let why = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => "periodic",
                ev = rx.recv() => match ev {
                    Ok(ev) if FREEING.contains(&(ev.typ.as_str(), ev.action.as_str())) => {
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(SETTLE) => {}
                        }
                        while rx.try_recv().is_ok() {}
                        "after a removal"
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            let root = data_root.clone();
            match tokio::task::spawn_blocking(move || trim(&root)).await {
                Ok(Ok(bytes)) => tracing::info!(bytes, why, "fstrim: data disk trimmed"),
                Ok(Err(e)) => tracing::warn!(error = %e, why, "fstrim failed"),
                Err(e) => tracing::warn!(error = %e, "fstrim task failed"),
            }
        }
    })
}
