//! The pure half of a start: from the stored record, the image, the network attachment and a
//! few facts read from the host ([`HostFacts`]), everything the start then writes and asks
//! for ([`StartPlan`]): the `/etc` files, the mounts to prepare, the OCI spec input and the
//! shim's config. Nothing here touches the system, so the effect of each `docker run` flag is
//! unit-tested without root; `start.rs` gathers the facts and performs the plan.

use std::path::PathBuf;

use berth_docker_api::container::HostConfig;

use super::etc::EtcSettings;
use super::record::{Paths, Stored};
use super::spec_opts::{devices, rlimits};
use super::user::ResolvedUser;
use crate::mount::RootfsMount;
use crate::network::{Attachment, EndpointRequest, PortBinding};
use crate::runtime::spec::{
    self, BindMount, DeviceMapping, NetNs, NsMode, ProcessInput, Resources, SpecInput,
};
use crate::runtime::{seccomp, RuntimeSpec};
use crate::shim::ShimConfig;
use crate::{EngineConfig, Result};

/// Where `--init` mounts the init binary in the container.
const INIT_PATH: &str = "/sbin/docker-init";

/// What a start reads from the host and from other containers before it plans.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// The image's layer directories, base first.
    pub layers: Vec<PathBuf>,
    /// `Config.User` resolved against the image's `/etc/passwd` and `/etc/group`.
    pub user: ResolvedUser,
    /// The host's hostname (what a `--network host` container gets).
    pub host_hostname: String,
    /// `--link`: `/etc/hosts` lines and variables.
    pub link_hosts: Vec<String>,
    pub link_env: Vec<String>,
    /// `--pid`, `--ipc`, `--uts` resolved (`container:<name>` to that container's namespace).
    pub pid_ns: NsMode,
    pub ipc_ns: NsMode,
    pub uts_ns: NsMode,
    /// `--network container:<name>`: the namespace and names taken from that container.
    pub net_join: Option<super::net_join::NetJoin>,
    /// The init binary found on the host, when `--init` asks for one.
    pub init: Option<PathBuf>,
    /// The host's device nodes, read only for `--privileged`.
    pub host_devices: Vec<DeviceMapping>,
    pub runtime: RuntimeSpec,
    /// The shim's control socket.
    pub socket: PathBuf,
}

/// The three files under the container's directory bind-mounted over `/etc`.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcFiles {
    pub ip: String,
    pub hostname: String,
    pub host_network: bool,
    pub nameservers: Vec<String>,
    pub settings: EtcSettings,
}

/// A named volume the run holds; filled from the image when empty (Docker's copy-up).
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeUse {
    pub name: String,
    pub source: PathBuf,
    pub destination: String,
}

/// Everything a start does, decided before it does any of it.
#[derive(Debug, Clone)]
pub struct StartPlan {
    pub etc: EtcFiles,
    /// Bind and volume sources, created when missing.
    pub mount_sources: Vec<PathBuf>,
    pub volumes: Vec<VolumeUse>,
    pub spec: SpecInput,
    pub shim: ShimConfig,
}

/// What the network service is asked for: the container's networks and published ports.
pub fn attach_request(s: &Stored) -> crate::network::AttachRequest {
    let (rec, host) = (&s.record, &s.host);
    let mut plan = s.network_plan().into_iter();
    let first = plan.next().unwrap_or_else(|| EndpointRequest {
        network: "none".into(),
        ..Default::default()
    });
    let port_bindings = host
        .port_bindings
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = v
                .unwrap_or_default()
                .into_iter()
                .map(|b| PortBinding {
                    host_ip: b.host_ip,
                    host_port: b.host_port,
                })
                .collect();
            (k, v)
        })
        .collect();
    crate::network::AttachRequest {
        container_id: rec.id.clone(),
        container_name: rec.name.clone(),
        first,
        port_bindings,
        publish_all: host.publish_all_ports,
        exposed_ports: rec
            .config
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect(),
        extra: plan.collect(),
        dns: host.dns.clone().unwrap_or_default(),
    }
}

/// Whether the container shares the host's network namespace.
pub fn host_network(host: &HostConfig) -> bool {
    host.network_mode == "host"
}

