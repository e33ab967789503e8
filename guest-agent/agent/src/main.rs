//! `berth-agent`: Berth's engine daemon. Composition root: flags and config file, logging,
//! the engine, and the API listeners.
//!
//! `berth-agent shim …` is the per-container monitor the engine re-executes; it never starts
//! the daemon.

mod cli;
mod listen;
mod memory;
mod observability;

use anyhow::Context;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("shim") {
        // The monitor is synchronous and tiny: no tokio runtime, no logging subscriber.
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(berth_engine::shim::main(&args));
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
    rt.block_on(run(args, config.0))
}

async fn run(args: cli::Args, config: berth_engine::EngineConfig) -> anyhow::Result<()> {
    let engine = berth_engine::Engine::open(config)
        .await
        .context("failed to open the engine")?;
    let app = berth_server::app(engine.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let trimmer = memory::spawn_trimmer(&engine.events, cancel.clone());
    let listeners = listen::start(&args.hosts, app, cancel.clone()).await?;
    if let Some(p) = &args.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("failed to write {}", p.display()))?;
    }
    tracing::info!(hosts = ?args.hosts, "API listen");
    wait_for_signal().await;
    tracing::info!("shutting down");
    cancel.cancel();
    let _ = trimmer.await;
    listeners.close().await;
    engine.shutdown().await;
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
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
