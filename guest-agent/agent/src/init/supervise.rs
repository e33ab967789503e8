//! PID 1's main loop: reap every child (orphans are re-parented to PID 1), restart the engine
//! when it dies, and return when a power-off is requested (signal or ACPI power button).

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals PID 1 takes through a signalfd. SIGTERM: shutdown request (the control server sends
/// it); SIGINT: Ctrl-Alt-Del; SIGPWR: power failure/shutdown from the kernel.
const HANDLED: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGPWR,
    Signal::SIGHUP,
];

/// Why the loop ended.
pub(crate) enum Stop {
    Signal(Signal),
    PowerButton,
}

/// Blocks the handled signals (before any thread exists, so every thread inherits the mask)
/// and returns a signalfd for them. Children are started through `super::command`, which
/// clears the mask again.
pub(crate) fn block_signals() -> nix::Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(s);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    // The kernel sends SIGINT to PID 1 on Ctrl-Alt-Del instead of rebooting at once.
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        tracing::debug!("cannot route Ctrl-Alt-Del to PID 1: {e}");
    }
    // Non-blocking: the loop drains it until EAGAIN. Close-on-exec: children must not see it.
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// Restart delays of the engine: doubling from 1 s to 30 s; reset after a minute of uptime.
struct Backoff {
    delay: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);
    const HEALTHY: Duration = Duration::from_secs(60);

    fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= Self::HEALTHY {
            self.delay = Self::FIRST;
        }
        let d = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        d
    }
}

/// The engine's arguments for a restart the host asked for (its daemon.json may have changed).
pub(crate) type Reconfigure = Box<dyn Fn() -> Vec<String>>;

/// The supervised engine.
pub(crate) struct Engine {
    args: Vec<String>,
    reconfigure: Option<Reconfigure>,
    pub(crate) pid: Option<Pid>,
    started: Instant,
    restart_at: Option<Instant>,
    backoff: Backoff,
}

impl Engine {
    pub(crate) fn new(args: Vec<String>) -> Self {
        Self {
            args,
            reconfigure: None,
            pid: None,
            started: Instant::now(),
            restart_at: Some(Instant::now()),
            backoff: Backoff {
                delay: Backoff::FIRST,
            },
        }
    }

    pub(crate) fn reconfigured_by(mut self, f: Reconfigure) -> Self {
        self.reconfigure = Some(f);
        self
    }

    /// The engine exited on the host's request: start it again now, with fresh arguments,
    /// and without touching the crash back-off.
    fn restart_requested(&mut self) {
        self.pid = None;
        if let Some(f) = &self.reconfigure {
            self.args = f();
        }
        tracing::info!("engine restart requested by the host; starting it again");
        self.restart_at = Some(Instant::now());
    }

    fn start_if_due(&mut self) {
        if self.restart_at.is_some_and(|t| t <= Instant::now()) {
            self.restart_at = None;
            self.started = Instant::now();
            match super::engine::spawn(&self.args) {
                Ok(pid) => {
                    tracing::info!("engine started (pid {pid}) at uptime {}", super::uptime());
                    self.pid = Some(pid);
                }
                Err(e) => {
                    tracing::error!("cannot start the engine: {e}");
                    self.exited();
                }
            }
        }
    }

    fn exited(&mut self) {
        self.pid = None;
        let delay = self.backoff.next(self.started.elapsed());
        tracing::warn!("engine restarts in {} s", delay.as_secs());
        self.restart_at = Some(Instant::now() + delay);
    }

    fn timeout(&self) -> PollTimeout {
        match self.restart_at {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(ms.min(60_000)).unwrap_or(PollTimeout::NONE)
            }
        }
    }
}

/// Reaps every exited child; tells `engine` when it was among them.
pub(crate) fn reap(engine: &mut Engine) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(status) => {
                if status.pid().is_some() && status.pid() == engine.pid {
                    if matches!(status, WaitStatus::Exited(_, super::RESTART_EXIT_CODE)) {
                        engine.restart_requested();
                    } else {
                        tracing::error!("engine exited: {status:?}");
                        engine.exited();
                    }
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => {
                tracing::warn!("waitpid: {e}");
                return;
            }
        }
    }
}

