//! Seccomp filters for containers: Berth's default profile (an allow-list with Docker's
//! semantics, see [`default`]), `--security-opt seccomp=unconfined`, and custom profiles in
//! Docker's JSON format (`--security-opt seccomp=profile.json`; the CLI sends the file's
//! content). `--privileged` runs without a filter unless a profile is named, as with Docker.

mod default;
mod profile;

use std::sync::OnceLock;

use oci_spec::runtime::LinuxSeccomp;

pub use profile::{KernelVersion, Target};

use crate::Result;

/// The `seccomp=` value of `--security-opt`, if any.
fn seccomp_opt(security_opt: &[String]) -> Option<&str> {
    security_opt.iter().find_map(|o| {
        o.strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
    })
}

/// Checks a container's `seccomp=` security option at create time.
pub fn validate(security_opt: &[String]) -> Result<()> {
    match seccomp_opt(security_opt) {
        None | Some("unconfined") | Some("builtin") => Ok(()),
        Some(json) => profile::parse(json).map(|_| ()),
    }
}

fn running_kernel() -> Option<KernelVersion> {
    static KERNEL: OnceLock<Option<KernelVersion>> = OnceLock::new();
    *KERNEL.get_or_init(KernelVersion::running)
}

/// The filter for a container with capabilities `caps` (names without `CAP_`), or `None` for
/// none (privileged or `seccomp=unconfined`), on this machine's architecture and kernel.
pub fn for_container(
    privileged: bool,
    security_opt: &[String],
    caps: &[String],
) -> Result<Option<LinuxSeccomp>> {
    let target = Target {
        arch: Target::native_arch(),
        caps: caps.iter().cloned().collect(),
        kernel: running_kernel(),
    };
    for_target(privileged, security_opt, &target)
}

/// [`for_container`] for an explicit architecture, capability set and kernel.
pub fn for_target(
    privileged: bool,
    security_opt: &[String],
    target: &Target,
) -> Result<Option<LinuxSeccomp>> {
    match seccomp_opt(security_opt) {
        Some("unconfined") => Ok(None),
        None | Some("builtin") if privileged => Ok(None),
        None | Some("builtin") => default::profile().to_oci(target),
        Some(json) => profile::parse(json)?.to_oci(target),
    }
}

#[cfg(test)]
mod tests;