/// Plans the start of `s` on attachment `att`.
pub fn plan(
    s: &Stored,
    paths: &Paths,
    att: &Attachment,
    facts: HostFacts,
    config: &EngineConfig,
) -> Result<StartPlan> {
    let etc = etc_files(s, att, &facts, config);
    let mounts = mounts(s, paths, &facts);
    let process = process(s, &etc, &facts)?;
    let spec = spec_input(s, paths, att, &facts, process, mounts.binds)?;
    let shim = shim_config(s, paths, &facts, config, spec.process.console_size);
    Ok(StartPlan {
        etc,
        mount_sources: mounts.sources,
        volumes: mounts.volumes,
        spec,
        shim,
    })
}

/// The host's name with `--network host`, the joined container's with `--network
/// container:<name>`, else `Config.Hostname`.
fn hostname(s: &Stored, facts: &HostFacts) -> String {
    if let Some(join) = &facts.net_join {
        join.hostname.clone()
    } else if host_network(&s.host) {
        facts.host_hostname.clone()
    } else {
        s.record.config.hostname.clone()
    }
}

fn etc_files(s: &Stored, att: &Attachment, facts: &HostFacts, config: &EngineConfig) -> EtcFiles {
    let host_net = host_network(&s.host);
    let gateway = config
        .host_gateway_ip
        .as_deref()
        .unwrap_or(&att.primary.gateway);
    EtcFiles {
        ip: att.primary.ip_address.clone(),
        hostname: hostname(s, facts),
        host_network: host_net,
        nameservers: att.dns_servers.clone(),
        settings: EtcSettings {
            links: facts.link_hosts.clone(),
            host_aliases: config.host_aliases.clone(),
            ..EtcSettings::of(&s.host, gateway)
        },
    }
}

/// The mounts of a start, in the spec's order: init, the `/etc` files, then the record's.
struct Mounts {
    binds: Vec<BindMount>,
    sources: Vec<PathBuf>,
    volumes: Vec<VolumeUse>,
}

fn mounts(s: &Stored, paths: &Paths, facts: &HostFacts) -> Mounts {
    let mut binds = vec![];
    if let Some(init) = &facts.init {
        binds.push(BindMount {
            source: init.clone(),
            destination: INIT_PATH.into(),
            readonly: true,
        });
    }
    for (file, dest) in [
        (paths.resolv_conf(), "/etc/resolv.conf"),
        (paths.hostname(), "/etc/hostname"),
        (paths.hosts(), "/etc/hosts"),
    ] {
        binds.push(BindMount {
            source: file,
            destination: dest.into(),
            readonly: false,
        });
    }
    let (mut sources, mut volumes) = (vec![], vec![]);
    for m in s.record.mounts.iter().filter(|m| m.typ != "tmpfs") {
        sources.push(PathBuf::from(&m.source));
        if m.typ == "volume" {
            volumes.push(VolumeUse {
                name: m.name.clone(),
                source: m.source.clone().into(),
                destination: m.destination.clone(),
            });
        }
        binds.push(BindMount {
            source: m.source.clone().into(),
            destination: m.destination.clone(),
            readonly: !m.rw,
        });
    }
    Mounts {
        binds,
        sources,
        volumes,
    }
}

/// `--tmpfs` mounts, then the record's `type=tmpfs` mounts with their `rw`/`ro`.
fn tmpfs(s: &Stored) -> Vec<(String, Vec<String>)> {
    let opts = |o: &str| -> Vec<String> {
        o.split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let mut out: Vec<(String, Vec<String>)> = s
        .host
        .tmpfs
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(dest, o)| (dest, opts(&o)))
        .collect();
    for m in s.record.mounts.iter().filter(|m| m.typ == "tmpfs") {
        let mut o = opts(&m.mode);
        o.push(if m.rw { "rw" } else { "ro" }.into());
        out.push((m.destination.clone(), o));
    }
    out
}