/// Runs until a power-off is requested.
pub(crate) fn run(signals: &SignalFd, engine: &mut Engine, mut button: Option<File>) -> Stop {
    loop {
        engine.start_if_due();
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(b) = &button {
            fds.push(PollFd::new(b.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, engine.timeout()) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!("poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let button_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        while let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => reap(engine),
                Ok(Signal::SIGHUP) => tracing::debug!("SIGHUP ignored"),
                Ok(s) => return Stop::Signal(s),
                Err(_) => {}
            }
        }
        if button_ready {
            match button.as_mut().map(power_key_pressed) {
                Some(Ok(true)) => return Stop::PowerButton,
                Some(Ok(false)) => {}
                Some(Err(e)) => {
                    tracing::warn!("power button: {e}; no longer watched");
                    button = None;
                }
                None => {}
            }
        }
    }
}

/// Opens the evdev node of the ACPI power button (`system_powerdown` in QEMU's monitor), if any.
pub(crate) fn power_button() -> Option<File> {
    let dir = std::fs::read_dir("/sys/class/input").ok()?;
    for entry in dir.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with("event")) else {
            continue;
        };
        let label = std::fs::read_to_string(entry.path().join("device/name")).unwrap_or_default();
        if label.trim() == "Power Button" {
            let dev = Path::new("/dev/input").join(name);
            match File::open(&dev) {
                Ok(f) => {
                    tracing::debug!("watching the power button at {}", dev.display());
                    return Some(f);
                }
                Err(e) => tracing::warn!("cannot open {}: {e}", dev.display()),
            }
        }
    }
    None
}

/// `struct input_event` on 64-bit Linux: timeval (16 bytes), type u16, code u16, value i32.
const INPUT_EVENT_SIZE: usize = 24;
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;

fn power_key_pressed(dev: &mut File) -> std::io::Result<bool> {
    let mut buf = [0u8; INPUT_EVENT_SIZE * 16];
    let n = dev.read(&mut buf)?;
    Ok(buf[..n]
        .chunks_exact(INPUT_EVENT_SIZE)
        .any(is_power_key_press))
}

fn is_power_key_press(ev: &[u8]) -> bool {
    let kind = u16::from_ne_bytes([ev[16], ev[17]]);
    let code = u16::from_ne_bytes([ev[18], ev[19]]);
    let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
    kind == EV_KEY && code == KEY_POWER && value == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut e = vec![0u8; 16];
        e.extend(kind.to_ne_bytes());
        e.extend(code.to_ne_bytes());
        e.extend(value.to_ne_bytes());
        e
    }

    #[test]
    fn is_power_key_press_only_on_key_down() {
        assert!(is_power_key_press(&event(EV_KEY, KEY_POWER, 1)));
        assert!(!is_power_key_press(&event(EV_KEY, KEY_POWER, 0)));
        assert!(!is_power_key_press(&event(0, 0, 0)));
        assert!(!is_power_key_press(&event(EV_KEY, 30, 1)));
    }

    #[test]
    fn backoff_doubles_to_max_and_resets_when_healthy() {
        let mut b = Backoff {
            delay: Backoff::FIRST,
        };
        let short = Duration::from_secs(1);
        let seen: Vec<u64> = (0..7).map(|_| b.next(short).as_secs()).collect();
        assert_eq!(seen, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.next(Duration::from_secs(120)).as_secs(), 1);
    }

    #[test]
    fn a_requested_restart_is_immediate_with_fresh_args_and_keeps_the_backoff() {
        let mut e =
            Engine::new(vec!["--old".into()]).reconfigured_by(Box::new(|| vec!["--new".into()]));
        e.restart_at = None;
        e.pid = Some(Pid::from_raw(42));
        e.restart_requested();
        assert_eq!(e.args, ["--new"]);
        assert!(e.pid.is_none());
        assert!(e.restart_at.is_some_and(|t| t <= Instant::now()));
        assert_eq!(e.backoff.delay, Backoff::FIRST);
    }
}
