//! The subcommands.

use std::time::Duration;

use anyhow::{bail, Context};
use berth_host::forward::ports::{describe, read_record};
use berth_host::process::{kill, live_pid, terminate, wait_pid_gone};
use berth_host::supervisor::{Status, VmState};
use berth_host::{Config, StateDir};

use crate::ping::ping;

const DAEMON: &str = "supervisor";
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) async fn start(
    state: &StateDir,
    timeout: u64,
    system_socket: bool,
    verbose: bool,
) -> anyhow::Result<()> {
    state.create()?;
    let config = Config::load_or_init(state)?;
    // A daemon.json the engine would refuse stops the start here, with its position.
    berth_host::daemon_json::load(&state.daemon_json())?;
    let mut child = None;
    if let Some(pid) = live_pid(&state.pid_file(DAEMON)) {
        if ping(&state.docker_endpoint()).await {
            println!("Berth is already running (pid {pid}).");
            link_system_socket(state, &config, system_socket);
            print_usage(state);
            return Ok(());
        }
    } else {
        child = Some(spawn_daemon(state)?);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let st = Status::read(state);
        // Running = shares mounted and ports followed, not just the API answering.
        if st.as_ref().is_some_and(|s| s.state == VmState::Running)
            && ping(&state.docker_endpoint()).await
        {
            break;
        }
        let gone = match child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_some(),
            None => live_pid(&state.pid_file(DAEMON)).is_none(),
        };
        if gone || st.as_ref().is_some_and(|s| s.state == VmState::Failed) {
            if verbose {
                print_phases(st.as_ref());
            }
            let msg = st.and_then(|s| s.message).unwrap_or_default();
            bail!(
                "the VM failed to start: {msg} (logs: {}, {})",
                state.log_file(DAEMON).display(),
                state.console_log().display()
            );
        }
        if tokio::time::Instant::now() > deadline {
            if verbose {
                print_phases(st.as_ref());
            }
            bail!(
                "the Docker API did not come up within {timeout} s (console: {})",
                state.console_log().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    create_context(state);
    println!("Berth is running.");
    if verbose {
        print_phases(Status::read(state).as_ref());
    }
    link_system_socket(state, &config, system_socket);
    print_usage(state);
    Ok(())
}

/// The start phases of the last boot and how the VM runs (`berth start -v`).
fn print_phases(st: Option<&Status>) {
    let Some(st) = st else {
        println!("Start phases: none recorded (the supervisor did not get to boot the VM)");
        return;
    };
    if let Some(a) = &st.accel {
        println!("Accelerator: {a}");
    }
    println!("Start phases (seconds after QEMU was spawned):");
    print!("{}", berth_host::boot::format_phases(&st.phases));
}

/// Links the system socket when asked (flag or config) and says what happened.
#[cfg(unix)]
fn link_system_socket(state: &StateDir, config: &Config, flag: bool) {
    use berth_host::system_socket::{self, Linked};
    if !(flag || config.system_socket) {
        return;
    }
    let path = &config.system_socket_path;
    let target = state.docker_socket();
    match system_socket::enable(state, path) {
        Ok(Linked::Created) => println!(
            "System socket: linked {} -> {}",
            path.display(),
            target.display()
        ),
        Ok(Linked::AlreadyOurs) => println!(
            "System socket: {} already links to {}",
            path.display(),
            target.display()
        ),
        Ok(Linked::Occupied(what)) => eprintln!(
            "berth: not linking {}: it is {what}; left unchanged (remove it yourself to let Berth link it)",
            path.display()
        ),
        // Not fatal: the engine is up and reachable through the context.
        Err(e) => eprintln!(
            "berth: cannot link the system socket {}: {:#}",
            path.display(),
            anyhow::Error::new(e)
        ),
    }
}

/// On Windows there is no link: the standard pipe is served by the supervisor (config
/// `system_socket`), see docs/design/host.md.
#[cfg(not(unix))]
fn link_system_socket(_state: &StateDir, _config: &Config, flag: bool) {
    if flag {
        eprintln!("berth: --system-socket links a unix socket; on Windows set `system_socket` in config.json");
    }
}

#[cfg(not(unix))]
fn unlink_system_socket(_state: &StateDir) {}

/// Removes the system socket link made at start, if it is still ours.
#[cfg(unix)]
fn unlink_system_socket(state: &StateDir) {
    use berth_host::system_socket::{self, Unlinked};
    match system_socket::disable(state) {
        Ok(Unlinked::Removed(p)) => println!("System socket: removed the link {}", p.display()),
        Ok(Unlinked::NotOurs(p, what)) => eprintln!(
            "berth: left {} alone: it is now {what}, not Berth's link",
            p.display()
        ),
        Ok(Unlinked::NothingRecorded) => {}
        Err(e) => eprintln!("berth: cannot remove the system socket link: {e:#}"),
    }
}

fn print_usage(state: &StateDir) {
    use std::io::Write;
    let url = state.docker_endpoint().url();
    // A closed stdout (`berth start | head -1`) is not an error of ours.
    let _ = write!(
        std::io::stdout(),
        "Docker socket: {url}\n\
         Use it with:   docker --context berth ps\n\
         \x20         or:  export DOCKER_HOST={url}\n\
         \x20         or:  docker context use berth\n"
    );
}

/// Creates or updates the `berth` docker context in the docker CLI's store (best effort).
fn create_context(state: &StateDir) {
    let store = berth_host::docker_context::ContextStore::from_env();
    let host = state.docker_endpoint().url();
    if let Err(e) = store.ensure("berth", &host, "Berth's VM") {
        eprintln!(
            "berth: could not create the docker context `berth` in {}: {:#}",
            store.dir().display(),
            anyhow::Error::new(e)
        );
    }
}

/// `berth restart --engine`: only the engine in the running VM.
pub(crate) async fn restart_engine(state: &StateDir, timeout: u64) -> anyhow::Result<()> {
    if !vm_running(state) {
        bail!(
            "Berth's VM is not running (berth start); a native engine (no VM) is restarted by \
             whoever started it, as there is no init in the VM to restart it"
        );
    }
    let r = berth_host::engine_restart::restart(state, Duration::from_secs(timeout))
        .await
        .context("restarting the engine")?;
    let old = r.old_pid.map_or_else(|| "?".to_string(), |p| p.to_string());
    println!(
        "Engine restarted in {:.1} s (pid {old} -> {}); the VM and its running containers kept running.",
        r.took.as_secs_f64(),
        r.new_pid
    );
    Ok(())
}

fn spawn_daemon(state: &StateDir) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the berth binary")?;
    let log_path = state.log_file(DAEMON);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("failed to open {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home")
        .arg(state.root())
        .arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // A stale status from an earlier run must not be read as this run's.
    let _ = std::fs::remove_file(state.run_dir().join("status.json"));
    cmd.spawn().context("failed to start the supervisor")
}

/// The supervisor in this process; prints how to connect once the engine is ready.
pub(crate) async fn start_foreground(state: StateDir, system_socket: bool) -> anyhow::Result<()> {
    let config = Config::load_or_init(&state)?;
    let s = state.clone();
    tokio::spawn(async move {
        loop {
            let running = Status::read(&s).is_some_and(|st| st.state == VmState::Running);
            if running && ping(&s.docker_endpoint()).await {
                create_context(&s);
                println!("Berth is running (Ctrl-C stops it).");
                link_system_socket(&s, &config, system_socket);
                print_usage(&s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let _ = std::fs::remove_file(state.run_dir().join("status.json"));
    let r = daemon(state.clone()).await;
    unlink_system_socket(&state);
    r
}

pub(crate) async fn daemon(state: StateDir) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();
    state.create()?;
    let pid_file = state.pid_file(DAEMON);
    if let Some(pid) = live_pid(&pid_file) {
        bail!("a supervisor is already running (pid {pid})");
    }
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))?;
    let config = Config::load_or_init(&state)?;
    let hv = berth_host::vm::probe(&state, &config)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        stop_requested().await;
        s.cancel();
    });
    let r = berth_host::supervisor::run(state.clone(), config, hv, stop).await;
    let _ = std::fs::remove_file(&pid_file);
    if let Err(e) = &r {
        tracing::error!(error = %berth_host::supervisor::error_chain(e), "supervisor failed");
    }
    Ok(r?)
}

/// Resolves on SIGTERM or SIGINT (`berth stop`, Ctrl-C).
#[cfg(unix)]
async fn stop_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    if let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

/// Resolves on Ctrl-C (Windows has no SIGTERM: `berth stop` asks on the supervisor's control
/// pipe, which fires the same stop, see `berth_host::control_endpoint`).
#[cfg(not(unix))]
async fn stop_requested() {
    let _ = tokio::signal::ctrl_c().await;
}

pub(crate) async fn stop(state: &StateDir) -> anyhow::Result<()> {
    let Some(pid) = live_pid(&state.pid_file(DAEMON)) else {
        println!("Berth is not running.");
        kill_leftovers(state);
        unlink_system_socket(state);
        return Ok(());
    };
    ask_to_stop(state, pid).await?;
    if !wait_pid_gone(pid, STOP_TIMEOUT).await {
        eprintln!("berth: the supervisor did not stop in time; killing it");
        let _ = kill(pid);
        wait_pid_gone(pid, Duration::from_secs(5)).await;
    }
    kill_leftovers(state);
    unlink_system_socket(state);
    println!("Berth stopped.");
    Ok(())
}

/// SIGTERM: the supervisor stops the guest in order.
#[cfg(unix)]
async fn ask_to_stop(_state: &StateDir, pid: u32) -> anyhow::Result<()> {
    terminate(pid).context("failed to signal the supervisor")
}

/// The supervisor's control pipe (Windows has no SIGTERM); a supervisor that does not answer
/// there is terminated.
#[cfg(not(unix))]
async fn ask_to_stop(state: &StateDir, pid: u32) -> anyhow::Result<()> {
    if let Err(e) = berth_host::control::request_stop(state).await {
        eprintln!(
            "berth: the supervisor did not take the stop request ({:#}); terminating it",
            anyhow::Error::new(e)
        );
        terminate(pid).context("failed to terminate the supervisor")?;
    }
    Ok(())
}

/// Kills processes a dead supervisor left behind, by their pid files.
fn kill_leftovers(state: &StateDir) {
    let Ok(dir) = std::fs::read_dir(state.run_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "pid") {
            if let Some(pid) = live_pid(&p) {
                eprintln!("berth: killing leftover {} (pid {pid})", p.display());
                let _ = kill(pid);
            }
            let _ = std::fs::remove_file(&p);
        }
    }
}

