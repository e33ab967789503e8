//! macOS back-end: Apple's Virtualization.framework (VZ), in-process, through
//! `objc2-virtualization`. The VM boots the same kernel, initrd and read-only root as on Linux
//! (`VZLinuxBootLoader`); the data disk is the raw sparse image of [`crate::disk::raw`] (VZ
//! does not read qcow2); guest ports are reached through `VZVirtioSocketDevice`, which is a
//! [`berth_vsock::Connector`] like the other transports, so the multiplexed control and
//! forwarding protocol above is unchanged; shares are virtiofs devices backed by
//! `VZSharedDirectory`; NAT networking, a memory balloon, entropy, the console (`hvc0`) written
//! to the console log, and Rosetta for x86_64 binaries on Apple silicon when installed.
//!
//! This file is the platform-independent half: which devices a [`VmSpec`] asks for
//! ([`plan`]), their tags and identifiers, the kernel command line. It is compiled and
//! unit-tested on every platform. The Objective-C calls live in `vz/sys.rs`, compiled only
//! for macOS (checked here with `cargo clippy --target aarch64-apple-darwin`; running it needs
//! a Mac, see `docs/design/host.md`).

use std::path::PathBuf;

use super::VmSpec;

#[cfg(target_os = "macos")]
mod sys;
#[cfg(target_os = "macos")]
pub use sys::{Vz, VzConnector};

/// virtiofs tag of the Rosetta share (the guest mounts it and registers it with binfmt_misc).
pub const ROSETTA_TAG: &str = "rosetta";
/// VZ refuses virtiofs tags longer than this (`VZVirtioFileSystemDeviceConfiguration`).
pub const MAX_TAG_BYTES: usize = 36;
/// virtio-blk serial (`blockDeviceIdentifier`) of the data disk; the guest finds it by it.
pub const DATA_DISK_ID: &str = "berth-data";
/// virtio-blk serial of the read-only root.
pub const ROOT_DISK_ID: &str = "berth-root";
/// VZ's console is virtio-console: the guest writes it to `hvc0`, there is no 16550 UART.
pub const CONSOLE: &str = "hvc0";

/// A block device of the VM, in the order the guest sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub read_only: bool,
    /// The virtio-blk serial.
    pub id: &'static str,
}

/// A host folder as a virtiofs device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub tag: String,
    pub dir: PathBuf,
    pub read_only: bool,
}

/// Whether this Mac can give the guest Rosetta (`VZLinuxRosettaDirectoryShare.availability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rosetta {
    /// Intel Macs, or macOS before 13.
    Unsupported,
    /// Apple silicon without Rosetta installed (`softwareupdate --install-rosetta`).
    NotInstalled,
    Installed,
}

/// What the host allows (`VZVirtualMachineConfiguration`'s minimum/maximum CPU count and
/// memory size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub cpus: (u32, u32),
    pub memory_bytes: (u64, u64),
}

/// Every device of the VM, decided from a [`VmSpec`]. NAT networking, one entropy device and
/// one virtio socket device are always there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub console_log: PathBuf,
    /// The data disk first, then the root (the guest's fallback order without serials).
    pub disks: Vec<Disk>,
    pub shares: Vec<Share>,
    /// Add the Rosetta share (tag [`ROSETTA_TAG`]).
    pub rosetta: bool,
    /// A traditional memory balloon (VZ has no free-page reporting; the host can still set a
    /// target size).
    pub balloon: bool,
}

/// Why a spec cannot become a VZ configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("share tag {0:?} is empty or longer than {MAX_TAG_BYTES} bytes")]
    BadTag(String),
    #[error("share tag {0:?} is used twice")]
    DuplicateTag(String),
}

/// The VM `spec` describes on a host with these `limits` and Rosetta availability.
/// `spec.data_disk` is the raw image the back-end's `prepare_data_disk` returned.
pub fn plan(spec: &VmSpec, limits: Limits, rosetta: Rosetta) -> Result<Plan, PlanError> {
    let mut shares = Vec::new();
    for s in &spec.shares {
        check_tag(&s.tag)?;
        if s.tag == ROSETTA_TAG || shares.iter().any(|x: &Share| x.tag == s.tag) {
            return Err(PlanError::DuplicateTag(s.tag.clone()));
        }
        shares.push(Share {
            tag: s.tag.clone(),
            dir: s.dir.clone(),
            read_only: false,
        });
    }
    Ok(Plan {
        cpus: spec
            .cpus
            .clamp(limits.cpus.0, limits.cpus.1.max(limits.cpus.0)),
        memory_bytes: memory_bytes(spec.memory_mib, limits),
        kernel: spec.kernel.clone(),
        initrd: spec.initrd.clone(),
        cmdline: cmdline(&spec.cmdline),
        console_log: spec.console_log.clone(),
        disks: vec![
            Disk {
                path: spec.data_disk.clone(),
                read_only: false,
                id: DATA_DISK_ID,
            },
            Disk {
                path: spec.rootfs.clone(),
                read_only: true,
                id: ROOT_DISK_ID,
            },
        ],
        shares,
        rosetta: rosetta == Rosetta::Installed,
        balloon: true,
    })
}

