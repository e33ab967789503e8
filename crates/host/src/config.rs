//! `config.json`: what the user may change. Missing keys take defaults; a missing file is
//! written with the defaults on first start.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{HostError, Result};
use crate::StateDir;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
    /// Host folders shared into the VM at the same path (virtiofs).
    pub shares: Vec<PathBuf>,
    /// Where the guest image lives (`vmlinux` or arm64's `Image`, `initrd.img`, `rootfs.img`,
    /// `cmdline`, `manifest.json`); by default the image of the host's architecture.
    pub image_dir: PathBuf,
    /// Where `vhost-device-vsock` and `virtiofsd` are (`bin/` below it).
    pub tools_dir: PathBuf,
    /// `auto` (TCG unless `BERTH_KVM=1` and /dev/kvm opens), `kvm` or `tcg`.
    pub accel: String,
    /// Registry mirrors as the guest must reach them (e.g. `http://10.0.2.2:5000`).
    pub registry_mirrors: Vec<String>,
    /// How often the supervisor restarts a VM that died, before giving up.
    pub max_restarts: u32,
    /// Also make `system_socket_path` a symlink to Berth's socket at start, when it is free
    /// (`berth start --system-socket` does it for one start).
    pub system_socket: bool,
    /// Where the system socket link goes (on Windows: the standard pipe the supervisor also
    /// serves, `\\.\pipe\docker_engine`).
    pub system_socket_path: PathBuf,
    /// Keep ports published on every address (`-p 8080:80`) on the host's loopback
    /// (127.0.0.1 and [::1]) instead of all its addresses (0.0.0.0 and [::], as `docker ps`
    /// shows and Docker Desktop does). `-p 127.0.0.1:8080:80` is loopback either way.
    pub ports_on_localhost: bool,
    /// virtio-balloon free-page reporting: memory the guest frees goes back to the host.
    pub free_page_reporting: bool,
    /// Pass the guest's discards (fstrim) to the qcow2, which then shrinks.
    pub disk_discard: bool,
    /// Pause the VM's CPUs after this many seconds with no client connected and no container
    /// running (resumed by the next client, [`crate::idle`]); 0 never pauses.
    pub auto_pause_secs: u64,
    /// How shares travel: `"virtiofs"` or `"9p"` (the host's own 9P server over the VM's
    /// stream); absent, the back-end's own way (virtiofs on Linux and macOS, 9P on Windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_transport: Option<berth_agent_proto::ShareTransport>,
    /// How the host reaches the guest's ports on Linux: `"vsock"` (vhost-device-vsock, the
    /// default) or `"virtio-serial"`, the Windows transport (a virtio-serial port per guest
    /// port and per 9P share, host ends unix sockets QEMU listens on: [`crate::vm::serial`]),
    /// there to test it in a real VM on Linux. Other platforms use their own either way.
    pub guest_ports: GuestPorts,
    /// virtiofsd's `--cache` for every share: `auto` (entries and attributes kept 1 s, pages
    /// dropped on open), `always`, `metadata` or `never`.
    pub virtiofs_cache: String,
}

/// What carries the guest's ports ([`Config::guest_ports`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuestPorts {
    #[default]
    Vsock,
    VirtioSerial,
}

/// Where the guest image and tools live by default: `/root/.cache/berth` on Linux (where
/// `vm-image/build.sh` and `scripts/install-vm-tools.sh` put them), `%LOCALAPPDATA%\berth` on
/// Windows, `~/Library/Caches/berth` on macOS.
fn cache_dir() -> PathBuf {
    let (var, sub): (&str, &[&str]) = if cfg!(windows) {
        ("LOCALAPPDATA", &["berth"])
    } else if cfg!(target_os = "macos") {
        ("HOME", &["Library", "Caches", "berth"])
    } else {
        return PathBuf::from("/root/.cache/berth");
    };
    match std::env::var_os(var) {
        Some(d) => sub.iter().fold(PathBuf::from(d), |p, s| p.join(s)),
        None => PathBuf::from("/root/.cache/berth"),
    }
}

/// Where a package put a folder of Berth's beside its binaries: `<bin>/../lib/berth/<name>`, as the
/// `.deb` installs `/usr/bin/berth` with `/usr/lib/berth/vm-image` and `/usr/lib/berth/tools`
/// (`scripts/package.sh`, docs/design/host.md "Packaging"). Taken only when `marker` is in it,
/// so an empty or half-installed folder does not hide the cache.
fn packaged_dir(exe: Option<&Path>, name: &str, marker: &str) -> Option<PathBuf> {
    let dir = exe?
        .parent()?
        .parent()?
        .join("lib")
        .join("berth")
        .join(name);
    dir.join(marker).exists().then_some(dir)
}

