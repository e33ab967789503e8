//! The guest's CPU architecture, as `vm-image/build.sh --arch` built its image: which QEMU,
//! machine and CPU boot it, and which kernel file QEMU loads directly (no firmware).
//!
//! An image says its architecture in `manifest.json` (`"arch"`, Debian's name); an image
//! without a manifest (or an older one without the key) is taken to be the host's own.

use std::path::Path;

use crate::error::{HostError, Result};

/// A guest architecture Berth builds images for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestArch {
    /// `amd64`: q35, the PVH ELF `vmlinux`, console `ttyS0`.
    X86_64,
    /// `arm64`: `virt`, the raw arm64 `Image`, console `ttyAMA0`.
    Aarch64,
}

impl GuestArch {
    /// The architecture this host runs natively.
    pub fn host() -> Self {
        if cfg!(target_arch = "aarch64") {
            Self::Aarch64
        } else {
            Self::X86_64
        }
    }

    /// From Debian's architecture name (`amd64`, `arm64`).
    pub fn from_debian(name: &str) -> Option<Self> {
        match name {
            "amd64" => Some(Self::X86_64),
            "arm64" => Some(Self::Aarch64),
            _ => None,
        }
    }

    /// The architecture of the image in `dir`, from its `manifest.json`.
    pub fn of_image(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::host()),
            Err(source) => return Err(HostError::Io { path, source }),
        };
        let manifest: ManifestArch =
            serde_json::from_slice(&bytes).map_err(|source| HostError::ImageManifest {
                path: path.clone(),
                source,
            })?;
        match manifest.arch {
            None => Ok(Self::host()),
            Some(a) => Self::from_debian(&a).ok_or(HostError::UnsupportedArch { path, arch: a }),
        }
    }

    /// The kernel file in the image directory that QEMU boots with `-kernel`.
    pub fn kernel_file(self) -> &'static str {
        match self {
            Self::X86_64 => "vmlinux",
            Self::Aarch64 => "Image",
        }
    }

    /// The QEMU system emulator for this guest (Linux and macOS; Windows names its own).
    pub fn qemu_program(self) -> &'static str {
        match self {
            Self::X86_64 => "qemu-system-x86_64",
            Self::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The `-machine` type and its options before `accel=`. arm64's `virt` takes the newest
    /// interrupt controller the accelerator offers (GICv3 under TCG, the host's under KVM).
    pub fn machine(self) -> &'static str {
        match self {
            Self::X86_64 => "q35",
            Self::Aarch64 => "virt,gic-version=max",
        }
    }

    /// `-cpu`: the host's CPU with hardware acceleration; under TCG QEMU's default for q35,
    /// and every feature QEMU emulates (`max`) for `virt`, whose default is a 32-bit core.
    /// `max` signs pointers with QARMA, costly to emulate: QEMU's own cheaper algorithm
    /// (`pauth-impdef`) took the kernel to its init in 6.9 s instead of 22.8 s (docs/vm-image.md).
    pub fn cpu(self, hardware: bool) -> Option<&'static str> {
        match (self, hardware) {
            (_, true) => Some("host"),
            (Self::X86_64, false) => None,
            (Self::Aarch64, false) => Some(TCG_ARM64_CPU),
        }
    }
}

/// `-cpu` of an arm64 guest under TCG.
const TCG_ARM64_CPU: &str = "max,pauth-impdef=on";

#[derive(serde::Deserialize)]
struct ManifestArch {
    arch: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(manifest: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(m) = manifest {
            std::fs::write(dir.path().join("manifest.json"), m).unwrap();
        }
        dir
    }

    #[test]
    fn the_manifest_names_the_architecture() {
        let arm = image_with(Some(
            r#"{"arch": "arm64", "kernel": "6.1.0-57-cloud-arm64"}"#,
        ));
        assert_eq!(GuestArch::of_image(arm.path()).unwrap(), GuestArch::Aarch64);
        let x86 = image_with(Some(r#"{"arch": "amd64"}"#));
        assert_eq!(GuestArch::of_image(x86.path()).unwrap(), GuestArch::X86_64);
    }

    #[test]
    fn an_image_without_an_arch_is_the_hosts() {
        let none = image_with(None);
        assert_eq!(GuestArch::of_image(none.path()).unwrap(), GuestArch::host());
        let old = image_with(Some(r#"{"kernel": "6.1.0-56-cloud-amd64"}"#));
        assert_eq!(GuestArch::of_image(old.path()).unwrap(), GuestArch::host());
    }

    #[test]
    fn unknown_or_broken_manifests_are_errors_naming_the_file() {
        let riscv = image_with(Some(r#"{"arch": "riscv64"}"#));
        let e = GuestArch::of_image(riscv.path()).unwrap_err().to_string();
        assert!(e.contains("riscv64") && e.contains("manifest.json"), "{e}");
        let broken = image_with(Some("{"));
        let e = GuestArch::of_image(broken.path()).unwrap_err();
        assert!(matches!(e, HostError::ImageManifest { .. }), "{e:?}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn each_arch_boots_its_own_kernel_with_its_own_qemu() {
        assert_eq!(GuestArch::Aarch64.kernel_file(), "Image");
        assert_eq!(GuestArch::Aarch64.qemu_program(), "qemu-system-aarch64");
        assert_eq!(GuestArch::Aarch64.cpu(false), Some("max,pauth-impdef=on"));
        assert_eq!(GuestArch::X86_64.kernel_file(), "vmlinux");
        assert_eq!(GuestArch::X86_64.cpu(false), None);
        assert_eq!(GuestArch::X86_64.cpu(true), Some("host"));
    }
}
