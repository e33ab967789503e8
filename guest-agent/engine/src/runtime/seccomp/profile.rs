//! Seccomp profiles in Docker's JSON format (moby's `seccomp.Seccomp`, the format of its
//! `default.json`) and their translation into the OCI filter for one container.
//!
//! A rule applies when its `includes` hold (every listed capability is held, the native
//! architecture is listed, the running kernel is at least `minKernel`) and its `excludes` do
//! not (no listed capability is held, the native architecture is not listed, the kernel is
//! older than `minKernel`). `archMap` keeps only the entry of the native architecture with its
//! sub-architectures (x86_64 with x86 and x32), as dockerd does.

use std::collections::BTreeSet;
use std::fmt;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::{Deserialize, Deserializer};

use crate::{EngineError, Result};

/// A whole profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Profile {
    #[serde(default)]
    pub default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<Arch>,
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub syscalls: Vec<Rule>,
}

/// An `archMap` entry: a native architecture and the ABIs it also runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ArchMap {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<Arch>,
}

/// One rule: an action for some system calls, maybe only for some arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Rule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub args: Vec<LinuxSeccompArg>,
    #[serde(default)]
    pub includes: Option<Filter>,
    #[serde(default)]
    pub excludes: Option<Filter>,
}

/// The `includes` / `excludes` conditions of a rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Filter {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<KernelVersion>,
}

/// A kernel version as `major.minor` (Docker's `minKernel`; the patch level is not compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parses `major.minor[.patch][-extra]`, as `uname -r` or a profile's `minKernel`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }

    /// The running kernel's version (`None` when it cannot be read).
    pub fn running() -> Option<Self> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        Self::parse(release.trim())
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = Self::parse(&s).filter(|_| s.split('.').count() == 2);
        v.ok_or_else(|| serde::de::Error::custom(format!("invalid kernel version: {s}")))
    }
}

fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// What a profile is translated for: the native architecture (Docker's names: `amd64`,
/// `arm64`), the capabilities the container holds (without `CAP_`) and the running kernel.
#[derive(Debug, Clone)]
pub struct Target {
    pub arch: &'static str,
    pub caps: BTreeSet<String>,
    pub kernel: Option<KernelVersion>,
}

impl Target {
    /// Docker's name for the architecture this engine runs on.
    pub fn native_arch() -> &'static str {
        if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        }
    }

    fn holds(&self, cap: &str) -> bool {
        self.caps.contains(cap.trim_start_matches("CAP_"))
    }

    fn kernel_at_least(&self, v: KernelVersion) -> bool {
        // An unknown kernel is taken as new: Berth's kernels all are.
        self.kernel.is_none_or(|k| k >= v)
    }

    /// The OCI architecture of [`Target::arch`].
    fn oci_arch(&self) -> Option<Arch> {
        match self.arch {
            "amd64" => Some(Arch::ScmpArchX86_64),
            "arm64" => Some(Arch::ScmpArchAarch64),
            _ => None,
        }
    }
}

pub(super) fn oci_err(e: oci_spec::OciSpecError) -> EngineError {
    EngineError::internal(format!("seccomp profile: {e}"))
}

pub(super) fn parse(json: &str) -> Result<Profile> {
    let p: Profile = serde_json::from_str(json)
        .map_err(|e| EngineError::invalid(format!("decoding seccomp profile failed: {e}")))?;
    p.check()?;
    Ok(p)
}

impl Filter {
    /// Whether every condition of an `includes` holds.
    fn all_hold(&self, t: &Target) -> bool {
        self.caps.iter().all(|c| t.holds(c))
            && (self.arches.is_empty() || self.arches.iter().any(|a| a == t.arch))
            && self.min_kernel.is_none_or(|v| t.kernel_at_least(v))
    }

    /// Whether any condition of an `excludes` holds.
    fn any_holds(&self, t: &Target) -> bool {
        self.caps.iter().any(|c| t.holds(c))
            || self.arches.iter().any(|a| a == t.arch)
            || self.min_kernel.is_some_and(|v| t.kernel_at_least(v))
    }
}

impl Rule {
    fn applies(&self, t: &Target) -> bool {
        self.includes.as_ref().is_none_or(|f| f.all_hold(t))
            && !self.excludes.as_ref().is_some_and(|f| f.any_holds(t))
    }

    fn all_names(&self) -> Vec<String> {
        self.name.iter().chain(self.names.iter()).cloned().collect()
    }

    fn to_oci(&self) -> Result<LinuxSyscall> {
        let mut b = LinuxSyscallBuilder::default()
            .names(self.all_names())
            .action(self.action);
        if let Some(e) = self.errno_ret {
            b = b.errno_ret(e);
        }
        if !self.args.is_empty() {
            b = b.args(self.args.clone());
        }
        b.build().map_err(oci_err)
    }
}

impl Profile {
    /// The checks dockerd makes before using a profile, with its messages.
    fn check(&self) -> Result<()> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(EngineError::invalid(
                "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'",
            ));
        }
        if self
            .syscalls
            .iter()
            .any(|r| r.name.as_deref().is_some_and(|n| !n.is_empty()) && !r.names.is_empty())
        {
            return Err(EngineError::invalid(
                "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'",
            ));
        }
        Ok(())
    }

    /// The architectures of the filter: `architectures`, or the native entry of `archMap`.
    fn arches(&self, t: &Target) -> Vec<Arch> {
        if !self.architectures.is_empty() {
            return self.architectures.clone();
        }
        let native = t.oci_arch();
        self.arch_map
            .iter()
            .find(|m| Some(m.architecture) == native)
            .map(|m| {
                let mut v = vec![m.architecture];
                v.extend(m.sub_architectures.iter().copied());
                v
            })
            .unwrap_or_default()
    }

    /// The OCI filter for `t`, or `None` for a profile without default action nor rules
    /// (which dockerd takes as no filter).
    pub(super) fn to_oci(&self, t: &Target) -> Result<Option<LinuxSeccomp>> {
        let Some(default_action) = self.default_action else {
            if self.syscalls.is_empty() {
                return Ok(None);
            }
            return Err(EngineError::invalid(
                "decoding seccomp profile failed: missing field `defaultAction`",
            ));
        };
        let rules = self
            .syscalls
            .iter()
            .filter(|r| r.applies(t) && !r.all_names().is_empty())
            .map(Rule::to_oci)
            .collect::<Result<Vec<_>>>()?;
        let mut b = LinuxSeccompBuilder::default()
            .default_action(default_action)
            .syscalls(rules);
        let arches = self.arches(t);
        if !arches.is_empty() {
            b = b.architectures(arches);
        }
        if !self.flags.is_empty() {
            b = b.flags(self.flags.clone());
        }
        if let Some(e) = self.default_errno_ret {
            b = b.default_errno_ret(e);
        }
        b.build().map_err(oci_err).map(Some)
    }
}
