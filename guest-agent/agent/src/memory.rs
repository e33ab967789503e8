//! Keeping the daemon's resident memory small: fewer malloc arenas, and freed heap handed back
//! to the kernel after bursts of work (pulls, loads, removals) instead of staying resident.

use std::time::Duration;

use berth_engine::EventBus;
use tokio_util::sync::CancellationToken;

/// Actions after which much memory has just been freed.
const HEAVY: &[(&str, &str)] = &[
    ("image", "pull"),
    ("image", "load"),
    ("image", "push"),
    ("image", "save"),
    ("image", "delete"),
    ("container", "destroy"),
];

/// Caps glibc's malloc arenas: each worker thread otherwise keeps its own, and their free
/// lists stay resident.
pub(crate) fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims the heap a moment after heavy operations, at most once per burst.
pub(crate) fn spawn_trimmer(
    events: &EventBus,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (_, mut rx) = events.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = rx.recv() => ev,
            };
            match ev {
                Ok(ev) if HEAVY.contains(&(ev.typ.as_str(), ev.action.as_str())) => {
                    // Let the burst finish (and its buffers drop) before trimming.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    while let Ok(_more) = rx.try_recv() {}
                    tokio::task::spawn_blocking(trim);
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}