/// The spec's memory in bytes, within the host's limits and a whole number of MiB (VZ wants
/// a multiple of 1 MiB).
fn memory_bytes(mib: u32, limits: Limits) -> u64 {
    const MIB: u64 = 1 << 20;
    let (lo, hi) = limits.memory_bytes;
    let b = (u64::from(mib) * MIB).clamp(lo, hi.max(lo));
    // Whole MiB, rounding down unless that falls below the minimum.
    let down = b / MIB * MIB;
    if down >= lo {
        down
    } else {
        b.div_ceil(MIB) * MIB
    }
}

/// The image's command line for VZ: its console is `hvc0` (no serial UART).
pub fn cmdline(base: &str) -> String {
    let mut out: Vec<String> = base
        .split_whitespace()
        .filter(|w| !w.starts_with("console="))
        .map(str::to_string)
        .collect();
    out.insert(0, format!("console={CONSOLE}"));
    out.join(" ")
}

/// A virtiofs tag VZ accepts: 1 to [`MAX_TAG_BYTES`] bytes.
pub fn check_tag(tag: &str) -> Result<(), PlanError> {
    if tag.is_empty() || tag.len() > MAX_TAG_BYTES {
        return Err(PlanError::BadTag(tag.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::ShareDevice;

    fn spec() -> VmSpec {
        VmSpec {
            arch: crate::vm::GuestArch::host(),
            cpus: 2,
            memory_mib: 2048,
            kernel: "/img/vmlinux".into(),
            initrd: "/img/initrd.img".into(),
            rootfs: "/img/rootfs.img".into(),
            cmdline: "console=ttyS0 panic=-1 quiet berth.time=5".into(),
            data_disk: "/s/disk/data.img".into(),
            console_log: "/s/logs/console.log".into(),
            vhost_vsock_socket: PathBuf::new(),
            shares: vec![ShareDevice {
                socket: PathBuf::new(),
                dir: "/Users/u".into(),
                tag: "share0".into(),
            }],
            monitor_socket: PathBuf::new(),
            pid_file: "/s/run/qemu.pid".into(),
            log_file: "/s/logs/qemu.log".into(),
            kvm: false,
            daemon_json: None,
            free_page_reporting: true,
            disk_discard: true,
        }
    }

    const ROOMY: Limits = Limits {
        cpus: (1, 10),
        memory_bytes: (128 << 20, 64 << 30),
    };

    #[test]
    fn the_plan_has_our_boot_files_raw_data_disk_then_read_only_root() {
        let p = plan(&spec(), ROOMY, Rosetta::Unsupported).unwrap();
        assert_eq!(p.kernel, PathBuf::from("/img/vmlinux"));
        assert_eq!(p.initrd, PathBuf::from("/img/initrd.img"));
        assert_eq!(p.cmdline, "console=hvc0 panic=-1 quiet berth.time=5");
        assert_eq!(p.cpus, 2);
        assert_eq!(p.memory_bytes, 2048 << 20);
        assert_eq!(
            p.disks,
            vec![
                Disk {
                    path: "/s/disk/data.img".into(),
                    read_only: false,
                    id: DATA_DISK_ID
                },
                Disk {
                    path: "/img/rootfs.img".into(),
                    read_only: true,
                    id: ROOT_DISK_ID
                },
            ]
        );
        assert_eq!(
            p.shares,
            vec![Share {
                tag: "share0".into(),
                dir: "/Users/u".into(),
                read_only: false
            }]
        );
        assert!(p.balloon);
        assert!(!p.rosetta);
        assert_eq!(p.console_log, PathBuf::from("/s/logs/console.log"));
    }

    #[test]
    fn rosetta_only_when_installed() {
        for (r, want) in [
            (Rosetta::Unsupported, false),
            (Rosetta::NotInstalled, false),
            (Rosetta::Installed, true),
        ] {
            assert_eq!(plan(&spec(), ROOMY, r).unwrap().rosetta, want);
        }
    }

    #[test]
    fn cpus_and_memory_are_kept_within_the_hosts_limits() {
        let tight = Limits {
            cpus: (1, 1),
            memory_bytes: (4 << 30, (8 << 30) + 1),
        };
        let p = plan(&spec(), tight, Rosetta::Unsupported).unwrap();
        assert_eq!(p.cpus, 1);
        assert_eq!(p.memory_bytes, 4 << 30);
        let mut big = spec();
        big.memory_mib = 64 * 1024;
        let p = plan(&big, tight, Rosetta::Unsupported).unwrap();
        assert_eq!(p.memory_bytes, 8 << 30);
    }

    #[test]
    fn share_tags_are_checked() {
        let mut s = spec();
        s.shares[0].tag = "x".repeat(MAX_TAG_BYTES + 1);
        assert!(matches!(
            plan(&s, ROOMY, Rosetta::Installed),
            Err(PlanError::BadTag(_))
        ));
        let mut s = spec();
        s.shares[0].tag = ROSETTA_TAG.into();
        assert!(matches!(
            plan(&s, ROOMY, Rosetta::Installed),
            Err(PlanError::DuplicateTag(_))
        ));
        assert!(check_tag("share0").is_ok());
        assert!(check_tag("").is_err());
    }

    #[test]
    fn the_console_is_hvc0_whatever_the_image_says() {
        assert_eq!(cmdline("quiet"), "console=hvc0 quiet");
        assert_eq!(
            cmdline("console=ttyS0 console=tty0 rdinit=/init"),
            "console=hvc0 rdinit=/init"
        );
    }
}