pub(crate) async fn status(state: &StateDir) -> anyhow::Result<()> {
    let daemon = live_pid(&state.pid_file(DAEMON));
    let st = Status::read(state);
    // Asking a paused VM would resume it: its API counts as ready (the next call resumes it).
    let paused = st.as_ref().is_some_and(|s| s.paused);
    let api = daemon.is_some() && (paused || ping(&state.docker_endpoint()).await);
    match (daemon, &st) {
        (Some(pid), Some(s)) => {
            println!("supervisor: running (pid {pid})");
            println!(
                "vm:         {:?}{}{}",
                s.state,
                s.vm_pid
                    .map(|p| format!(" (qemu pid {p})"))
                    .unwrap_or_default(),
                if s.paused {
                    ", paused while idle (the next docker call resumes it)"
                } else {
                    ""
                }
            );
            println!("restarts:   {}", s.restarts);
            if let Some(a) = &s.accel {
                println!("accel:      {a}");
            }
            if s.state == VmState::Running {
                if !s.paused {
                    let m = berth_host::memory::read(state, s.vm_pid).await;
                    println!("memory:     {}", berth_host::memory::describe(&m));
                }
                print_forwards(state, s);
            }
        }
        (Some(pid), None) => println!("supervisor: running (pid {pid})"),
        (None, Some(s)) => {
            println!("supervisor: not running");
            println!("last state: {:?}", s.state);
            if let Some(m) = &s.message {
                println!("last error: {m}");
            }
        }
        (None, None) => println!("supervisor: not running"),
    }
    println!(
        "docker api: {} ({})",
        if api { "ready" } else { "down" },
        state.docker_endpoint()
    );
    if !api {
        std::process::exit(3);
    }
    Ok(())
}

