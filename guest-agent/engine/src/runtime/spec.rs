//! Builds OCI runtime specs (`config.json`) and exec process specs the way dockerd does:
//! namespaces, Docker's default capabilities, masked and read-only paths, default mounts and
//! device rules, resources and the container's own mounts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::{
    BoxBuilder, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, Process, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

use crate::{EngineError, Result};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability Berth knows, in kernel bit order (`CAP_CHOWN` = bit 0 …).
const ALL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The engine's own capability bounding set (`CapBnd` of /proc/self/status); a container can
/// never get more, so `--privileged` and `ALL` mean "all of these", as in dockerd.
fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

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

/// The capability set after `--cap-add`/`--cap-drop` (names with or without `CAP_`, `ALL`).
pub fn capabilities(privileged: bool, add: &[String], drop: &[String]) -> Result<Vec<String>> {
    capabilities_within(bounding_set(), privileged, add, drop)
}

/// [`capabilities`] limited to the bounding set `bounding` (bit per capability).
pub fn capabilities_within(
    bounding: u64,
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>> {
    let norm = |c: &str| {
        let c = c.to_ascii_uppercase();
        c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
    };
    let mut set: BTreeSet<String> = if privileged {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    let add: Vec<String> = add.iter().map(|c| norm(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| norm(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(EngineError::invalid(format!("invalid capability: CAP_{c}")));
        }
    }
    if drop.iter().any(|c| c == "ALL") {
        set.clear();
    }
    for c in &drop {
        set.remove(c);
    }
    if add.iter().any(|c| c == "ALL") {
        set.extend(ALL_CAPS.iter().map(|s| s.to_string()));
    }
    for c in add.into_iter().filter(|c| c != "ALL") {
        set.insert(c);
    }
    let held = |c: &String| {
        ALL_CAPS
            .iter()
            .position(|k| k == c)
            .is_some_and(|bit| bounding & (1u64 << bit) != 0)
    };
    Ok(set.into_iter().filter(held).collect())
}

fn oci_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::internal(format!("invalid runtime spec: {e}"))
}

fn cap_set(caps: &[String]) -> Result<oci_spec::runtime::Capabilities> {
    caps.iter()
        .map(|c| {
            Capability::from_str(c)
                .or_else(|_| serde_json::from_str(&format!("\"CAP_{c}\"")))
                .map_err(|_| EngineError::invalid(format!("invalid capability: CAP_{c}")))
        })
        .collect()
}

/// The process spec (also the `--process` file of `runc exec`).
pub fn build_process(p: &ProcessInput) -> Result<Process> {
    let caps = cap_set(&p.caps)?;
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()
        .map_err(oci_err)?;
    let user = UserBuilder::default()
        .uid(p.uid)
        .gid(p.gid)
        .additional_gids(p.additional_gids.clone())
        .build()
        .map_err(oci_err)?;
    let mut b = ProcessBuilder::default()
        .terminal(p.tty)
        .user(user)
        .args(p.args.clone())
        .env(p.env.clone())
        .cwd(if p.cwd.is_empty() { "/" } else { &p.cwd })
        .capabilities(capabilities)
        .no_new_privileges(p.no_new_privileges);
    if let (true, Some((h, w))) = (p.tty, p.console_size) {
        let size = BoxBuilder::default()
            .height(u64::from(h))
            .width(u64::from(w))
            .build()
            .map_err(oci_err)?;
        b = b.console_size(size);
    }
    let mut proc = b.build().map_err(oci_err)?;
    let rlimits = p
        .rlimits
        .iter()
        .map(|(name, soft, hard)| rlimit(name, *soft, *hard))
        .collect::<Result<Vec<_>>>()?;
    proc.set_rlimits(Some(rlimits));
    Ok(proc)
}

/// An rlimit from Docker's `--ulimit` name (`nofile`, `nproc`, …).
fn rlimit(name: &str, soft: u64, hard: u64) -> Result<oci_spec::runtime::PosixRlimit> {
    let typ = format!("RLIMIT_{}", name.to_ascii_uppercase());
    let typ: oci_spec::runtime::PosixRlimitType = serde_json::from_value(serde_json::json!(typ))
        .map_err(|_| EngineError::invalid(format!("invalid ulimit type: {name}")))?;
    oci_spec::runtime::PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(oci_err)
}

/// The device nodes and cgroup rules of `--device` mappings, from the host nodes' metadata.
fn host_devices(
    maps: &[DeviceMapping],
) -> Result<(Vec<oci_spec::runtime::LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut nodes = vec![];
    let mut rules = vec![];
    for m in maps {
        let meta = std::fs::metadata(&m.host).map_err(|e| {
            EngineError::invalid(format!(
                "error gathering device information while adding custom device \"{}\": {e}",
                m.host.display()
            ))
        })?;
        let ft = meta.file_type();
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            return Err(EngineError::invalid(format!(
                "error gathering device information while adding custom device \"{}\": not a device node",
                m.host.display()
            )));
        };
        let rdev = meta.rdev();
        let (major, minor) = (
            i64::from(nix::sys::stat::major(rdev) as u32),
            i64::from(nix::sys::stat::minor(rdev) as u32),
        );
        nodes.push(
            oci_spec::runtime::LinuxDeviceBuilder::default()
                .path(PathBuf::from(&m.container))
                .typ(typ)
                .major(major)
                .minor(minor)
                .file_mode(meta.mode() & 0o7777)
                .uid(meta.uid())
                .gid(meta.gid())
                .build()
                .map_err(oci_err)?,
        );
        let mut rule = device_rule(true, Some(typ), Some(major), Some(minor))?;
        rule.set_access(Some(m.permissions.clone()));
        rules.push(rule);
    }
    Ok((nodes, rules))
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci_err)
}