fn process(s: &Stored, etc: &EtcFiles, facts: &HostFacts) -> Result<ProcessInput> {
    let (rec, host) = (&s.record, &s.host);
    let mut env = super::env::container_env(
        (!etc.host_network).then_some(etc.hostname.as_str()),
        facts.link_env.clone(),
        rec.config.env.as_deref().unwrap_or_default(),
    );
    super::env::add_process_defaults(&mut env, rec.config.tty, &facts.user.home);
    let mut args: Vec<String> = std::iter::once(rec.path.clone())
        .chain(rec.args.iter().cloned())
        .collect();
    if facts.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let security_opt = host.security_opt.as_deref().unwrap_or_default();
    Ok(ProcessInput {
        args,
        env,
        cwd: rec.config.working_dir.clone(),
        uid: facts.user.uid,
        gid: facts.user.gid,
        additional_gids: facts.user.additional_gids.clone(),
        tty: rec.config.tty,
        console_size: (host.console_size[0] > 0).then(|| {
            (
                u16::try_from(host.console_size[0]).unwrap_or(24),
                u16::try_from(host.console_size[1]).unwrap_or(80),
            )
        }),
        caps: spec::capabilities(
            host.privileged,
            host.cap_add.as_deref().unwrap_or_default(),
            host.cap_drop.as_deref().unwrap_or_default(),
        )?,
        rlimits: rlimits(host)?,
        no_new_privileges: security_opt
            .iter()
            .any(|o| o.starts_with("no-new-privileges") && !o.ends_with("false")),
    })
}

fn spec_input(
    s: &Stored,
    paths: &Paths,
    att: &Attachment,
    facts: &HostFacts,
    process: ProcessInput,
    mounts: Vec<BindMount>,
) -> Result<SpecInput> {
    let host = &s.host;
    let joined = facts.net_join.as_ref().map(|j| &j.netns);
    let netns = match (joined, &att.netns_path, att.primary.network_name.as_str()) {
        (Some(p), _, _) | (None, Some(p), _) => NetNs::Path(p.clone()),
        (None, None, "host") => NetNs::Host,
        (None, None, _) => NetNs::New,
    };
    let security_opt = host.security_opt.as_deref().unwrap_or_default();
    let seccomp = seccomp::for_container(host.privileged, security_opt, &process.caps)?;
    Ok(SpecInput {
        hostname: hostname(s, facts),
        process,
        rootfs: paths.rootfs(),
        readonly_rootfs: host.readonly_rootfs,
        domainname: s.record.config.domainname.clone(),
        sysctls: host.sysctls.clone().unwrap_or_default(),
        oom_score_adj: host.oom_score_adj,
        privileged: host.privileged,
        netns: Some(netns),
        devices: if host.privileged {
            facts.host_devices.clone()
        } else {
            devices(host)?
        },
        pid_ns: facts.pid_ns.clone(),
        ipc_ns: facts.ipc_ns.clone(),
        uts_ns: facts.uts_ns.clone(),
        no_shm: host.ipc_mode == "none",
        cgroup_ns: host.cgroupns_mode == "private",
        cgroups_path: crate::runtime::cgroup::container_path(&host.cgroup_parent, &s.record.id),
        mounts,
        tmpfs: tmpfs(s),
        resources: Resources::from(host),
        shm_size: host.shm_size,
        seccomp,
    })
}

fn shim_config(
    s: &Stored,
    paths: &Paths,
    facts: &HostFacts,
    config: &EngineConfig,
    console_size: Option<(u16, u16)>,
) -> ShimConfig {
    let (rec, host) = (&s.record, &s.host);
    let opt = |k: &str| host.log_config.config.get(k).or(config.log_opts.get(k));
    ShimConfig {
        id: rec.id.clone(),
        bundle: paths.bundle(),
        runtime: facts.runtime.clone(),
        rootfs: Some(RootfsMount {
            lower: facts.layers.clone(),
            upper: paths.upper(),
            work: paths.work(),
            target: paths.rootfs(),
        }),
        tty: rec.config.tty,
        open_stdin: rec.config.open_stdin,
        stdin_once: rec.config.stdin_once,
        log_path: if host.log_config.typ == "none" {
            PathBuf::from("/dev/null")
        } else {
            paths.log(&rec.id)
        },
        log_max_size: opt("max-size")
            .and_then(|s| crate::shim::jsonlog::parse_size(s))
            .unwrap_or(0),
        log_max_files: opt("max-file").and_then(|s| s.parse().ok()).unwrap_or(1),
        socket: facts.socket.clone(),
        exit_file: paths.exit_file(),
        console_size,
    }
}

#[cfg(test)]
#[path = "start_plan_tests.rs"]
pub(super) mod tests;
