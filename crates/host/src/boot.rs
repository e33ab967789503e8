//! What a boot went through and why one failed: the start phases with their times (QEMU
//! spawned, kernel + initramfs, PID 1, data disk, engine, agent, ready), read from the host's
//! own steps and the guest's console markers (docs/vm-image.md), and the cause of a VM that
//! stopped before its agent answered, read from QEMU's log, in words.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// One start phase: when it completed, in milliseconds after QEMU was spawned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub at_ms: u64,
    /// A detail, e.g. the guest's own uptime when PID 1 started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Phase names, in boot order.
pub const QEMU_SPAWNED: &str = "qemu spawned";
pub const INIT_STARTED: &str = "kernel + initramfs done, PID 1 started";
pub const DISK_MOUNTED: &str = "data disk mounted";
pub const ENGINE_LISTENING: &str = "engine listening";
pub const AGENT_CONNECTED: &str = "agent connected";
pub const READY: &str = "ready (shares mounted, ports followed)";

/// Console lines that end a phase: (substring, phase).
const MARKERS: [(&str, &str); 3] = [
    ("starting at uptime", INIT_STARTED),
    ("data disk mounted at", DISK_MOUNTED),
    ("API listen", ENGINE_LISTENING),
];

/// The phases of one boot; cheap to clone.
#[derive(Clone)]
pub struct Phases {
    start: Instant,
    list: Arc<Mutex<Vec<Phase>>>,
}

impl Default for Phases {
    fn default() -> Self {
        Self::new()
    }
}

impl Phases {
    /// Starts the clock (call right before spawning QEMU).
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            list: Arc::default(),
        }
    }

    /// Records `name` as done now, once.
    pub fn mark(&self, name: &str, note: Option<String>) {
        let at_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut l = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if !l.iter().any(|p| p.name == name) {
            tracing::info!(phase = name, at_ms, note = note.as_deref(), "boot phase");
            l.push(Phase {
                name: name.into(),
                at_ms,
                note,
            });
        }
    }

    pub fn list(&self) -> Vec<Phase> {
        self.list.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Follows the console log (which QEMU truncates at spawn) and marks the guest's phases,
    /// until they are all seen or `cancel` fires.
    pub fn follow_console(&self, console: PathBuf, cancel: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut offset = 0u64;
            let mut partial = String::new();
            loop {
                if let Some(chunk) = read_from(&console, &mut offset) {
                    partial.push_str(&chunk);
                    while let Some(nl) = partial.find('\n') {
                        let line: String = partial.drain(..=nl).collect();
                        me.console_line(&line);
                    }
                }
                if me.list().iter().any(|p| p.name == ENGINE_LISTENING) {
                    break;
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        });
    }

    fn console_line(&self, line: &str) {
        for (marker, phase) in MARKERS {
            if line.contains(marker) {
                let note = (phase == INIT_STARTED)
                    .then(|| guest_uptime(line))
                    .flatten()
                    .map(|u| format!("guest uptime {u} s"));
                self.mark(phase, note);
            }
        }
    }
}

/// New bytes of `path` after `offset` (lossy UTF-8).
fn read_from(path: &Path, offset: &mut u64) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if len < *offset {
        *offset = 0;
    }
    if len == *offset {
        return None;
    }
    f.seek(SeekFrom::Start(*offset)).ok()?;
    let mut buf = Vec::new();
    f.take(len - *offset).read_to_end(&mut buf).ok()?;
    *offset += buf.len() as u64;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `1.52` from `berth-init 0.1.0 starting at uptime 1.52`.
fn guest_uptime(line: &str) -> Option<String> {
    let rest = line.split("starting at uptime").nth(1)?;
    let u = rest.split_whitespace().next()?;
    u.parse::<f64>().ok().map(|_| u.to_string())
}

/// How the phases print (`berth start -v`): one line each, time since QEMU was spawned.
pub fn format_phases(phases: &[Phase]) -> String {
    let mut out = String::new();
    for p in phases {
        out.push_str(&format!(
            "  {:>7.2} s  {}{}\n",
            p.at_ms as f64 / 1000.0,
            p.name,
            p.note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// Why QEMU stopped before the agent answered, in words, from the end of its log; `None`
/// when the log shows no known cause (a guest crash: see the console).
/// `from` is the log's length before this QEMU was spawned (the log is appended to across runs).
pub fn early_exit_cause(qemu_log: &Path, from: u64, data_disk: &Path) -> Option<String> {
    let mut offset = from;
    let log = read_from(qemu_log, &mut offset).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    let has = |s: &str| tail.iter().any(|l| l.contains(s));
    if has("Failed to get \"write\" lock") || has("Failed to get shared \"write\" lock") {
        return Some(format!(
            "the data disk {} is in use by another QEMU (is another Berth running with this \
             state directory? `berth stop` it, or stop that QEMU)",
            data_disk.display()
        ));
    }
    if has("Could not access KVM kernel module") || has("failed to initialize kvm") {
        return Some(
            "KVM is not usable here; set \"accel\": \"tcg\" (or \"auto\") in config.json".into(),
        );
    }
    if has("cannot set up guest memory") || has("Cannot allocate memory") {
        return Some(
            "the host has not enough free memory for the VM; lower \"memory_mib\" in \
             config.json"
                .into(),
        );
    }
    tail.iter()
        .find(|l| l.contains("qemu-system"))
        .map(|l| format!("QEMU failed: {}", l.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_markers_mark_phases_once_with_the_guest_uptime() {
        let p = Phases::new();
        p.mark(QEMU_SPAWNED, None);
        p.console_line("[init] berth-init 0.1.0 starting at uptime 1.52\n");
        p.console_line("data disk mounted at /var/lib/berth (existing)\n");
        p.console_line("data disk mounted at /var/lib/berth (existing)\n");
        p.console_line("engine: API listen on [unix:///run/berth/engine.sock]\n");
        let l = p.list();
        let names: Vec<_> = l.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            [QEMU_SPAWNED, INIT_STARTED, DISK_MOUNTED, ENGINE_LISTENING]
        );
        assert_eq!(l[1].note.as_deref(), Some("guest uptime 1.52 s"));
        let text = format_phases(&l);
        assert!(text.contains("s  data disk mounted\n"), "{text}");
    }

    #[test]
    fn a_locked_disk_is_named() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("qemu.log");
        std::fs::write(
            &log,
            "qemu-system-x86_64: -drive file=/s/data.qcow2,format=qcow2,if=none,id=data: \
             Failed to get \"write\" lock\nIs another process using the image [/s/data.qcow2]?\n",
        )
        .unwrap();
        let c = early_exit_cause(&log, 0, Path::new("/s/data.qcow2")).unwrap();
        assert!(c.contains("in use by another QEMU"), "{c}");
        // An earlier run's lines do not count.
        let len = std::fs::metadata(&log).unwrap().len();
        assert_eq!(early_exit_cause(&log, len, Path::new("/s/d")), None);
        std::fs::write(&log, "qemu-system-x86_64: something else\n").unwrap();
        assert_eq!(
            early_exit_cause(&log, 0, Path::new("/s/d")).unwrap(),
            "QEMU failed: qemu-system-x86_64: something else"
        );
    }
}
