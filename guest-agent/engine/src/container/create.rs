//! `POST /containers/create`: merge the request with the image config, reserve the name,
//! resolve mounts and persist the record.

use std::collections::BTreeMap;

use berth_docker_api::container::{ContainerCreateRequest, MountPoint};
use berth_docker_api::volume::VolumeCreateOptions;

use super::record::{Record, StateRecord, Stored};
use super::{names, Container, Svc};
use crate::{EngineError, Result};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Merges `KEY=value` lists; later entries override earlier ones with the same key.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        let key = e.split('=').next().unwrap_or("");
        if let Some(pos) = out
            .iter()
            .position(|x| x.split('=').next().unwrap_or("") == key)
        {
            out[pos] = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    out
}

/// A container process's environment in dockerd's order: `HOSTNAME` (none on the host's
/// network), the link variables, then the container's own `env` over them.
pub fn container_env(hostname: Option<&str>, links: Vec<String>, own: &[String]) -> Vec<String> {
    let mut base = links;
    if let Some(h) = hostname {
        base.insert(0, format!("HOSTNAME={h}"));
    }
    if base.is_empty() {
        return own.to_vec();
    }
    merge_env(&base, own)
}

/// The variables every container process gets unless set: `TERM=xterm` with a terminal, and
/// `HOME` of its user.
pub fn add_process_defaults(env: &mut Vec<String>, tty: bool, home: &str) {
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
}

/// Entrypoint and Cmd after Docker's rules: a create-time Entrypoint resets the image's Cmd.
pub fn command(
    img: &oci_spec::image::Config,
    entrypoint: &Option<Vec<String>>,
    cmd: &Option<Vec<String>>,
) -> (Vec<String>, Vec<String>) {
    let ep = match entrypoint {
        // `--entrypoint ""` arrives as `[""]`: no entrypoint at all.
        Some(e) if e.iter().all(String::is_empty) => vec![],
        Some(e) => e.clone(),
        None => img.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = match (cmd, entrypoint) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => vec![],
        (None, None) => img.cmd().clone().unwrap_or_default(),
    };
    (ep, cmd)
}

