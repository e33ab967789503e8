//! The hypervisor seam. A back-end starts a VM from a [`VmSpec`] and says how to reach its vsock
//! ports; everything above (supervisor, forwarding) is the same for all back-ends.
//!
//! Back-ends: QEMU on Linux ([`qemu`]). macOS Virtualization.framework and Hyper-V/WSL2 fit the
//! same trait (see `docs/design/host.md`); on other platforms [`probe`] returns
//! `HostError::NotSupported`.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::error::Result;

#[cfg(target_os = "linux")]
pub mod qemu;

/// A virtiofs share as the VM sees it.
#[derive(Debug, Clone)]
pub struct ShareDevice {
    /// The back-end's vhost-user socket (virtiofsd).
    pub socket: PathBuf,
    pub tag: String,
}

/// Everything a back-end needs to boot Berth's guest.
#[derive(Debug, Clone)]
pub struct VmSpec {
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
}

/// A way to run VMs on this host.
pub trait Hypervisor: Send + Sync {
    fn name(&self) -> &'static str;
    fn start(&self, spec: &VmSpec) -> Result<Box<dyn VmHandle>>;
}

/// Picks the back-end for this platform.
#[cfg(target_os = "linux")]
pub fn probe() -> Result<Arc<dyn Hypervisor>> {
    Ok(Arc::new(qemu::Qemu))
}

#[cfg(not(target_os = "linux"))]
pub fn probe() -> Result<Arc<dyn Hypervisor>> {
    Err(crate::HostError::NotSupported("running the VM"))
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