fn default_mounts(input: &SpecInput) -> Result<Vec<Mount>> {
    let sys_mode = if input.privileged { "rw" } else { "ro" };
    let shm = if input.shm_size > 0 {
        input.shm_size
    } else {
        64 << 20
    };
    let shm_opt = format!("size={shm}");
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    // `--ipc host` sees the host's shared memory, `--ipc none` none at all.
    match (&input.ipc_ns, input.no_shm) {
        (_, true) => {}
        (NsMode::Host, false) => mounts.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        )?),
        _ => mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_opt],
        )?),
    }
    Ok(mounts)
}

fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
) -> Result<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access("rwm");
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().map_err(oci_err)
}

/// Docker's device cgroup rules: deny all, then the usual character devices.
fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    if privileged {
        return Ok(vec![device_rule(true, None, None, None)?]);
    }
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![device_rule(false, None, None, None)?];
    for (maj, min) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        rules.push(device_rule(true, c, Some(maj), min)?);
    }
    Ok(rules)
}

fn resources(
    input: &SpecInput,
    extra_rules: Vec<LinuxDeviceCgroup>,
) -> Result<oci_spec::runtime::LinuxResources> {
    let mut rules = device_rules(input.privileged)?;
    rules.extend(extra_rules);
    let b = LinuxResourcesBuilder::default().devices(rules);
    with_limits(b, &input.resources)?.build().map_err(oci_err)
}

/// The memory, CPU and pids limits alone, as `runc update` takes them.
pub fn limits(r: &Resources) -> Result<oci_spec::runtime::LinuxResources> {
    with_limits(LinuxResourcesBuilder::default(), r)?
        .build()
        .map_err(oci_err)
}

fn with_limits(mut b: LinuxResourcesBuilder, r: &Resources) -> Result<LinuxResourcesBuilder> {
    if r.memory > 0 {
        let mut m = LinuxMemoryBuilder::default().limit(r.memory);
        if r.memory_swap != 0 {
            m = m.swap(r.memory_swap);
        }
        b = b.memory(m.build().map_err(oci_err)?);
    }
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if r.cpu_shares > 0 {
        cpu = cpu.shares(r.cpu_shares as u64);
        any_cpu = true;
    }
    if r.nano_cpus > 0 {
        let period: u64 = 100_000;
        cpu = cpu
            .period(period)
            .quota(r.nano_cpus * period as i64 / 1_000_000_000);
        any_cpu = true;
    } else {
        if r.cpu_period > 0 {
            cpu = cpu.period(r.cpu_period as u64);
            any_cpu = true;
        }
        if r.cpu_quota > 0 {
            cpu = cpu.quota(r.cpu_quota);
            any_cpu = true;
        }
    }
    if !r.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(r.cpuset_cpus.clone());
        any_cpu = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu = cpu.mems(r.cpuset_mems.clone());
        any_cpu = true;
    }
    if any_cpu {
        b = b.cpu(cpu.build().map_err(oci_err)?);
    }
    if let Some(p) = r.pids_limit.filter(|p| *p != 0) {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(oci_err)?,
        );
    }
    Ok(b)
}

fn namespace(typ: LinuxNamespaceType, path: Option<&PathBuf>) -> Result<LinuxNamespace> {
    let mut b = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p.clone());
    }
    b.build().map_err(oci_err)
}