/// Where `vm-image/build.sh` puts the host architecture's image below its cache `vm_image`:
/// `out/` for amd64 (the original layout), `arm64/out/` for arm64.
fn default_image_dir(vm_image: &Path) -> PathBuf {
    match crate::vm::GuestArch::host() {
        crate::vm::GuestArch::X86_64 => vm_image.join("out"),
        crate::vm::GuestArch::Aarch64 => vm_image.join("arm64").join("out"),
    }
}

impl Default for Config {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from);
        let cache = cache_dir();
        let exe = std::env::current_exe().ok();
        let packaged = |name, marker| packaged_dir(exe.as_deref(), name, marker);
        Self {
            cpus: 2,
            memory_mib: 1024,
            disk_gib: 16,
            shares: home.into_iter().collect(),
            image_dir: packaged("vm-image", "cmdline")
                .unwrap_or_else(|| default_image_dir(&cache.join("vm-image"))),
            tools_dir: packaged("tools", "bin").unwrap_or_else(|| cache.join("tools")),
            accel: "auto".into(),
            registry_mirrors: vec![],
            max_restarts: 3,
            system_socket: false,
            system_socket_path: PathBuf::from(if cfg!(windows) {
                crate::endpoint::DOCKER_ENGINE_PIPE
            } else {
                "/var/run/docker.sock"
            }),
            ports_on_localhost: false,
            free_page_reporting: true,
            disk_discard: true,
            auto_pause_secs: 300,
            share_transport: None,
            guest_ports: GuestPorts::Vsock,
            virtiofs_cache: "auto".into(),
        }
    }
}

impl Config {
    /// Reads `config.json`, writing the defaults if there is none.
    pub fn load_or_init(state: &StateDir) -> Result<Self> {
        let path = state.config_file();
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| HostError::Config { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let c = Self::default();
                c.save(state)?;
                Ok(c)
            }
            Err(e) => Err(HostError::Io { path, source: e }),
        }
    }

    /// Writes atomically (temp file, then rename).
    pub fn save(&self, state: &StateDir) -> Result<()> {
        let path = state.config_file();
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(self).map_err(|source| HostError::Config {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, body).map_err(HostError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(HostError::io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_defaults() {
        let c: Config = serde_json::from_str(r#"{"cpus": 4}"#).unwrap();
        assert_eq!(c.cpus, 4);
        assert_eq!(c.memory_mib, 1024);
    }

    #[test]
    fn guest_ports_default_to_vsock_and_name_virtio_serial() {
        assert_eq!(Config::default().guest_ports, GuestPorts::Vsock);
        let c: Config = serde_json::from_str(r#"{"guest_ports": "virtio-serial"}"#).unwrap();
        assert_eq!(c.guest_ports, GuestPorts::VirtioSerial);
        assert!(serde_json::from_str::<Config>(r#"{"guest_ports": "serial"}"#).is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(serde_json::from_str::<Config>(r#"{"cpu": 4}"#).is_err());
    }

    #[test]
    fn packaged_folders_beside_the_binary_are_found_when_complete() {
        let root = tempfile::tempdir().unwrap();
        let exe = root.path().join("usr/bin/berth");
        let image = root.path().join("usr/lib/berth/vm-image");
        std::fs::create_dir_all(&image).unwrap();
        // An empty folder (no `cmdline`) is not an image.
        assert_eq!(packaged_dir(Some(&exe), "vm-image", "cmdline"), None);
        std::fs::write(image.join("cmdline"), "console=ttyS0").unwrap();
        assert_eq!(packaged_dir(Some(&exe), "vm-image", "cmdline"), Some(image));
        assert_eq!(packaged_dir(Some(&exe), "tools", "bin"), None);
        assert_eq!(packaged_dir(None, "vm-image", "cmdline"), None);
    }

    #[test]
    fn first_load_writes_defaults() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        s.create().unwrap();
        let c = Config::load_or_init(&s).unwrap();
        assert!(s.config_file().exists());
        assert_eq!(Config::load_or_init(&s).unwrap(), c);
    }
}
