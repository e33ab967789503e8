//! The state directory, by default `~/.berth` (`BERTH_HOME` overrides). Every file is listed in
//! `docs/dev/state-layout.md` with its writer.

use std::path::{Path, PathBuf};

use crate::error::{HostError, Result};

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `$BERTH_HOME`, else `$HOME/.berth`.
    pub fn default_location() -> Self {
        if let Some(h) = std::env::var_os("BERTH_HOME") {
            return Self::new(h);
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        Self::new(Path::new(&home).join(".berth"))
    }

    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the directories (owner-only).
    pub fn create(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        for d in [
            self.root.clone(),
            self.run_dir(),
            self.disk_dir(),
            self.logs_dir(),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(HostError::io(&d))?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// The engine's configuration as the user keeps it (the native engine's `daemon.json`).
    pub fn daemon_json(&self) -> PathBuf {
        self.root.join("daemon.json")
    }
    /// What the guest's engine gets of it at this boot ([`crate::daemon_json::prepare`]).
    pub fn guest_daemon_json(&self) -> PathBuf {
        self.run_dir().join("daemon.json")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn disk_dir(&self) -> PathBuf {
        self.root.join("disk")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The forwarded Docker API socket (0600).
    pub fn docker_socket(&self) -> PathBuf {
        self.run_dir().join("docker.sock")
    }
    /// vhost-device-vsock's hybrid vsock socket (`uds-path`); guest→host ports are `<it>_<port>`.
    pub fn vsock_socket(&self) -> PathBuf {
        self.run_dir().join("vsock.sock")
    }
    /// vhost-user control socket between QEMU and vhost-device-vsock.
    pub fn vhost_vsock_socket(&self) -> PathBuf {
        self.run_dir().join("vhost-vsock.sock")
    }
    /// vhost-user socket of the virtiofsd for share `i`.
    pub fn virtiofs_socket(&self, i: usize) -> PathBuf {
        self.run_dir().join(format!("virtiofs-{i}.sock"))
    }
    /// QEMU's monitor (for `system_powerdown`).
    pub fn qemu_monitor(&self) -> PathBuf {
        self.run_dir().join("qemu-monitor.sock")
    }
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.run_dir().join(format!("{name}.pid"))
    }
    pub fn data_disk(&self) -> PathBuf {
        self.disk_dir().join("data.qcow2")
    }
    pub fn console_log(&self) -> PathBuf {
        self.logs_dir().join("console.log")
    }
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }
    /// The published ports the supervisor forwards now (JSON list), for `berth status`.
    pub fn ports_file(&self) -> PathBuf {
        self.run_dir().join("ports.json")
    }
}

/// Writes `value` as pretty JSON to `path` through a temp file and a rename (best effort: the
/// files so written are reports for `berth status`).
pub(crate) fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) {
    let tmp = path.with_extension("json.tmp");
    if let Ok(b) = serde_json::to_vec_pretty(value) {
        if std::fs::write(&tmp, b).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}
