//! `berth-agent`: Berth's engine daemon. Composition root: flags and config file, logging,
//! the engine, and the API listeners.
//!
//! `berth-agent shim …` is the per-container monitor the engine re-executes; it never starts
//! the daemon. `berth-agent init` (or the binary run as `init`) is PID 1 of Berth's Linux
//! guest, which starts the daemon as its child (see `init/`).

mod cli;
mod control;
mod fstrim;
mod init;
mod listen;
mod memory;
mod observability;
mod virtio_port;

use anyhow::Context;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("shim") {
        // The monitor is synchronous and tiny: no tokio runtime, no logging subscriber.
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(berth_engine::shim::main(&args));
    }
    if std::env::args().nth(1).as_deref() == Some("archive") {
        // `docker cp`/`export` helper: synchronous, single-threaded (it unshares its mounts).
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(berth_engine::container::archive::helper::main(&args));
    }
    if is_init() {
        init::main();
    }
    memory::limit_arenas();
    let args = cli::Args::parse();
    let config = args.engine_config()?;
    observability::init(args.log_level.as_deref().or(config.1.as_deref()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let result = rt.block_on(run(args, config.0));
    // A blocking task still in a syscall must not keep the process from exiting.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    if let Ok(Exit::Restart) = result {
        std::process::exit(init::RESTART_EXIT_CODE);
    }
    result.map(|_| ())
}

/// Why the daemon stopped.
enum Exit {
    /// A signal, or the host's `shutdown`.
    Stop,
    /// The host's `restart_engine`: PID 1 starts the engine again.
    Restart,
}

async fn run(args: cli::Args, config: berth_engine::EngineConfig) -> anyhow::Result<Exit> {
    let data_root = config.data_root.clone();
    let engine = berth_engine::Engine::open(config)
        .await
        .context("failed to open the engine")?;
    let app = berth_server::app(engine.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let trimmer = memory::spawn_trimmer(&engine.events, cancel.clone());
    let mut listeners = listen::start(&args.hosts, app.clone(), cancel.clone()).await?;
    let (control, forward) = args.control_endpoints()?;
    let in_vm = control.as_ref().is_some_and(|c| c.is_vsock());
    // In the VM, freed blocks go back to the host's disk image.
    let fstrim = in_vm.then(|| fstrim::spawn(data_root.clone(), &engine.events, cancel.clone()));
    // In the VM, PID 1 restarts the engine when it exits with RESTART_EXIT_CODE.
    let restart_requested = tokio_util::sync::CancellationToken::new();
    let restart = (in_vm && control::under_init()).then(|| control::EngineRestart {
        requested: restart_requested.clone(),
        config: init::RESTART_CONFIG.into(),
    });
    let host_shutdown = match (&control, &forward) {
        (Some(c), Some(f)) => {
            let started = control::start(
                c,
                f,
                app,
                &engine.events,
                &mut listeners,
                cancel.clone(),
                control::EngineFacts { data_root, restart },
            );
            match started {
                Ok(t) => Some(t),
                // Without vsock (a VM lacking the device) the engine still runs.
                Err(e) if in_vm => {
                    tracing::error!(error = format!("{e:#}"), "control endpoint not started");
                    None
                }
                Err(e) => return Err(e),
            }
        }
        _ => None,
    };
    if let Some(p) = &args.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("failed to write {}", p.display()))?;
    }
    tracing::info!(hosts = ?args.hosts, "API listen");
    let (by_host, exit) = match host_shutdown {
        Some(t) => tokio::select! {
            _ = wait_for_signal() => (false, Exit::Stop),
            _ = t.cancelled() => (true, Exit::Stop),
            _ = restart_requested.cancelled() => (false, Exit::Restart),
        },
        None => {
            wait_for_signal().await;
            (false, Exit::Stop)
        }
    };
    if by_host {
        control::request_power_off(in_vm);
    }
    tracing::info!("shutting down");
    cancel.cancel();
    let _ = trimmer.await;
    if let Some(t) = fstrim {
        let _ = t.await;
    }
    listeners.close().await;
    engine.shutdown().await;
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(exit)
}

/// `berth-agent init`, or the binary started as `init` (the guest's `/sbin/init` link).
fn is_init() -> bool {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    args.next().as_deref() == Some("init")
        || std::path::Path::new(&argv0).file_name() == Some(std::ffi::OsStr::new("init"))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
