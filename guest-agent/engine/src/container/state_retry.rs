//! State changes that must stand even when `state.json` cannot be written (a full data disk):
//! a container's exit, its start once the process runs, a failed start. The change is made in
//! memory, where clients read and wait on it, and the write is tried again in the background
//! until it lands, the container is removed or the engine stops.
//!
//! Crash safety stays that of `state.json`: until the write lands, a restarted engine sees the
//! previous state and settles it the way `restore` does (an exit found when the monitor is
//! gone, a start adopted when the monitor still answers).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::record::{Paths, Stored};
use super::{Container, Svc};

/// The delay before the `attempt`th retry of a state write: 100 ms doubling, at most 2 s, so
/// the state lands within about 2 s of space returning.
pub(super) fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(100 << attempt.min(5)).min(Duration::from_secs(2))
}

impl Svc {
    /// Applies `change` to `c`'s state and writes it; a failed write is logged with its cause
    /// and retried in the background ([`Svc::retry_state_write`]), the change standing in
    /// memory meanwhile. `what` names the change for the log (`"exit"`, `"start"`…).
    pub(super) fn record_state<T>(
        self: &Arc<Self>,
        c: &Arc<Container>,
        paths: &Paths,
        what: &'static str,
        change: impl FnOnce(&mut Stored) -> T,
    ) -> T {
        let mut stored = c.stored.lock().unwrap_or_else(|e| e.into_inner());
        let out = change(&mut stored);
        if let Err(e) = stored.save_state(paths) {
            drop(stored);
            tracing::error!(
                id = %c.id,
                path = %paths.state().display(),
                error = %e.chain(),
                "cannot write the {what} of the container; kept in memory, retrying"
            );
            self.retry_state_write(c, paths, what);
        }
        out
    }

    /// Writes `c`'s current state again until a write succeeds, unless a retry is already
    /// under way. Holds the container's operation lock while writing, so a removal (which
    /// moves the container's directory away) is never followed by a write that recreates it.
    fn retry_state_write(self: &Arc<Self>, c: &Arc<Container>, paths: &Paths, what: &'static str) {
        if c.state_retry.swap(true, Ordering::AcqRel) {
            return;
        }
        let (c, paths) = (c.clone(), paths.clone());
        let token = c.tasks.clone();
        self.tasks.spawn_until(&token, async move {
            let mut attempt = 0;
            loop {
                tokio::time::sleep(retry_delay(attempt)).await;
                attempt += 1;
                let _op = c.op.lock().await;
                if c.status.borrow().removed {
                    return;
                }
                // Cleared before the write: a change that fails after it starts its own retry.
                c.state_retry.store(false, Ordering::Release);
                let written = c.update(&paths, |_| ());
                match written {
                    Ok(()) => {
                        tracing::info!(id = %c.id, attempt, "the {what} of the container is written");
                        return;
                    }
                    Err(e) if attempt == 1 || attempt % 30 == 0 => {
                        tracing::warn!(id = %c.id, attempt, error = %e.chain(), "state write still failing")
                    }
                    Err(_) => {}
                }
                if c.state_retry.swap(true, Ordering::AcqRel) {
                    return; // another retry took over
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_to_two_seconds() {
        assert_eq!(retry_delay(0), Duration::from_millis(100));
        assert_eq!(retry_delay(2), Duration::from_millis(400));
        assert_eq!(retry_delay(5), Duration::from_secs(2));
        assert_eq!(retry_delay(500), Duration::from_secs(2));
    }
}
