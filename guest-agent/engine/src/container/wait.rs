//! `docker wait`.

use super::{Status, Svc};
use crate::Result;

/// `docker wait` conditions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl Svc {
    /// Registers a waiter; the returned future resolves with the exit code once `cond` holds.
    pub fn wait(
        &self,
        key: &str,
        cond: WaitCondition,
    ) -> Result<impl std::future::Future<Output = i64> + Send + 'static> {
        let c = self.get(key)?;
        let mut rx = c.subscribe();
        let start = *rx.borrow();
        Ok(async move {
            let done = |s: &Status| match cond {
                WaitCondition::NotRunning => !s.running,
                WaitCondition::NextExit => s.exits > start.exits,
                WaitCondition::Removed => s.removed,
            };
            let r = rx.wait_for(done).await.map(|s| s.exit_code);
            match r {
                Ok(code) => code,
                // The container was dropped: it has been removed.
                Err(_) => start.exit_code,
            }
        })
    }
}
