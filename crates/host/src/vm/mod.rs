//! The hypervisor seam. A back-end starts a VM from a [`VmSpec`] and says how to reach its vsock
//! ports; everything above (supervisor, forwarding) is the same for all back-ends.
//!
//! Back-ends: QEMU with KVM/TCG on Linux ([`qemu`]), QEMU with the Windows Hypervisor Platform
//! on Windows ([`whpx`]), Apple's Virtualization.framework on macOS ([`vz`]). Where there is
//! none [`probe`] returns `HostError::NotSupported`. What each back-end asks of its VM
//! (arguments, devices) is plain code, compiled and unit-tested on every platform.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_vsock::Connector;
use futures::future::BoxFuture;

use crate::error::Result;
use crate::{Config, StateDir};
pub use arch::GuestArch;

pub mod arch;
pub mod monitor;
pub mod qemu;
pub mod serial;
pub mod vz;
pub mod whpx;

/// A shared host folder as the VM sees it.
#[derive(Debug, Clone)]
pub struct ShareDevice {
    /// The back-end's vhost-user socket (virtiofsd), for [`Shares::Virtiofsd`] back-ends.
    pub socket: PathBuf,
    /// The host folder.
    pub dir: PathBuf,
    pub tag: String,
}

/// How a back-end shares host folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shares {
    /// One virtiofsd per share (vhost-user-fs), started by the supervisor.
    Virtiofsd,
    /// The back-end shares the folders itself (macOS: `VZSharedDirectory`); no helper runs.
    Builtin,
    /// The host serves each folder over 9P ([`crate::ninep`]) on a stream to the guest: a
    /// vsock connection, or over virtio-serial a port of the share's own ([`serial`], Windows).
    NineP,
    /// Not carried yet: the VM boots without shares (see `docs/design/host.md`).
    Unsupported,
}

/// Everything a back-end needs to boot Berth's guest.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// The image's architecture (its QEMU, machine, CPU and kernel file).
    pub arch: GuestArch,
    pub cpus: u32,
    pub memory_mib: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub rootfs: PathBuf,
    pub cmdline: String,
    pub data_disk: PathBuf,
    pub console_log: PathBuf,
    /// vhost-user socket of the vsock device back-end.
    pub vhost_vsock_socket: PathBuf,
    pub shares: Vec<ShareDevice>,
    pub monitor_socket: PathBuf,
    pub pid_file: PathBuf,
    pub log_file: PathBuf,
    pub kvm: bool,
    /// The engine's daemon.json for this boot (the guest reads it before starting the engine).
    pub daemon_json: Option<PathBuf>,
    /// Free-page reporting (virtio-balloon): freed guest memory returns to the host.
    pub free_page_reporting: bool,
    /// Discards from the guest reach the data disk image (it shrinks after fstrim).
    pub disk_discard: bool,
}

/// A running VM.
pub trait VmHandle: Send {
    fn pid(&self) -> Option<u32>;
    /// Resolves when the VM has stopped (guest power-off or crash).
    fn wait(&mut self) -> BoxFuture<'_, ()>;
    /// Asks for an ACPI power-off (the guest's orderly shutdown).
    fn power_button(&mut self) -> BoxFuture<'_, Result<()>>;
    /// Stops it now.
    fn kill(&mut self) -> BoxFuture<'_, ()>;
    /// What pauses and resumes this VM's CPUs (auto-pause, [`crate::idle`]); `None` when the
    /// back-end cannot.
    fn pauser(&self) -> Option<Arc<dyn Pauser>> {
        None
    }
}

/// Stops a running VM's CPUs and starts them again; memory and devices stay as they are.
pub trait Pauser: Send + Sync {
    fn pause(&self) -> BoxFuture<'_, Result<()>>;
    fn resume(&self) -> BoxFuture<'_, Result<()>>;
}

/// A way to run VMs on this host.
pub trait Hypervisor: Send + Sync {
    fn name(&self) -> &'static str;
    fn start(&self, spec: &VmSpec) -> Result<Box<dyn VmHandle>>;
    /// How host folders reach the guest.
    fn shares(&self) -> Shares {
        Shares::Virtiofsd
    }
    /// How the host reaches the guest's ports when the back-end carries them itself (macOS:
    /// the VM's socket device); `None` means the platform's transport (vhost-device-vsock on
    /// unix, QEMU's named pipes on Windows).
    fn connector(&self) -> Option<Arc<dyn Connector>> {
        None
    }
    /// Makes sure the data disk kept at `qcow2` exists in the form this back-end reads, and
    /// returns the file to boot with (`VmSpec::data_disk`): the qcow2 itself, made by
    /// `qemu-img` on first start, for the QEMU back-ends.
    fn prepare_data_disk<'a>(
        &'a self,
        qcow2: &'a Path,
        gib: u32,
    ) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(async move {
            crate::disk::ensure_data_disk(qcow2, gib).await?;
            Ok(qcow2.to_path_buf())
        })
    }
}

/// Picks the back-end for this platform.
#[cfg(target_os = "linux")]
pub fn probe(state: &StateDir, config: &Config) -> Result<Arc<dyn Hypervisor>> {
    Ok(Arc::new(qemu::Qemu::new(state, config)))
}

#[cfg(windows)]
pub fn probe(state: &StateDir, config: &Config) -> Result<Arc<dyn Hypervisor>> {
    Ok(Arc::new(whpx::Whpx::new(state, config)))
}

#[cfg(target_os = "macos")]
pub fn probe(_state: &StateDir, _config: &Config) -> Result<Arc<dyn Hypervisor>> {
    Ok(Arc::new(vz::Vz::new()?))
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub fn probe(_state: &StateDir, _config: &Config) -> Result<Arc<dyn Hypervisor>> {
    Err(crate::HostError::NotSupported("running the VM"))
}

/// How a VM with this `accel` setting runs, for `berth status` and `berth start -v`: `kvm`, or
/// `tcg` with the reason KVM is not used.
pub fn accel_description(accel: &str) -> String {
    if want_kvm(accel) {
        return "kvm".into();
    }
    let why = match accel {
        "tcg" => "accel is set to tcg",
        _ if !std::path::Path::new("/dev/kvm").exists() => "no /dev/kvm on this host",
        _ if std::env::var("BERTH_KVM").as_deref() != Ok("1") => {
            "KVM is used only with BERTH_KVM=1 or accel \"kvm\" (notes/vm.md §1)"
        }
        _ => "/dev/kvm cannot be opened read-write",
    };
    format!("tcg (software emulation, slower: {why})")
}

/// Whether to use KVM: `tcg`/`kvm` force it; `auto` uses KVM only when `BERTH_KVM=1` and
/// `/dev/kvm` opens read-write. On the dev machine /dev/kvm opens but guests hang (nested
/// virtualisation without the CPU features), so opening it is not proof enough to default to it.
pub fn want_kvm(accel: &str) -> bool {
    match accel {
        "kvm" => true,
        "tcg" => false,
        _ => {
            std::env::var("BERTH_KVM").as_deref() == Ok("1")
                && std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/kvm")
                    .is_ok()
        }
    }
}

/// A QEMU command line as one string, for tests that look for arguments in it.
#[cfg(test)]
pub(crate) fn joined_args(args: Vec<std::ffi::OsString>) -> String {
    args.into_iter()
        .map(|s| s.into_string().expect("UTF-8 argument"))
        .collect::<Vec<_>>()
        .join(" ")
}