/// Shares mounted, ports forwarded and the system socket link of a running VM.
fn print_forwards(state: &StateDir, s: &Status) {
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let shares = s.shares.iter().map(|p| p.display().to_string()).collect();
    println!("shares:     {}", list(shares));
    let ports = read_record(&state.ports_file());
    println!("ports:      {}", list(ports.iter().map(describe).collect()));
    #[cfg(unix)]
    if let Some(p) = berth_host::system_socket::recorded(state) {
        println!("system socket: {}", p.display());
    }
}

/// Whether the supervisor runs and says the VM is up.
fn vm_running(state: &StateDir) -> bool {
    live_pid(&state.pid_file(DAEMON)).is_some()
        && Status::read(state).is_some_and(|s| s.state == VmState::Running)
}

/// `berth disk usage`.
pub(crate) async fn disk_usage(state: &StateDir) -> anyhow::Result<()> {
    let running = vm_running(state);
    let usage = berth_host::usage::read(state, running).await;
    for line in berth_host::usage::describe(&usage) {
        println!("{line}");
    }
    Ok(())
}

pub(crate) async fn disk_compact(state: &StateDir) -> anyhow::Result<()> {
    use berth_host::disk::{allocated_bytes, compact_offline};
    let disk = state.data_disk();
    if !disk.exists() {
        bail!(
            "no data disk at {} (Berth has not started yet)",
            disk.display()
        );
    }
    let mib = |b: u64| b / (1 << 20);
    let before = allocated_bytes(&disk)?;
    let running = vm_running(state);
    if running {
        let trimmed = berth_host::disk::trim_online(state)
            .await
            .context("the guest could not trim its disk")?;
        println!(
            "Trimmed {} MiB of free space in the guest; {} now takes {} MiB on the host (was {} MiB).",
            mib(trimmed),
            disk.display(),
            mib(allocated_bytes(&disk)?),
            mib(before)
        );
    } else {
        compact_offline(&disk).await?;
        println!(
            "Rewrote {} without unused clusters: {} MiB on the host (was {} MiB).",
            disk.display(),
            mib(allocated_bytes(&disk)?),
            mib(before)
        );
    }
    Ok(())
}

