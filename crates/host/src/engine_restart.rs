//! Restarting the guest's engine without rebooting the VM (`berth restart --engine`, the
//! app's Troubleshoot view). The guest's PID 1 supervises the engine: on the control request
//! `restart_engine` (which carries the host's current `daemon.json`), the engine replies, stops
//! (SIGTERM path: running containers keep running under their monitors) and exits with the
//! code PID 1 answers by starting it again at once; the new engine re-attaches the containers
//! and the supervisor reconnects its control channel. The VM, its uptime, its mounts and its
//! data disk are untouched.
//!
//! Done when the guest reports a different engine pid in good health and the Docker API
//! answers on the forwarded socket.

use std::time::{Duration, Instant};

use berth_agent_proto::{Reply, Request};

use crate::control::one_request;
use crate::error::{HostError, Result};
use crate::StateDir;

/// What [`restart`] saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Restarted {
    /// The engine's pid before and after (absent from an agent that does not report it).
    pub old_pid: Option<u32>,
    pub new_pid: u32,
    /// From the request to the Docker API answering again.
    pub took: Duration,
}

/// The engine's pid as the guest reports it now.
async fn engine_pid(connector: &dyn berth_vsock::Connector) -> Result<Option<u32>> {
    match one_request(connector, Request::Health, Duration::from_secs(10)).await? {
        Reply::Health { engine_pid, .. } => Ok(engine_pid),
        other => Err(HostError::Control(format!(
            "unexpected reply to health: {other:?}"
        ))),
    }
}

/// Restarts the running VM's engine and waits (up to `timeout`) for the new one.
#[tracing::instrument(skip(state), fields(state = %state.root().display()))]
pub async fn restart(state: &StateDir, timeout: Duration) -> Result<Restarted> {
    crate::idle::wake(state).await;
    let connector = crate::control::side_connector(state)?;
    let old_pid = engine_pid(connector.as_ref()).await?;
    let daemon_json = crate::daemon_json::guest_text(state)?;
    let started = Instant::now();
    match one_request(
        connector.as_ref(),
        Request::RestartEngine { daemon_json },
        crate::control::REQUEST_TIMEOUT,
    )
    .await?
    {
        Reply::Ok => {}
        other => {
            return Err(HostError::Control(format!(
                "unexpected reply to restart_engine: {other:?}"
            )))
        }
    }
    tracing::info!(?old_pid, "engine restart requested");
    let deadline = tokio::time::Instant::now() + timeout;
    let new_pid = loop {
        // The old engine may still answer for a moment, and none answers while the new one
        // starts: only another pid in good health counts.
        let seen = one_request(connector.as_ref(), Request::Health, Duration::from_secs(5)).await;
        if let Ok(Reply::Health {
            engine_ready: true,
            engine_pid: Some(pid),
            ..
        }) = seen
        {
            if Some(pid) != old_pid {
                break pid;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HostError::Timeout {
                what: "the restarted engine".into(),
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let endpoint = state.docker_endpoint();
    while crate::api::get(&endpoint, "/_ping").await.is_err() {
        if tokio::time::Instant::now() >= deadline {
            return Err(HostError::Timeout {
                what: format!("the Docker API at {endpoint}"),
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    tracing::info!(
        ?old_pid,
        new_pid,
        secs = took.as_secs_f64(),
        "engine restarted"
    );
    Ok(Restarted {
        old_pid,
        new_pid,
        took,
    })
}
