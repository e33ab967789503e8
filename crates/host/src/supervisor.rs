//! The supervisor: owns the helper daemons, the VM and the forwarders; restarts a VM that
//! died (bounded); on stop shuts the guest down in order. `berth start` runs it as a daemon.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_agent_proto::{Request, DOCKER_API_PORT, FORWARD_PORT};
use berth_vsock::mux::MuxClient;
use berth_vsock::Connector;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::boot::{early_exit_cause, Phase, Phases};
use crate::control::{wait_for_agent, ControlClient};
use crate::control_endpoint::Awake;
use crate::error::{HostError, Result};
use crate::forward::ports::PortForwarder;
use crate::idle::IdleGate;
use crate::process::Child;
use crate::vm::{Hypervisor, ShareDevice, Shares, VmHandle, VmSpec};
use crate::{forward, helpers, share, share_mount, Config, StateDir};

/// Bound on boot → agent answering (TCG on a loaded 2-core machine is slow).
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(240);
/// How long an orderly guest shutdown may take before QEMU is killed.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// What `run/status.json` says; written by the supervisor at each state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: VmState,
    pub vm_pid: Option<u32>,
    pub restarts: u32,
    pub docker_socket: PathBuf,
    pub message: Option<String>,
    /// Shared folders mounted in the running VM.
    #[serde(default)]
    pub shares: Vec<PathBuf>,
    /// The last boot's phases so far (`berth start -v`).
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// How the VM runs: `kvm`, or `tcg` with the reason KVM is not used.
    #[serde(default)]
    pub accel: Option<String>,
    /// A running VM's CPUs are paused because it was idle ([`crate::idle`]); the next client
    /// resumes it.
    #[serde(default)]
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    Starting,
    Running,
    Restarting,
    Stopping,
    Stopped,
    Failed,
}

impl Status {
    pub fn read(state: &StateDir) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(status_file(state)).ok()?).ok()
    }
}

fn status_file(state: &StateDir) -> PathBuf {
    state.run_dir().join("status.json")
}

fn write_status(state: &StateDir, s: &Status) {
    crate::state::write_json_atomic(&status_file(state), s);
}

/// Runs Berth's VM until `stop` fires or it fails for good.
pub async fn run(
    state: StateDir,
    config: Config,
    hv: Arc<dyn Hypervisor>,
    stop: CancellationToken,
) -> Result<()> {
    state.create()?;
    let mut status = Status {
        state: VmState::Starting,
        vm_pid: None,
        restarts: 0,
        docker_socket: state.docker_socket(),
        message: None,
        shares: vec![],
        phases: vec![],
        accel: None,
        paused: false,
    };
    write_status(&state, &status);
    let r = run_inner(&state, &config, hv, &stop, &mut status).await;
    status.vm_pid = None;
    match &r {
        Ok(()) => status.state = VmState::Stopped,
        Err(e) => {
            status.state = VmState::Failed;
            status.message = Some(error_chain(e));
        }
    }
    write_status(&state, &status);
    remove_sockets(&state);
    r
}

