//! The guest end of the host<->guest control protocol (`berth_agent_proto`): one long-lived
//! connection from the host on CONTROL_PORT carrying hello, health, shutdown, time sync, share
//! mounts and file events; the agent pushes published-port changes on it.
//!
//! Also serves the port-forward tunnels on FORWARD_PORT: each multiplexed stream names a
//! published port and is spliced to it; in a VM, takes the 9P connections of shared folders
//! on SHARE_PORT (`ninep`).

mod files;
mod forward;
mod ninep;
mod ports;
mod server;
mod system;

use std::sync::Arc;

use axum::Router;
use berth_engine::EventBus;
use tokio_util::sync::CancellationToken;

use crate::listen::{Endpoint, Listeners};
pub(crate) use ports::PortTracker;
use server::ControlCtx;
pub(crate) use server::EngineRestart;

/// What the control endpoint needs of the engine it serves beside.
pub(crate) struct EngineFacts {
    /// The engine's data root (disk usage, trims).
    pub(crate) data_root: std::path::PathBuf,
    /// How a `restart_engine` request reaches PID 1; `None` when no init supervises the engine.
    pub(crate) restart: Option<EngineRestart>,
}

/// Starts the control and forward endpoints on `listeners`. Returns the token a host `shutdown`
/// request fires.
pub(crate) fn start(
    control: &Endpoint,
    forward: &Endpoint,
    app: Router,
    events: &EventBus,
    listeners: &mut Listeners,
    cancel: CancellationToken,
    engine: EngineFacts,
) -> anyhow::Result<CancellationToken> {
    let EngineFacts { data_root, restart } = engine;
    let tracker = PortTracker::start(app, events);
    let share_streams = ninep::ShareStreams::default();
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(ControlCtx {
        tracker: tracker.clone(),
        share_streams: share_streams.clone(),
        started: std::time::Instant::now(),
        shutdown: shutdown.clone(),
        data_root,
        restart,
    });
    let acc = control.bind()?;
    listeners.add(control, acc, cancel.clone(), move |io| {
        server::serve_control(io, ctx.clone())
    });
    if matches!(forward, Endpoint::Vsock(_)) {
        ninep::listen(share_streams);
    }
    let acc = forward.bind()?;
    listeners.add(forward, acc, cancel, move |io| {
        forward::serve_forward(io, tracker.clone())
    });
    Ok(shutdown)
}

/// After a host `shutdown` request: in the VM, PID 1 (`berth-agent init`) does the orderly
/// power-off, so it is asked with SIGTERM; elsewhere the agent just exits.
pub(crate) fn request_power_off(in_vm: bool) {
    if in_vm && under_init() {
        tracing::info!("asking init to power off");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(1),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Whether this agent is the engine a VM's PID 1 (`berth-agent init`) supervises.
pub(crate) fn under_init() -> bool {
    nix::unistd::getppid() == nix::unistd::Pid::from_raw(1)
}
