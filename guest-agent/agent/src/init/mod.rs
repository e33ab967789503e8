//! `berth-agent init`: PID 1 of Berth's Linux guest (docs/vm-image.md). Stage 1 (a busybox
//! script in the initramfs) mounts the read-only root and `switch_root`s here. This process
//! mounts the API filesystems and cgroup v2, loads modules, configures the network, sets the
//! clock, mounts the data disk, then supervises the engine (a child `berth-agent` process),
//! reaps orphans and powers off on request. It is synchronous: no async runtime in PID 1.

pub(crate) mod clock;
pub(crate) mod cmdline;
mod disk;
mod engine;
mod log;
mod modules;
mod mounts;
mod net;
mod power;
mod supervise;

use clock::set_wall_clock;
pub(crate) use engine::RESTART_CONFIG;

/// The engine's exit status asking PID 1 to start it again at once (the host's
/// `restart_engine`), rather than after the crash back-off.
pub(crate) const RESTART_EXIT_CODE: i32 = 75;

use anyhow::{bail, Context};

/// Runs PID 1; never returns. A fatal boot error is logged and the VM powered off, so the host
/// sees QEMU exit instead of a hung guest.
pub(crate) fn main() -> ! {
    // Still single-threaded here; every child inherits a usable PATH.
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let signals = supervise::block_signals();
    let proc_mounted = mounts::proc();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let boot = cmdline::BootArgs::parse(&cmdline);
    log::init(boot.log_level.as_deref().unwrap_or("info"));
    let result = proc_mounted
        .and_then(|()| signals.context("failed to block signals"))
        .and_then(|signals| run(&boot, &signals));
    if let Err(e) = result {
        tracing::error!("boot failed: {e:#}");
    }
    power::power_off()
}

fn run(boot: &cmdline::BootArgs, signals: &nix::sys::signalfd::SignalFd) -> anyhow::Result<()> {
    if std::process::id() != 1 {
        bail!("berth-agent init must run as PID 1");
    }
    if let Some((secs, nanos)) = boot.time {
        match set_wall_clock(secs, nanos) {
            Ok(()) => tracing::debug!("clock set to {secs}"),
            Err(e) => tracing::warn!("cannot set the clock: {e}"),
        }
    }
    mounts::early()?;
    if let Err(e) = log::open_file() {
        tracing::warn!("cannot open the init log file: {e}");
    }
    tracing::info!(
        "berth-init {} starting at uptime {}",
        env!("CARGO_PKG_VERSION"),
        uptime()
    );
    modules::load(modules::BEFORE_ENGINE);
    if let Err(e) = net::configure() {
        tracing::warn!("network: {e:#}");
    }
    disk::mount_data()?;
    if boot.debug_shell {
        debug_shell();
    }
    let config = engine::config_file();
    let again = boot.clone();
    let mut engine =
        supervise::Engine::new(engine::args(boot, config)).reconfigured_by(Box::new(move || {
            engine::args(&again, engine::restart_config_file())
        }));
    match supervise::run(signals, &mut engine, supervise::power_button()) {
        supervise::Stop::Signal(s) => tracing::info!("power-off requested by {s}"),
        supervise::Stop::PowerButton => tracing::info!("power-off requested by the power button"),
    }
    power::shutdown(engine.pid)
}

/// A `Command` for a child of PID 1: it starts with no blocked signals. PID 1 blocks the ones
/// it takes through its signalfd, and a blocked mask is inherited across exec; the engine would
/// otherwise never see SIGTERM.
pub(crate) fn command(program: &str) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(program);
    // SAFETY: the closure runs between fork and exec and only calls pthread_sigmask, which is
    // async-signal-safe, on a set built before the fork.
    unsafe {
        let empty = nix::sys::signal::SigSet::empty();
        c.pre_exec(move || {
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&empty),
                None,
            )
            .map_err(std::io::Error::from)
        });
    }
    c
}

/// Seconds since the kernel started, as `/proc/uptime` says (for boot timing in the log).
pub(crate) fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// A busybox shell on the console for development (`berth.debug_shell=1`); reaped like any
/// other child.
fn debug_shell() {
    match command("/bin/sh").spawn() {
        Ok(c) => tracing::warn!("debug shell on the console (pid {})", c.id()),
        Err(e) => tracing::warn!("cannot start a debug shell: {e}"),
    }
}