/// Removes the sockets (and virtiofsd's own pid files) of a stopped run.
fn remove_sockets(state: &StateDir) {
    let Ok(dir) = std::fs::read_dir(state.run_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sock") || name.ends_with(".sock.pid") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

async fn run_inner(
    state: &StateDir,
    config: &Config,
    hv: Arc<dyn Hypervisor>,
    stop: &CancellationToken,
    status: &mut Status,
) -> Result<()> {
    let data_disk = hv
        .prepare_data_disk(&state.data_disk(), config.disk_gib)
        .await?;
    let (connector, mut vsockd) = match hv.connector() {
        Some(c) => {
            serve_vsock_socket(state, c.clone(), stop);
            (c, None)
        }
        None => transport(state, config).await?,
    };
    let docker_mux = Arc::new(MuxClient::new(connector.clone(), DOCKER_API_PORT));
    let ports = Arc::new(
        PortForwarder::new(Arc::new(MuxClient::new(connector.clone(), FORWARD_PORT)))
            .with_record(state.ports_file())
            .localhost_only(config.ports_on_localhost),
    );
    let listener = crate::endpoint::Listener::bind(&state.docker_endpoint())?;
    let fwd_cancel = stop.child_token();
    let gate = IdleGate::new();
    tokio::spawn(forward::docker::serve(
        listener,
        docker_mux.clone(),
        gate.clone(),
        fwd_cancel.clone(),
    ));
    let guest = serve_control_endpoint(state, stop, &fwd_cancel);
    // Windows' "system socket": the standard pipe served too, when asked and free.
    #[cfg(windows)]
    if config.system_socket {
        let std_pipe =
            crate::endpoint::Endpoint::Pipe(config.system_socket_path.display().to_string());
        match crate::endpoint::Listener::bind(&std_pipe) {
            Ok(l) => {
                tokio::spawn(forward::docker::serve(
                    l,
                    docker_mux.clone(),
                    gate.clone(),
                    fwd_cancel.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(pipe = %std_pipe, error = %error_chain(&e), "standard pipe not served")
            }
        }
    }

    let result = loop {
        let mut boot = match Boot::start(state, config, hv.as_ref(), &data_disk).await {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        status.vm_pid = boot.vm.pid();
        status.accel = Some(boot.accel.clone());
        status.phases = boot.phases.list();
        write_status(state, status);
        let console = CancellationToken::new();
        boot.phases
            .follow_console(state.console_log(), console.clone());
        let _stop_following = console.drop_guard();
        let agent = tokio::select! {
            r = wait_for_agent(connector.as_ref(), AGENT_TIMEOUT) => Some(r),
            _ = boot.vm.wait() => None,
            _ = stop.cancelled() => {
                boot.vm.kill().await;
                break Ok(());
            }
        };
        let died_early = match agent {
            Some(Ok((control, events))) => {
                boot.phases.mark(crate::boot::AGENT_CONNECTED, None);
                guest.send_replace(Some(Arc::new(Awake {
                    guest: control.clone(),
                    gate: gate.clone(),
                })));
                let mut session = Session::begin(
                    config,
                    (hv.shares(), connector.as_ref()),
                    control,
                    events,
                    ports.clone(),
                )
                .await;
                boot.phases.mark(crate::boot::READY, None);
                status.state = VmState::Running;
                status.message = None;
                status.shares = session.shares.clone();
                status.phases = boot.phases.list();
                write_status(state, status);
                tracing::info!("engine ready");
                let mut idle = AutoPause::begin(config, &gate, boot.vm.as_ref(), &docker_mux).await;
                let vm_stopped = loop {
                    tokio::select! {
                        _ = boot.vm.wait() => break true,
                        _ = stop.cancelled() => break false,
                        Ok(()) = idle.paused.changed() => {
                            let paused = *idle.paused.borrow_and_update();
                            on_pause_change(state, status, &session.control, paused).await;
                        }
                        // The engine restarted in the running VM (`berth restart --engine`, or
                        // a crash PID 1 recovered from): connect to the new one.
                        _ = session.control.closed() => {
                            guest.send_replace(None);
                            tracing::warn!("the guest's engine closed the control connection; reconnecting");
                            let again = tokio::select! {
                                r = wait_for_agent(connector.as_ref(), AGENT_TIMEOUT) => r,
                                _ = boot.vm.wait() => break true,
                                _ = stop.cancelled() => break false,
                            };
                            match again {
                                Ok((control, events)) => {
                                    let shares = std::mem::take(&mut session.shares);
                                    session.end();
                                    ports.clear();
                                    session = Session::attach(config, control, events, ports.clone(), shares).await;
                                    guest.send_replace(Some(Arc::new(Awake {
                                        guest: session.control.clone(),
                                        gate: gate.clone(),
                                    })));
                                    tracing::info!("engine ready again");
                                }
                                Err(e) => {
                                    tracing::error!(error = %error_chain(&e), "the engine did not come back; restarting the VM");
                                    boot.vm.kill().await;
                                    break true;
                                }
                            }
                        }
                    }
                };
                idle.end(&gate).await;
                status.paused = false;
                guest.send_replace(None);
                if !vm_stopped {
                    status.state = VmState::Stopping;
                    write_status(state, status);
                    orderly_shutdown(&session.control, boot.vm.as_mut()).await;
                    session.end();
                    boot.stop_shares().await;
                    break Ok(());
                }
                session.end();
                false
            }
            Some(Err(e)) => {
                boot.vm.kill().await;
                status.phases = boot.phases.list();
                break Err(e);
            }
            None => {
                status.phases = boot.phases.list();
                // A cause QEMU names (disk locked, no KVM, no memory) will not go away by
                // booting again.
                let log = state.log_file("qemu");
                if let Some(cause) = early_exit_cause(&log, boot.qemu_log_from, &state.data_disk())
                {
                    boot.stop_shares().await;
                    break Err(HostError::VmFailed(cause));
                }
                true
            }
        };
        ports.clear();
        status.shares.clear();
        docker_mux.reset().await;
        boot.stop_shares().await;
        status.restarts += 1;
        tracing::warn!(
            restarts = status.restarts,
            early = died_early,
            "the VM stopped unexpectedly"
        );
        if status.restarts > config.max_restarts {
            break Err(HostError::Command {
                what: "the VM".into(),
                detail: format!(
                    "stopped {} times; see {}",
                    status.restarts,
                    state.console_log().display()
                ),
            });
        }
        status.state = VmState::Restarting;
        write_status(state, status);
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    fwd_cancel.cancel();
    ports.clear();
    if let Some(d) = vsockd.as_mut() {
        d.stop(Duration::from_secs(2)).await;
    }
    result
}

/// The auto-pause loop of one boot ([`crate::idle`]) and the paused flag it changes.
struct AutoPause {
    paused: tokio::sync::watch::Receiver<bool>,
    cancel: CancellationToken,
}

impl AutoPause {
    /// Gates the booted VM; pauses it after `auto_pause_secs` of quiet (0: never).
    async fn begin(
        config: &Config,
        gate: &Arc<IdleGate>,
        vm: &dyn VmHandle,
        docker_mux: &Arc<MuxClient>,
    ) -> Self {
        let cancel = CancellationToken::new();
        let pauser = vm.pauser().filter(|_| config.auto_pause_secs > 0);
        if pauser.is_some() {
            let mux = docker_mux.clone();
            tokio::spawn(gate.clone().run(
                Duration::from_secs(config.auto_pause_secs),
                move || guest_busy(mux.clone()),
                cancel.clone(),
            ));
        }
        gate.attach(pauser).await;
        Self {
            paused: gate.paused(),
            cancel,
        }
    }

    /// The VM is stopping or stopped: no more pausing, and resumed if it was paused.
    async fn end(self, gate: &IdleGate) {
        self.cancel.cancel();
        gate.detach().await;
    }
}

/// Whether the guest has work that must keep running: any container running (or the engine
/// not answering, which is no reason to pause).
fn guest_busy(mux: Arc<MuxClient>) -> futures::future::BoxFuture<'static, bool> {
    Box::pin(async move {
        let Ok(stream) = mux.open().await else {
            return true;
        };
        match crate::api::get_on(stream, "/containers/json").await {
            Ok(body) => serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&body)
                .map_or(true, |running| !running.is_empty()),
            Err(_) => true,
        }
    })
}

/// Records a pause or resume in the status; after a resume the guest's clock, stopped with
/// its CPUs, is set again from the host's.
async fn on_pause_change(
    state: &StateDir,
    status: &mut Status,
    control: &ControlClient,
    paused: bool,
) {
    status.paused = paused;
    write_status(state, status);
    if !paused {
        sync_guest_clock(control).await;
    }
}

/// Sets the guest's clock from the host's.
async fn sync_guest_clock(control: &ControlClient) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    if let Err(e) = control
        .request(Request::TimeSync { unix_nanos: nanos })
        .await
    {
        tracing::warn!(error = %e, "time sync failed");
    }
}

/// Serves the control endpoint ([`crate::control_endpoint`]) for other processes; returns the
/// sender through which the loop tells it which guest connection to relay to. Not fatal when it
/// cannot be bound: the engine still runs, and `berth stop` falls back to ending the process.
fn serve_control_endpoint(
    state: &StateDir,
    stop: &CancellationToken,
    cancel: &CancellationToken,
) -> tokio::sync::watch::Sender<Option<Arc<dyn crate::control_endpoint::Guest>>> {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let endpoint = state.control_endpoint();
    match crate::endpoint::Listener::bind(&endpoint) {
        Ok(l) => {
            tokio::spawn(crate::control_endpoint::serve(
                l,
                rx,
                stop.clone(),
                cancel.clone(),
            ));
        }
        Err(e) => {
            tracing::warn!(%endpoint, error = %error_chain(&e), "control endpoint not served")
        }
    }
    tx
}

/// How the host reaches the guest's ports, and the daemon that carries them if any: on unix
/// vhost-device-vsock's hybrid vsock socket (it outlives VM reboots, so it starts once), or
/// with `"guest_ports": "virtio-serial"` the unix sockets QEMU serves for its virtio-serial
/// ports (the Windows transport, no daemon).
#[cfg(unix)]
async fn transport(
    state: &StateDir,
    config: &Config,
) -> Result<(Arc<dyn Connector>, Option<Child>)> {
    if let Some(ends) = crate::vm::qemu::serial_host_ends(state, config) {
        return Ok((Arc::new(crate::vm::serial::SerialPorts::new(&ends)), None));
    }
    let vsockd = helpers::start_vsock_daemon(state, &config.tools_dir).await?;
    let connector = Arc::new(berth_vsock::HybridConnector::new(state.vsock_socket()));
    Ok((connector, Some(vsockd)))
}

/// A back-end that carries the guest's ports in-process (macOS) serves them to other processes
/// (the CLI's one-off control requests) on the socket where vhost-device-vsock would be.
#[cfg(unix)]
fn serve_vsock_socket(state: &StateDir, connector: Arc<dyn Connector>, stop: &CancellationToken) {
    let path = state.vsock_socket();
    let _ = std::fs::remove_file(&path);
    match tokio::net::UnixListener::bind(&path) {
        Ok(l) => {
            tokio::spawn(berth_vsock::serve_hybrid(l, connector, stop.child_token()));
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "guest ports not served to other processes")
        }
    }
}

#[cfg(windows)]
fn serve_vsock_socket(
    _state: &StateDir,
    _connector: Arc<dyn Connector>,
    _stop: &CancellationToken,
) {
}

/// On Windows QEMU's virtio-serial ports are named pipes that QEMU itself serves.
#[cfg(windows)]
async fn transport(
    state: &StateDir,
    config: &Config,
) -> Result<(Arc<dyn Connector>, Option<Child>)> {
    let ends = crate::vm::whpx::host_ends(state, config);
    Ok((Arc::new(crate::vm::serial::SerialPorts::new(&ends)), None))
}

/// One boot: the VM and its per-boot helpers.
struct Boot {
    vm: Box<dyn VmHandle>,
    shares: Vec<Child>,
    phases: Phases,
    accel: String,
    /// Length of QEMU's log before this boot (it is appended to).
    qemu_log_from: u64,
}

impl Boot {
    async fn start(
        state: &StateDir,
        config: &Config,
        hv: &dyn Hypervisor,
        data_disk: &std::path::Path,
    ) -> Result<Self> {
        let mut shares = Vec::new();
        let mut devices = Vec::new();
        let kind = share_mount::effective(config, hv.shares());
        if kind == Shares::Unsupported && !config.shares.is_empty() {
            tracing::warn!(
                backend = hv.name(),
                "shared folders are not carried by this back-end yet"
            );
        }
        for (i, dir) in config.shares.iter().enumerate() {
            let socket = match kind {
                // 9P shares need no device: the host serves them once the agent answers.
                Shares::Unsupported | Shares::NineP => break,
                Shares::Builtin => PathBuf::new(),
                Shares::Virtiofsd => {
                    shares.push(
                        helpers::start_virtiofsd(
                            state,
                            &config.tools_dir,
                            i,
                            dir,
                            &config.virtiofs_cache,
                        )
                        .await?,
                    );
                    state.virtiofs_socket(i)
                }
            };
            devices.push(ShareDevice {
                socket,
                dir: dir.clone(),
                tag: share_mount::tag(i),
            });
        }
        let spec = spec(state, config, devices, data_disk)?;
        let accel = crate::vm::accel_description(&config.accel);
        let qemu_log_from = std::fs::metadata(&spec.log_file).map_or(0, |m| m.len());
        // The phases are read from this boot's console; keep the last one's for diagnosis.
        let _ = std::fs::rename(&spec.console_log, state.log_file("console-previous"));
        let phases = Phases::new();
        let vm = hv.start(&spec)?;
        phases.mark(crate::boot::QEMU_SPAWNED, None);
        Ok(Self {
            vm,
            shares,
            phases,
            accel,
            qemu_log_from,
        })
    }

    async fn stop_shares(&mut self) {
        for c in &mut self.shares {
            c.stop(Duration::from_secs(2)).await;
        }
    }
}

fn spec(
    state: &StateDir,
    config: &Config,
    shares: Vec<ShareDevice>,
    data_disk: &std::path::Path,
) -> Result<VmSpec> {
    let img = &config.image_dir;
    let cmdline_file = img.join("cmdline");
    let base = std::fs::read_to_string(&cmdline_file)
        .map_err(|_| HostError::MissingImage(cmdline_file.clone()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut cmdline = format!("{} berth.time={now}", base.trim());
    if !config.registry_mirrors.is_empty() {
        cmdline.push_str(&format!(
            " berth.registry_mirror={}",
            config.registry_mirrors.join(",")
        ));
    }
    let arch = crate::vm::GuestArch::of_image(img)?;
    Ok(VmSpec {
        arch,
        cpus: config.cpus,
        memory_mib: config.memory_mib,
        kernel: img.join(arch.kernel_file()),
        initrd: img.join("initrd.img"),
        rootfs: img.join("rootfs.img"),
        cmdline,
        data_disk: data_disk.to_path_buf(),
        console_log: state.console_log(),
        vhost_vsock_socket: state.vhost_vsock_socket(),
        shares,
        monitor_socket: state.qemu_monitor(),
        pid_file: state.pid_file("qemu"),
        log_file: state.log_file("qemu"),
        kvm: crate::vm::want_kvm(&config.accel),
        daemon_json: crate::daemon_json::prepare(state)?,
        free_page_reporting: config.free_page_reporting,
        disk_discard: config.disk_discard,
    })
}

/// What runs while the agent is connected.
struct Session {
    control: ControlClient,
    /// The shares that mounted.
    shares: Vec<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    async fn begin(
        config: &Config,
        (share_kind, guest): (Shares, &dyn Connector),
        control: ControlClient,
        events: tokio::sync::mpsc::Receiver<berth_agent_proto::Event>,
        ports: Arc<PortForwarder>,
    ) -> Self {
        let kind = share_mount::effective(config, share_kind);
        let shares = share_mount::mount_all(config, kind, &control, guest).await;
        Self::attach(config, control, events, ports, shares).await
    }

    /// The session's work on a connected agent whose shares are mounted (at boot by
    /// [`Session::begin`]; they outlive an engine restart, being the guest kernel's).
    async fn attach(
        config: &Config,
        control: ControlClient,
        mut events: tokio::sync::mpsc::Receiver<berth_agent_proto::Event>,
        ports: Arc<PortForwarder>,
        shares: Vec<PathBuf>,
    ) -> Self {
        sync_guest_clock(&control).await;
        let mut tasks = vec![tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                ports.apply(&ev).await;
            }
        })];
        // Setting up a recursive watch walks the whole tree (a home folder can take long), so it
        // runs off the async threads and does not hold up readiness.
        let dirs = config.shares.clone();
        let c = control.clone();
        tasks.push(tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || share::watch(&dirs)).await {
                Ok(Ok((watcher, rx))) => {
                    share::forward_events(rx, c).await;
                    drop(watcher);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "file events will not reach the VM"),
                Err(e) => tracing::warn!(error = %e, "file watcher setup failed"),
            }
        }));
        Self {
            control,
            shares,
            tasks,
        }
    }

    fn end(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Asks the agent to shut down, then the power button, then kills QEMU.
async fn orderly_shutdown(control: &ControlClient, vm: &mut dyn VmHandle) {
    if let Err(e) = control.request(Request::Shutdown).await {
        tracing::warn!(error = %e, "shutdown request failed; pressing the power button");
        let _ = vm.power_button().await;
    }
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, vm.wait())
        .await
        .is_err()
    {
        tracing::warn!("the guest did not power off in time; killing the VM");
        vm.kill().await;
    } else {
        tracing::info!("VM powered off");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_without_shares_still_reads() {
        let old =
            r#"{"state":"running","vm_pid":7,"restarts":0,"docker_socket":"/x","message":null}"#;
        let s: Status = serde_json::from_str(old).unwrap();
        assert_eq!(s.state, VmState::Running);
        assert!(s.shares.is_empty());
    }
}