/// `berth reset`: lists what a reset to factory defaults deletes; with `yes`, deletes it.
pub(crate) fn reset(state: &StateDir, yes: bool) -> anyhow::Result<()> {
    use berth_host::reset;
    if let Some(why) = reset::refusal(state) {
        bail!(why);
    }
    let plan = reset::plan(state);
    if plan.is_empty() {
        println!("Nothing to reset in {}.", state.root().display());
        return Ok(());
    }
    if !yes {
        println!("A reset deletes:");
        for i in &plan {
            println!("  {}  ({})", i.path.display(), i.what);
        }
        println!("Run `berth reset --yes` to delete them.");
        return Ok(());
    }
    for i in reset::reset(state)? {
        println!("Deleted {}", i.path.display());
    }
    Ok(())
}

/// `berth doctor`: collects the diagnostics bundle and writes it; prints where.
pub(crate) async fn doctor(
    state: &StateDir,
    output: Option<std::path::PathBuf>,
    docker_host: Option<&str>,
) -> anyhow::Result<()> {
    use berth_host::doctor;
    let endpoint = match docker_host {
        Some(h) => berth_host::endpoint::Endpoint::parse(h)
            .with_context(|| format!("{h:?} is not a unix socket or named pipe"))?,
        None => state.docker_endpoint(),
    };
    let bundle = doctor::collect(state, &endpoint, &[]).await;
    let path = output.unwrap_or_else(|| doctor::file_name(bundle.generated).into());
    doctor::write(&bundle, &path)?;
    let api = if bundle.docker.version.get("error").is_some() {
        "not answering"
    } else {
        "answering"
    };
    println!(
        "Wrote {} (Docker API at {}: {api}; {} logs).",
        path.display(),
        bundle.docker.endpoint,
        bundle.logs.len()
    );
    Ok(())
}

pub(crate) async fn logs(state: &StateDir, follow: bool) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let path = state.console_log();
    let mut f = tokio::fs::File::open(&path)
        .await
        .with_context(|| format!("no console log at {}", path.display()))?;
    let mut out = tokio::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n > 0 {
            out.write_all(&buf[..n]).await?;
            continue;
        }
        if !follow {
            break;
        }
        out.flush().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A new boot truncates the log: start over.
        let len = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if len < f.stream_position().await? {
            f.seek(std::io::SeekFrom::Start(0)).await?;
        }
    }
    out.flush().await?;
    Ok(())
}
