//! Builds OCI runtime specs (`config.json`) and exec process specs the way dockerd does:
//! namespaces, Docker's default capabilities ([`caps`]), masked and read-only paths, default
//! mounts and the container's own ([`mounts`]), device rules ([`devices`]) and resources
//! ([`resources`]).

mod caps;
mod devices;
mod mounts;
mod process;
mod resources;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use oci_spec::runtime::{
    Linux, LinuxBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, RootBuilder,
    Spec, SpecBuilder,
};

pub use self::caps::{capabilities, capabilities_within, DEFAULT_CAPS};
pub use self::process::build_process;
pub use self::resources::limits;
use crate::{EngineError, Result};

pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// How the container gets one of its namespaces.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum NsMode {
    /// Share the host's.
    Host,
    /// A fresh one made by the runtime (for the network: only `lo`).
    #[default]
    New,
    /// Join an existing one (another container's, or one the engine prepared).
    Path(PathBuf),
}

/// The network namespace's mode.
pub type NetNs = NsMode;

/// A bind mount of the container (volume, host path, /etc/hosts …).
#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// The process half of a spec, shared by the container's init and exec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessInput {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub console_size: Option<(u16, u16)>,
    pub caps: Vec<String>,
    pub no_new_privileges: bool,
    /// `--ulimit`: name (`nofile`), soft, hard.
    pub rlimits: Vec<(String, u64, u64)>,
}

/// A host device given to the container (`--device /dev/x[:/dev/y[:rwm]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMapping {
    pub host: PathBuf,
    pub container: String,
    pub permissions: String,
}

/// Resource limits in Docker's units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub pids_limit: Option<i64>,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
}

/// Everything a container spec is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecInput {
    pub process: ProcessInput,
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub hostname: String,
    /// `--domainname` (the UTS namespace's NIS domain).
    pub domainname: String,
    /// `--sysctl` (namespaced kernel parameters; the runtime refuses others).
    pub sysctls: BTreeMap<String, String>,
    /// `--oom-score-adj` of the container's init.
    pub oom_score_adj: i64,
    pub privileged: bool,
    pub netns: Option<NetNs>,
    /// `--pid`, `--ipc`, `--uts`: host, private, or another container's.
    pub pid_ns: NsMode,
    pub ipc_ns: NsMode,
    pub uts_ns: NsMode,
    /// `--ipc none`: no `/dev/shm` at all.
    pub no_shm: bool,
    pub cgroup_ns: bool,
    pub cgroups_path: String,
    pub mounts: Vec<BindMount>,
    /// tmpfs mounts: destination and mount options (`size=…`, `mode=…`, `noexec` …).
    pub tmpfs: Vec<(String, Vec<String>)>,
    pub resources: Resources,
    pub shm_size: i64,
    /// Host devices made in the container and allowed by its device cgroup.
    pub devices: Vec<DeviceMapping>,
    /// The seccomp filter (see [`super::seccomp`]); `None` runs unfiltered.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

fn oci_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::internal(format!("invalid runtime spec: {e}"))
}

fn namespace(typ: LinuxNamespaceType, path: Option<&PathBuf>) -> Result<LinuxNamespace> {
    let mut b = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p.clone());
    }
    b.build().map_err(oci_err)
}

/// The namespaces the runtime makes or joins: pid, ipc, uts, mount, network, and a cgroup
/// namespace when asked for; a host one is left out (shared).
fn namespaces(input: &SpecInput) -> Result<Vec<LinuxNamespace>> {
    let mut namespaces = vec![];
    let (default_net, own_mount) = (NsMode::New, NsMode::New);
    for (typ, mode) in [
        (LinuxNamespaceType::Pid, &input.pid_ns),
        (LinuxNamespaceType::Ipc, &input.ipc_ns),
        (LinuxNamespaceType::Uts, &input.uts_ns),
        (LinuxNamespaceType::Mount, &own_mount),
        (
            LinuxNamespaceType::Network,
            input.netns.as_ref().unwrap_or(&default_net),
        ),
    ] {
        match mode {
            NsMode::Host => {}
            NsMode::New => namespaces.push(namespace(typ, None)?),
            NsMode::Path(p) => namespaces.push(namespace(typ, Some(p))?),
        }
    }
    if input.cgroup_ns {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None)?);
    }
    Ok(namespaces)
}

/// The spec's `linux` part: namespaces, masked paths, resources, cgroup path, seccomp,
/// sysctls and device nodes.
fn linux(input: &SpecInput) -> Result<Linux> {
    let (masked, readonly): (Vec<String>, Vec<String>) = if input.privileged {
        (vec![], vec![])
    } else {
        (
            MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        )
    };
    let (device_nodes, device_cgroup) = devices::host_devices(&input.devices)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(input)?)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .resources(resources::resources(input, device_cgroup)?)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .build()
        .map_err(oci_err)?;
    linux.set_seccomp(input.seccomp.clone());
    let mut sysctls: HashMap<String, String> = input
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if input.uts_ns == NsMode::New && !input.domainname.is_empty() {
        // runc 1.1 ignores the spec's `domainname`; the sysctl has the same effect (dockerd
        // sets it so too).
        sysctls.insert("kernel.domainname".into(), input.domainname.clone());
    }
    if !sysctls.is_empty() {
        linux.set_sysctl(Some(sysctls));
    }
    if !device_nodes.is_empty() {
        linux.set_devices(Some(device_nodes));
    }
    Ok(linux)
}

/// The container's full runtime spec.
pub fn build_spec(input: &SpecInput) -> Result<Spec> {
    let linux = linux(input)?;
    let mounts = mounts::mounts(input)?;
    let root = RootBuilder::default()
        .path(input.rootfs.clone())
        .readonly(input.readonly_rootfs)
        .build()
        .map_err(oci_err)?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2-dev")
        .process(build_process(&input.process)?)
        .root(root)
        .hostname(input.hostname.clone())
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(oci_err)?;
    spec.set_annotations(None);
    if input.uts_ns != NsMode::New {
        // The runtime refuses to set a hostname in a UTS namespace it did not make.
        spec.set_hostname(None);
    }
    // Checked at create to lie in [-1000, 1000].
    if let (Ok(adj @ (..=-1 | 1..)), Some(p)) =
        (i32::try_from(input.oom_score_adj), spec.process_mut())
    {
        p.set_oom_score_adj(Some(adj));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;
