//! The state directory, by default `~/.berth` (`BERTH_HOME` overrides; on Windows
//! `%USERPROFILE%\.berth`). Every file is listed in `docs/dev/state-layout.md` with its writer.

use std::path::{Path, PathBuf};

use crate::endpoint::Endpoint;
use crate::error::{HostError, Result};

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    /// Whether this is the user's default state dir (it gets the plain pipe names on Windows).
    default: bool,
}

impl StateDir {
    /// `$BERTH_HOME`, else `.berth` in the home folder (`HOME`, else `USERPROFILE`).
    pub fn default_location() -> Self {
        if let Some(h) = std::env::var_os("BERTH_HOME") {
            return Self::new(h);
        }
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .unwrap_or_else(|| "/root".into());
        Self {
            root: Path::new(&home).join(".berth"),
            default: true,
        }
    }

    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            default: false,
        }
    }

    /// Creates the directories (owner-only on unix; on Windows the user profile's ACL applies).
    pub fn create(&self) -> Result<()> {
        for d in [
            self.root.clone(),
            self.run_dir(),
            self.disk_dir(),
            self.logs_dir(),
        ] {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&d).map_err(HostError::io(&d))?;
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
    /// The forwarded Docker API socket (0600) on unix.
    pub fn docker_socket(&self) -> PathBuf {
        self.run_dir().join("docker.sock")
    }
    /// Where the forwarded Docker API is served: the unix socket [`Self::docker_socket`], or
    /// on Windows the named pipe [`Self::pipe`]`("docker")`.
    pub fn docker_endpoint(&self) -> Endpoint {
        if cfg!(windows) {
            Endpoint::Pipe(self.pipe("docker"))
        } else {
            Endpoint::Unix(self.docker_socket())
        }
    }
    /// The named pipe `\\.\pipe\berth_<what>` of this state dir. Pipes live in one
    /// machine-wide namespace, so a state dir other than the default one gets its own suffix
    /// (a hash of its path): two Berths (or tests) never share a pipe.
    pub fn pipe(&self, what: &str) -> String {
        if self.default {
            format!(r"\\.\pipe\berth_{what}")
        } else {
            let h = fnv1a(self.root.as_os_str().as_encoded_bytes());
            format!(r"\\.\pipe\berth_{what}_{h:016x}")
        }
    }
    /// The supervisor's control endpoint ([`crate::control_endpoint`]): `run/control.sock`, or
    /// on Windows the named pipe [`Self::pipe`]`("control")`.
    pub fn control_endpoint(&self) -> Endpoint {
        if cfg!(windows) {
            Endpoint::Pipe(self.pipe("control"))
        } else {
            Endpoint::Unix(self.run_dir().join("control.sock"))
        }
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

/// FNV-1a, 64 bit: a stable hash (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a
/// temp file beside it, fsync, rename over, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> crate::error::Result<()> {
    use crate::error::HostError;
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(HostError::io(&tmp)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(HostError::io(path)(e));
    }
    // The rename is durable once the directory is (not possible to open on Windows).
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(HostError::io(dir))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_names_are_plain_for_the_default_dir_and_distinct_otherwise() {
        let mut d = StateDir::default_location();
        d.default = true;
        assert_eq!(d.pipe("docker"), r"\\.\pipe\berth_docker");
        let a = StateDir::new("/tmp/a").pipe("docker");
        let b = StateDir::new("/tmp/b").pipe("docker");
        assert!(a.starts_with(r"\\.\pipe\berth_docker_"), "{a}");
        assert_ne!(a, b);
        // Stable across runs and releases.
        assert_eq!(a, StateDir::new("/tmp/a").pipe("docker"));
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn the_endpoint_is_the_socket_on_unix_and_a_pipe_on_windows() {
        let s = StateDir::new("/tmp/s");
        let want = if cfg!(windows) {
            Endpoint::Pipe(s.pipe("docker"))
        } else {
            Endpoint::Unix(s.docker_socket())
        };
        assert_eq!(s.docker_endpoint(), want);
    }
}
