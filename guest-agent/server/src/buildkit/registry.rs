//! The live sessions and builds of one server, looked up by id. A build's `Control.Solve`,
//! its `Status` stream, its gateway calls and its session arrive on different streams in any
//! order, so lookups wait (bounded) for the other side to show up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::frontend::Result as GatewayResult;
use tokio::sync::{oneshot, Notify};

use super::session::SessionClient;
use super::status::StatusHub;

/// How long a gateway call or a solve waits for its session or its build to appear.
pub(crate) const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a finished build stays for late `Status` readers.
const FINISHED_GRACE: Duration = Duration::from_secs(60);

/// What `Control.Solve` told about a build.
#[derive(Debug, Clone, Default)]
pub(crate) struct SolveInfo {
    pub session: String,
}

/// What the gateway's `Return` hands to the waiting `Control.Solve`.
pub(crate) type Returned = Result<Option<GatewayResult>, tonic::Status>;

/// One build (a `Control.Solve` ref).
pub(crate) struct BuildEntry {
    pub status: StatusHub,
    info: Mutex<Option<SolveInfo>>,
    info_set: Notify,
    /// The gateway's result travels in a channel made up front: `Return` may come before
    /// `Control.Solve` waits (buildx's capability probe returns at once).
    return_tx: Mutex<Option<oneshot::Sender<Returned>>>,
    return_rx: Mutex<Option<oneshot::Receiver<Returned>>>,
}

impl Default for BuildEntry {
    fn default() -> Self {
        let (tx, rx) = oneshot::channel();
        Self {
            status: StatusHub::default(),
            info: Mutex::new(None),
            info_set: Notify::new(),
            return_tx: Mutex::new(Some(tx)),
            return_rx: Mutex::new(Some(rx)),
        }
    }
}

impl BuildEntry {
    pub(crate) fn set_info(&self, info: SolveInfo) {
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = Some(info);
        self.info_set.notify_waiters();
    }

    /// The solve's details, once `Control.Solve` has arrived.
    pub(crate) async fn info(&self) -> Result<SolveInfo, tonic::Status> {
        let wait = async {
            loop {
                let notified = self.info_set.notified();
                if let Some(i) = self.info.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    return i;
                }
                notified.await;
            }
        };
        tokio::time::timeout(ARRIVAL_TIMEOUT, wait)
            .await
            .map_err(|_| tonic::Status::not_found("no solve for this build ref"))
    }

    /// The gateway's result, for the one `Control.Solve` that waits for it.
    pub(crate) fn expect_return(&self) -> Result<oneshot::Receiver<Returned>, tonic::Status> {
        self.return_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| tonic::Status::already_exists("this build ref is already solving"))
    }

    /// The gateway's `Return`; false when it was delivered before or nobody can wait any more.
    pub(crate) fn deliver(&self, r: Returned) -> bool {
        match self
            .return_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(tx) => tx.send(r).is_ok(),
            None => false,
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<String, SessionClient>>,
    sessions_changed: Notify,
    builds: Mutex<HashMap<String, Arc<BuildEntry>>>,
}

impl Registry {
    pub(crate) fn add_session(&self, id: &str, client: SessionClient) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), client);
        self.sessions_changed.notify_waiters();
    }

    pub(crate) fn remove_session(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The session `id`, waiting for its `/session` connection if it is not there yet.
    pub(crate) async fn session(&self, id: &str) -> Result<SessionClient, tonic::Status> {
        let wait = async {
            loop {
                let notified = self.sessions_changed.notified();
                if let Some(s) = self
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(id)
                    .cloned()
                {
                    return s;
                }
                notified.await;
            }
        };
        tokio::time::timeout(ARRIVAL_TIMEOUT, wait)
            .await
            .map_err(|_| tonic::Status::unavailable(format!("no active session for {id}")))
    }

    /// The build `r`, made on first mention.
    pub(crate) fn build(&self, r: &str) -> Arc<BuildEntry> {
        self.builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(r.to_string())
            .or_default()
            .clone()
    }

    /// Ends a build's status stream and forgets it after a grace period.
    pub(crate) fn finish(self: &Arc<Self>, r: &str) {
        self.build(r).status.close();
        let me = self.clone();
        let r = r.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(FINISHED_GRACE).await;
            me.builds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&r);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_return_before_the_solve_waits_is_kept() {
        let reg = Arc::new(Registry::default());
        assert!(reg.build("r").deliver(Ok(None)));
        let rx = reg.build("r").expect_return().unwrap();
        assert!(matches!(rx.await, Ok(Ok(None))));
        assert!(reg.build("r").expect_return().is_err(), "one solve per ref");
    }

    #[tokio::test]
    async fn solve_info_reaches_a_gateway_call_that_came_first() {
        let reg = Arc::new(Registry::default());
        let entry = reg.build("r");
        let waiter = tokio::spawn(async move { entry.info().await });
        reg.build("r").set_info(SolveInfo {
            session: "s1".into(),
        });
        assert_eq!(waiter.await.unwrap().unwrap().session, "s1");
    }
}
