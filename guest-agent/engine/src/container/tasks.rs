//! The background work of containers (exit monitors, the network detach after an exit,
//! restart timers, AutoRemove, health checks, revivals at engine start), owned instead of
//! detached: every task is tracked by the service and ends when its container's token (a
//! child of the service's) is cancelled, so [`Tasks::shutdown`] ends and awaits them all.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tracker and cancellation of the container service's tasks.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Tasks {
    /// A token for one container's tasks, cancelled with the service's.
    pub(crate) fn child_token(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// Runs `task` until it ends or the service shuts down.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_until(&self.cancel, task)
    }

    /// Runs `task` until it ends or `token` (a container's) is cancelled.
    pub(crate) fn spawn_until<F>(
        &self,
        token: &CancellationToken,
        task: F,
    ) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let token = token.clone();
        self.tracker
            .spawn(async move { token.run_until_cancelled(task).await })
    }

    /// How many tasks are running.
    pub(crate) fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Cancels every task and waits at most `bound` for them to end; false if some did not.
    pub(crate) async fn shutdown(&self, bound: Duration) -> bool {
        self.tracker.close();
        self.cancel.cancel();
        tokio::time::timeout(bound, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Counts its drops: a cancelled task's future is dropped.
    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn shutdown_cancels_and_awaits_every_task() {
        let tasks = Tasks::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        let container = tasks.child_token();
        for i in 0..4 {
            let guard = Dropped(dropped.clone());
            let forever = async move {
                let _g = guard;
                std::future::pending::<()>().await
            };
            if i % 2 == 0 {
                tasks.spawn(forever);
            } else {
                tasks.spawn_until(&container, forever);
            }
        }
        assert_eq!(tasks.len(), 4);
        assert!(tasks.shutdown(Duration::from_secs(10)).await);
        assert_eq!(tasks.len(), 0);
        assert_eq!(dropped.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_container_token_ends_only_its_tasks() {
        let tasks = Tasks::default();
        let (a, b) = (tasks.child_token(), tasks.child_token());
        let ha = tasks.spawn_until(&a, std::future::pending::<()>());
        let hb = tasks.spawn_until(&b, std::future::pending::<()>());
        a.cancel();
        assert_eq!(ha.await.unwrap(), None, "cancelled task yields None");
        assert!(!hb.is_finished());
        let done = tasks.spawn_until(&b, async { 7 });
        assert_eq!(done.await.unwrap(), Some(7));
        assert!(tasks.shutdown(Duration::from_secs(10)).await);
        assert_eq!(hb.await.unwrap(), None);
    }
}