/// The container's full runtime spec.
pub fn build_spec(input: &SpecInput) -> Result<Spec> {
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
    let (masked, readonly): (Vec<String>, Vec<String>) = if input.privileged {
        (vec![], vec![])
    } else {
        (
            MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        )
    };
    let (device_nodes, device_cgroup) = host_devices(&input.devices)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .resources(resources(input, device_cgroup)?)
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
    let mut mounts = default_mounts(input)?;
    for m in &input.mounts {
        let mut opts = vec!["rbind", "rprivate"];
        opts.push(if m.readonly { "ro" } else { "rw" });
        mounts.push(mount(
            &m.destination,
            "bind",
            &m.source.to_string_lossy(),
            &opts,
        )?);
    }
    for (dest, opts) in &input.tmpfs {
        let mut o: Vec<&str> = vec!["nosuid", "nodev"];
        o.extend(opts.iter().map(String::as_str));
        mounts.push(mount(dest, "tmpfs", "tmpfs", &o)?);
    }
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
mod tests {
    use super::*;

    fn input() -> SpecInput {
        SpecInput {
            process: ProcessInput {
                args: vec!["sh".into()],
                env: vec!["PATH=/bin".into()],
                caps: capabilities(false, &[], &[]).unwrap(),
                ..Default::default()
            },
            rootfs: "/r".into(),
            hostname: "abc".into(),
            netns: Some(NetNs::New),
            cgroups_path: "/berth/abc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn host_and_joined_namespaces() {
        let mut i = input();
        i.pid_ns = NsMode::Host;
        i.ipc_ns = NsMode::Host;
        i.uts_ns = NsMode::Path("/proc/7/ns/uts".into());
        let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
        let ns: Vec<(String, Option<String>)> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["type"].as_str().unwrap().to_string(),
                    n["path"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert!(!ns.iter().any(|(t, _)| t == "pid" || t == "ipc"), "{ns:?}");
        assert!(ns.contains(&("uts".into(), Some("/proc/7/ns/uts".into()))));
        assert!(v.get("hostname").is_none());
        let shm = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert_eq!(
            shm["source"], "/dev/shm",
            "--ipc host binds the host's /dev/shm"
        );
        i.no_shm = true;
        let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
        assert!(!v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/dev/shm"));
    }

    #[test]
    fn caps_add_drop_all() {
        let c = capabilities(false, &["NET_ADMIN".into()], &["CAP_CHOWN".into()]).unwrap();
        assert!(c.contains(&"NET_ADMIN".to_string()));
        assert!(!c.contains(&"CHOWN".to_string()));
        let c = capabilities(false, &["kill".into()], &["ALL".into()]).unwrap();
        assert_eq!(c, ["KILL"]);
        assert_eq!(
            capabilities_within(u64::MAX, false, &["ALL".into()], &[])
                .unwrap()
                .len(),
            ALL_CAPS.len()
        );
        assert!(capabilities(false, &["BOGUS".into()], &[]).is_err());
        // Capabilities outside the engine's bounding set are never granted.
        let without_sys_resource: u64 = !(1 << 24);
        let c = capabilities_within(without_sys_resource, true, &[], &[]).unwrap();
        assert!(!c.contains(&"SYS_RESOURCE".to_string()));
        assert!(c.contains(&"SYS_ADMIN".to_string()));
    }

    #[test]
    fn spec_has_docker_defaults() {
        let v = serde_json::to_value(build_spec(&input()).unwrap()).unwrap();
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert!(caps.iter().any(|c| c == "CAP_NET_BIND_SERVICE"));
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
        assert_eq!(
            v["linux"]["maskedPaths"].as_array().unwrap().len(),
            MASKED_PATHS.len()
        );
        let dests: Vec<_> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_string())
            .collect();
        assert!(dests.contains(&"/dev/shm".to_string()));
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
        assert_eq!(v["hostname"], "abc");
    }

    #[test]
    fn host_network_and_limits() {
        let mut i = input();
        i.netns = Some(NetNs::Host);
        i.resources.memory = 64 << 20;
        i.resources.nano_cpus = 500_000_000;
        i.resources.pids_limit = Some(10);
        i.privileged = true;
        i.mounts.push(BindMount {
            source: "/h".into(),
            destination: "/c".into(),
            readonly: true,
        });
        let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 10);
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .is_none_or(|a| a.is_empty()));
        let last = v["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["destination"], "/c");
        assert!(last["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "ro"));
    }
}