impl Svc {
    /// Creates a container; returns its id.
    #[tracing::instrument(name = "container_create", skip_all, fields(name = name.unwrap_or("")))]
    pub async fn create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        req: ContainerCreateRequest,
    ) -> Result<String> {
        let mut cfg = req.config;
        let mut host = req.host_config;
        if cfg.image.is_empty() {
            return Err(EngineError::invalid(
                "config cannot be empty in order to create a container",
            ));
        }
        super::net_join::check_create(
            &cfg,
            &host,
            req.networking_config.endpoints_config.as_ref(),
        )?;
        if let Some(p) = platform.filter(|p| !p.is_empty()) {
            self.images.check_platform(&cfg.image, p)?;
        }
        let image = self.images.resolve(&cfg.image).await?;
        // `docker run` starts right after the create: let the start find the lock warm.
        crate::runtime::cgroup::warm_attach_lock();
        let img = &image.config;
        let (entrypoint, cmd) = command(img, &cfg.entrypoint, &cfg.cmd);
        let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
        let Some((path, args)) = argv.split_first() else {
            return Err(EngineError::invalid("no command specified"));
        };
        let id = crate::id::new_id();
        // Merge the image config into the container config, as dockerd stores it.
        let mut env = merge_env(
            &img.env().clone().unwrap_or_default(),
            &cfg.env.clone().unwrap_or_default(),
        );
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.into());
        }
        cfg.env = Some(env);
        cfg.cmd = (!cmd.is_empty()).then_some(cmd);
        cfg.entrypoint = (!entrypoint.is_empty()).then_some(entrypoint);
        if cfg.working_dir.is_empty() {
            cfg.working_dir = img.working_dir().clone().unwrap_or_default();
        }
        if cfg.user.is_empty() {
            cfg.user = img.user().clone().unwrap_or_default();
        }
        if cfg.hostname.is_empty() {
            cfg.hostname = id[..12].to_string();
        }
        let mut labels: BTreeMap<String, String> = img
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        labels.extend(cfg.labels.take().unwrap_or_default());
        cfg.labels = Some(labels);
        if cfg.stop_signal.is_none() {
            cfg.stop_signal = img.stop_signal().clone();
        }
        let mut exposed = cfg.exposed_ports.take().unwrap_or_default();
        for p in img.exposed_ports().clone().unwrap_or_default() {
            exposed.entry(p).or_default();
        }
        cfg.exposed_ports = (!exposed.is_empty()).then_some(exposed);
        let mut vols = cfg.volumes.take().unwrap_or_default();
        for v in img.volumes().clone().unwrap_or_default() {
            vols.entry(v).or_default();
        }
        cfg.volumes = (!vols.is_empty()).then_some(vols);

        if host.network_mode.is_empty() || host.network_mode == "default" {
            host.network_mode = "bridge".into();
        }
        host.network_mode = self.resolve_net_target(&host.network_mode);
        let networks = self.network_plan(
            &host.network_mode,
            req.networking_config.endpoints_config.as_ref(),
            cfg.mac_address.as_deref(),
        )?;
        // The CLI sends -1 for "unset"; dockerd's inspect shows null.
        if host.memory_swappiness == Some(-1) {
            host.memory_swappiness = None;
        }
        if host.cgroupns_mode.is_empty() {
            // dockerd's default: a private cgroup namespace on cgroup v2, the host's on v1.
            host.cgroupns_mode = if crate::runtime::cgroup::is_v2() {
                "private"
            } else {
                "host"
            }
            .into();
        }
        if host.log_config.typ.is_empty() {
            host.log_config.typ = self.config.log_driver.clone();
        }
        check_log_driver(&host.log_config.typ)?;
        host.restart_policy.name = restart_policy_name(&host.restart_policy.name)?;
        if host.auto_remove && !host.restart_policy.name.is_empty() {
            return Err(EngineError::invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        check_resources(&host)?;
        {
            use super::namespaces::{check_ns_mode, NsKind};
            check_ns_mode(NsKind::Pid, &host.pid_mode)?;
            check_ns_mode(NsKind::Ipc, &host.ipc_mode)?;
            check_ns_mode(NsKind::Uts, &host.uts_mode)?;
        }
        if host.runtime.is_empty() {
            host.runtime = self.config.default_runtime.clone();
        }
        self.runtime_spec(&host.runtime)?;
        crate::runtime::spec::capabilities(
            host.privileged,
            host.cap_add.as_deref().unwrap_or_default(),
            host.cap_drop.as_deref().unwrap_or_default(),
        )?;
        crate::runtime::seccomp::validate(host.security_opt.as_deref().unwrap_or_default())?;
        if host.masked_paths.is_none() && !host.privileged {
            host.masked_paths = Some(
                crate::runtime::spec::MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
            host.readonly_paths = Some(
                crate::runtime::spec::READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
        }

        self.check_links(&host)?;
        let mounts = self.resolve_mounts(&host, cfg.volumes.as_ref())?;
        let anonymous: Vec<String> = mounts
            .iter()
            .filter(|(_, anon)| *anon)
            .map(|(m, _)| m.name.clone())
            .collect();
        let mounts: Vec<MountPoint> = mounts.into_iter().map(|(m, _)| m).collect();

        let _g = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !names::valid(n) {
                    return Err(EngineError::invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                if let Some(owner) = self.name_owner(n) {
                    return Err(Self::name_conflict(n, &owner));
                }
                n.to_string()
            }
            None => loop {
                let n = names::generate();
                if self.name_owner(&n).is_none() {
                    break n;
                }
            },
        };
        let stored = Stored {
            record: Record {
                id: id.clone(),
                name,
                created: crate::shim::jsonlog::now_rfc3339(),
                path: path.clone(),
                args: args.to_vec(),
                image: cfg.image.clone(),
                image_id: image.id.clone(),
                config: cfg,
                mounts,
                anonymous_volumes: anonymous,
                networks: Some(networks),
            },
            host,
            state: StateRecord {
                state: berth_docker_api::container::ContainerState {
                    status: "created".into(),
                    started_at: "0001-01-01T00:00:00Z".into(),
                    finished_at: "0001-01-01T00:00:00Z".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            attachment: None,
        };
        let paths = self.paths(&id);
        std::fs::create_dir_all(&paths.dir)?;
        if let Err(e) = stored.save_all(&paths) {
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        let c = Container::new(stored, self.tasks.child_token());
        self.insert(c.clone());
        drop(_g);
        self.publish(&c, "create", &[]);
        tracing::debug!(%id, "container created");
        Ok(id)
    }

    /// Binds, Mounts and image volumes → mount points (bool: anonymous volume made here).
    fn resolve_mounts(
        &self,
        host: &berth_docker_api::container::HostConfig,
        image_volumes: Option<&BTreeMap<String, berth_docker_api::container::Empty>>,
    ) -> Result<Vec<(MountPoint, bool)>> {
        let mut out: Vec<(MountPoint, bool)> = vec![];
        for b in host.binds.clone().unwrap_or_default() {
            let parts: Vec<&str> = b.split(':').collect();
            let (src, dst, mode) = match parts.as_slice() {
                [s, d] => (*s, *d, ""),
                [s, d, m] => (*s, *d, *m),
                _ => {
                    return Err(EngineError::invalid(format!(
                        "invalid volume specification: '{b}'"
                    )))
                }
            };
            if !dst.starts_with('/') {
                return Err(EngineError::invalid(format!(
                    "invalid volume specification: '{b}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"
                )));
            }
            let rw = !mode.split(',').any(|m| m == "ro");
            out.push((self.mount_point(src, dst, rw, mode)?, false));
        }
        for m in host.mounts.clone().unwrap_or_default() {
            let typ = if m.typ.is_empty() {
                "volume"
            } else {
                m.typ.as_str()
            };
            match typ {
                "bind" => {
                    if !std::path::Path::new(&m.source).exists() {
                        return Err(EngineError::invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    out.push((
                        self.mount_point(&m.source, &m.target, !m.read_only, "")?,
                        false,
                    ));
                }
                "volume" => {
                    let anon = m.source.is_empty();
                    let vol = volume_create_options(&m.source, m.volume_options.as_ref());
                    out.push((self.volume_mount(vol, &m.target, !m.read_only, "")?, anon));
                }
                "tmpfs" => out.push((
                    MountPoint {
                        typ: "tmpfs".into(),
                        destination: m.target.clone(),
                        rw: !m.read_only,
                        mode: tmpfs_options(m.tmpfs_options.as_ref()).join(","),
                        ..Default::default()
                    },
                    false,
                )),
                other => {
                    return Err(EngineError::invalid(format!(
                        "mount type {other} is not supported"
                    )))
                }
            }
        }
        for m in self.volumes_from(host)? {
            if !out.iter().any(|(o, _)| o.destination == m.destination) {
                out.push((m, false));
            }
        }
        for dst in image_volumes
            .map(|v| v.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if out.iter().any(|(m, _)| m.destination == dst) {
                continue;
            }
            out.push((self.mount_point("", &dst, true, "")?, true));
        }
        Ok(out)
    }

    /// A host-path bind (absolute `src`) or a named (`src`) / anonymous (empty) volume.
    fn mount_point(&self, src: &str, dst: &str, rw: bool, mode: &str) -> Result<MountPoint> {
        if src.starts_with('/') {
            std::fs::create_dir_all(src).ok();
            return Ok(MountPoint {
                typ: "bind".into(),
                source: src.into(),
                destination: dst.into(),
                mode: mode.into(),
                rw,
                propagation: "rprivate".into(),
                ..Default::default()
            });
        }
        let vol = VolumeCreateOptions {
            name: src.into(),
            ..Default::default()
        };
        self.volume_mount(vol, dst, rw, mode)
    }

    /// A named or anonymous volume, created with `vol`'s driver and options if it is new.
    fn volume_mount(
        &self,
        vol: VolumeCreateOptions,
        dst: &str,
        rw: bool,
        mode: &str,
    ) -> Result<MountPoint> {
        let v = self.volumes.create(vol)?;
        Ok(MountPoint {
            typ: "volume".into(),
            name: v.name.clone(),
            source: v.mountpoint,
            destination: dst.into(),
            driver: "local".into(),
            mode: if mode.is_empty() {
                "z".into()
            } else {
                mode.into()
            },
            rw,
            propagation: String::new(),
        })
    }
}

/// The volume `--mount type=volume,src=…,volume-driver=…,volume-opt=k=v` names (`VolumeOptions`
/// as the API sends it: `{"DriverConfig": {"Name", "Options"}, "Labels"}`).
fn volume_create_options(name: &str, opts: Option<&serde_json::Value>) -> VolumeCreateOptions {
    let strings = |v: Option<&serde_json::Value>| -> BTreeMap<String, String> {
        v.and_then(|v| v.as_object())
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let driver = opts.and_then(|o| o.get("DriverConfig"));
    VolumeCreateOptions {
        name: name.into(),
        driver: driver
            .and_then(|d| d.get("Name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .into(),
        driver_opts: strings(driver.and_then(|d| d.get("Options"))),
        labels: strings(opts.and_then(|o| o.get("Labels"))),
    }
}

/// Mount options of `--mount type=tmpfs,tmpfs-size=…,tmpfs-mode=…`.
/// dockerd's checks of memory and CPU limits, with its texts (400 at create).
pub(crate) fn check_resources(h: &berth_docker_api::container::HostConfig) -> Result<()> {
    let fail = |m: &str| Err(EngineError::invalid(m.to_string()));
    check_memory(h.memory, h.memory_swap)?;
    if !(-1000..=1000).contains(&h.oom_score_adj) {
        return fail(&format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            h.oom_score_adj
        ));
    }
    if h.nano_cpus != 0 {
        if h.cpu_period != 0 {
            return fail("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        }
        if h.cpu_quota != 0 {
            return fail("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        }
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if h.nano_cpus < 10_000_000 || h.nano_cpus > ncpu * 1_000_000_000 {
            return fail(&format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            ));
        }
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return fail(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        );
    }
    if h.cpu_quota > 0 && h.cpu_quota < 1000 {
        return fail("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    Ok(())
}

/// dockerd's checks of a memory limit and its memory+swap limit (at create and update).
pub(crate) fn check_memory(memory: i64, memory_swap: i64) -> Result<()> {
    const MIN_MEMORY: i64 = 6 * 1024 * 1024;
    if memory != 0 && memory < MIN_MEMORY {
        return Err(EngineError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory_swap > 0 && memory == 0 {
        return Err(EngineError::invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if memory > 0 && memory_swap > 0 && memory_swap < memory {
        return Err(EngineError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    Ok(())
}

fn tmpfs_options(o: Option<&serde_json::Value>) -> Vec<String> {
    let mut out = vec![];
    if let Some(o) = o {
        if let Some(size) = o
            .get("SizeBytes")
            .and_then(|v| v.as_i64())
            .filter(|s| *s > 0)
        {
            out.push(format!("size={size}"));
        }
        if let Some(mode) = o.get("Mode").and_then(|v| v.as_u64()) {
            out.push(format!("mode={mode:o}"));
        }
    }
    out
}

/// A restart policy name as stored: `no` is empty; unknown names are refused.
pub(crate) fn restart_policy_name(name: &str) -> Result<String> {
    match name {
        "no" => Ok(String::new()),
        "" | "always" | "unless-stopped" | "on-failure" => Ok(name.to_string()),
        other => Err(EngineError::invalid(format!(
            "invalid restart policy '{other}'"
        ))),
    }
}

/// Logging drivers dockerd has built in: besides `json-file` and `none`, Berth has none of
/// them, so it refuses them by name; any other name is a plugin, refused with dockerd's text.
const DOCKERD_LOG_DRIVERS: &[&str] = &[
    "awslogs",
    "etwlogs",
    "fluentd",
    "gcplogs",
    "gelf",
    "journald",
    "local",
    "logentries",
    "splunk",
    "syslog",
];

/// A container's logging driver: `json-file` and `none` are served.
fn check_log_driver(name: &str) -> Result<()> {
    match name {
        "json-file" | "none" => Ok(()),
        d if DOCKERD_LOG_DRIVERS.contains(&d) => Err(EngineError::invalid(format!(
            "logging driver {d} is not supported"
        ))),
        plugin => Err(EngineError::invalid(format!(
            "error looking up logging plugin {plugin}: plugin \"{plugin}\" not found"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_log_driver_is_a_missing_plugin() {
        assert!(check_log_driver("json-file").is_ok());
        assert_eq!(
            check_log_driver("journald").unwrap_err().to_string(),
            "logging driver journald is not supported"
        );
        assert_eq!(
            check_log_driver("foo").unwrap_err().to_string(),
            "error looking up logging plugin foo: plugin \"foo\" not found"
        );
    }

    #[test]
    fn env_merges_by_key() {
        let e = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
        );
        assert_eq!(e, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn entrypoint_resets_image_cmd() {
        let mut img = oci_spec::image::Config::default();
        img.set_cmd(Some(vec!["sh".into()]));
        assert_eq!(
            command(&img, &None, &None),
            (vec![], vec!["sh".to_string()])
        );
        assert_eq!(
            command(&img, &Some(vec!["echo".into()]), &None),
            (vec!["echo".to_string()], vec![])
        );
        assert_eq!(
            command(&img, &None, &Some(vec!["true".into()])),
            (vec![], vec!["true".to_string()])
        );
        img.set_entrypoint(Some(vec!["/init".into()]));
        assert_eq!(
            command(&img, &Some(vec![String::new()]), &Some(vec!["echo".into()])),
            (vec![], vec!["echo".to_string()]),
            "--entrypoint \"\" clears the image's"
        );
    }
}
