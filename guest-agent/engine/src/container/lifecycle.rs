//! Start, exit handling, stop, kill, restart policies, pause, remove, rename, wait and the
//! restore of running containers after an engine restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::container::HostConfig;

use tokio::sync::watch;

use super::record::{Paths, Stored};
use super::{etc, user, Container, Status, Svc};
use crate::fsutil::read_json;
use crate::network::AttachRequest;
use crate::runtime::spec::{self, BindMount, NetNs, NsMode, ProcessInput, Resources, SpecInput};
use crate::runtime::{self, Runtime};
use crate::shim::client::{self, ShimClient};
use crate::shim::{ExitRecord, RootfsMount, ShimConfig};
use crate::{EngineError, Result};

/// `docker wait` conditions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn now() -> String {
    crate::shim::jsonlog::now_rfc3339()
}

/// Parses a signal name (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> Result<i32> {
    if s.is_empty() {
        return Ok(libc::SIGKILL);
    }
    if let Ok(n) = s.parse::<i32>() {
        if n > 0 && n < 65 {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| EngineError::invalid(format!("Invalid signal: {s}")))
}

/// dockerd's (moby 23+) conflict for an operation that needs a running container.
pub(super) fn not_running(id: &str) -> EngineError {
    EngineError::conflict(format!("container {id} is not running"))
}

/// Finds `etc/passwd` in the top-most layer that has it.
fn passwd_root(upper: &std::path::Path, layers: &[PathBuf]) -> PathBuf {
    std::iter::once(upper.to_path_buf())
        .chain(layers.iter().rev().cloned())
        .find(|d| d.join("etc/passwd").exists())
        .unwrap_or_else(|| upper.to_path_buf())
}

/// `--ulimit` values (`{"Name":"nofile","Soft":1024,"Hard":2048}`).
pub(super) fn rlimits(host: &HostConfig) -> Result<Vec<(String, u64, u64)>> {
    host.ulimits
        .iter()
        .flatten()
        .map(|u| {
            let name = u["Name"].as_str().unwrap_or_default();
            match (u["Soft"].as_i64(), u["Hard"].as_i64()) {
                (Some(soft), Some(hard)) if !name.is_empty() && soft <= hard => {
                    Ok((name.to_string(), soft.max(0) as u64, hard.max(0) as u64))
                }
                _ => Err(EngineError::invalid(format!("invalid ulimit: {u}"))),
            }
        })
        .collect()
}

/// `--device` mappings (`{"PathOnHost","PathInContainer","CgroupPermissions"}`).
fn devices(host: &HostConfig) -> Result<Vec<spec::DeviceMapping>> {
    host.devices
        .iter()
        .flatten()
        .map(|d| {
            let on_host = d["PathOnHost"].as_str().unwrap_or_default();
            if on_host.is_empty() {
                return Err(EngineError::invalid(format!("invalid device mapping: {d}")));
            }
            let inside = d["PathInContainer"]
                .as_str()
                .filter(|p| !p.is_empty())
                .unwrap_or(on_host);
            let perms = d["CgroupPermissions"]
                .as_str()
                .filter(|p| !p.is_empty())
                .unwrap_or("rwm");
            Ok(spec::DeviceMapping {
                host: on_host.into(),
                container: inside.to_string(),
                permissions: perms.to_string(),
            })
        })
        .collect()
}

/// Every device node of the host's `/dev` (as dockerd gives a `--privileged` container),
/// except the per-container filesystems the spec mounts there anyway.
fn privileged_devices() -> Vec<spec::DeviceMapping> {
    use std::os::unix::fs::FileTypeExt;
    const SKIP: &[&str] = &[
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/dev/fd",
        "/dev/console",
    ];
    let mut out = vec![];
    let mut dirs = vec![PathBuf::from("/dev")];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if SKIP.iter().any(|s| p == std::path::Path::new(s)) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(p),
                Ok(t) if t.is_char_device() || t.is_block_device() => {
                    out.push(spec::DeviceMapping {
                        container: p.to_string_lossy().into_owned(),
                        host: p,
                        permissions: "rwm".into(),
                    })
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.container.cmp(&b.container));
    out
}

/// The namespaces `--pid`, `--ipc` and `--uts` choose.
#[derive(Clone, Copy)]
pub(super) enum NsKind {
    Pid,
    Ipc,
    Uts,
}

impl NsKind {
    fn proc_name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
        }
    }
}

/// Checks a `--pid`/`--ipc`/`--uts` value's form (at create), with dockerd's texts.
pub(super) fn check_ns_mode(kind: NsKind, mode: &str) -> Result<()> {
    let ok = match kind {
        NsKind::Pid => mode.is_empty() || mode == "host" || joined(mode).is_some(),
        NsKind::Ipc => {
            matches!(mode, "" | "private" | "shareable" | "host" | "none") || joined(mode).is_some()
        }
        NsKind::Uts => mode.is_empty() || mode == "host",
    };
    if ok {
        Ok(())
    } else {
        let k = kind.proc_name().to_ascii_uppercase();
        Err(EngineError::invalid(format!("invalid {k} mode: {mode}")))
    }
}

/// The container named by `container:<name>`, if that is the form.
fn joined(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:").filter(|n| !n.is_empty())
}

impl Svc {
    /// Resolves a checked `--pid`/`--ipc`/`--uts` value; `container:<name>` joins that running
    /// container's namespace.
    fn ns_mode(&self, kind: NsKind, mode: &str) -> Result<NsMode> {
        check_ns_mode(kind, mode)?;
        if mode == "host" {
            return Ok(NsMode::Host);
        }
        let Some(name) = joined(mode) else {
            return Ok(NsMode::New);
        };
        let other = self.get(name)?;
        let st = other.snapshot().state.state;
        if !st.running || st.pid <= 0 {
            let k = kind.proc_name().to_ascii_uppercase();
            return Err(EngineError::conflict(format!(
                "cannot join {k} of a non running container: {}",
                other.id
            )));
        }
        Ok(NsMode::Path(
            format!("/proc/{}/ns/{}", st.pid, kind.proc_name()).into(),
        ))
    }

    fn runtime_for(&self, s: &Stored) -> Result<Box<dyn Runtime>> {
        Ok(runtime::for_spec(&self.runtime_spec(&s.host.runtime)?))
    }

    pub(crate) fn shim(&self, id: &str) -> ShimClient {
        ShimClient::new(self.shim_socket(id))
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        self.start_locked(&c).await
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let s = c.snapshot();
        if s.state.state.running {
            return Err(EngineError::not_modified("container already started"));
        }
        let paths = self.paths(&c.id);
        match self.start_inner(c, &s, &paths).await {
            Ok(()) => Ok(()),
            Err(e) => {
                c.pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
                if let Some(att) = c.update(&paths, |st| {
                    st.state.state.error = e.message().to_string();
                    st.state.state.exit_code = 128;
                    st.attachment.take()
                })? {
                    let _ = self.networks.detach(&c.id, &att).await;
                }
                if c.snapshot().host.auto_remove {
                    // `docker run --rm` waits for the removal after a failed start.
                    let svc = self.clone();
                    let id = c.id.clone();
                    tokio::spawn(async move {
                        let _ = svc.remove(&id, true, true).await;
                    });
                }
                Err(e)
            }
        }
    }

    async fn start_inner(
        self: &Arc<Self>,
        c: &Arc<Container>,
        s: &Stored,
        paths: &Paths,
    ) -> Result<()> {
        let rec = &s.record;
        let host = &s.host;
        let t0 = std::time::Instant::now();
        runtime::cgroup::warm_attach_lock();
        let image = self.images.resolve(&rec.image_id).await?;
        std::fs::create_dir_all(paths.bundle())?;
        let socket = self.shim_socket(&c.id);
        if let Some(d) = socket.parent() {
            std::fs::create_dir_all(d)?;
        }
        c.detached().await;
        // The previous run's shim answers `wait` before it cleans up; let it finish first.
        ShimClient::new(socket.clone()).wait_gone().await;
        let rt_spec = self.runtime_spec(&host.runtime)?;
        std::fs::create_dir_all(&rt_spec.root)?;
        // A stale runtime container (engine crash) would block create.
        if rt_spec.root.join(&c.id).exists() {
            let rt = runtime::for_spec(&rt_spec);
            let id = c.id.clone();
            let _ = tokio::task::spawn_blocking(move || rt.delete(&id, true)).await;
        }

        let links = self.link_settings(&rec.name, host)?;
        let mut plan = s.network_plan().into_iter();
        let first = plan
            .next()
            .unwrap_or_else(|| crate::network::EndpointRequest {
                network: "none".into(),
                ..Default::default()
            });
        let att = self
            .networks
            .attach(&AttachRequest {
                container_id: c.id.clone(),
                container_name: rec.name.clone(),
                first,
                port_bindings: host
                    .port_bindings
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| {
                        let v = v
                            .unwrap_or_default()
                            .into_iter()
                            .map(|b| crate::network::PortBinding {
                                host_ip: b.host_ip,
                                host_port: b.host_port,
                            })
                            .collect();
                        (k, v)
                    })
                    .collect(),
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
            })
            .await?;
        c.update(paths, |st| st.attachment = Some(att.clone()))?;
        let host_net = host.network_mode == "host";
        let hostname = if host_net {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default()
        } else {
            rec.config.hostname.clone()
        };
        etc::write_all(
            &paths.dir,
            &att.primary.ip_address,
            &hostname,
            host_net,
            &att.dns_servers,
            &etc::EtcSettings {
                links: links.hosts,
                host_aliases: self.config.host_aliases.clone(),
                ..etc::EtcSettings::of(
                    host,
                    self.config
                        .host_gateway_ip
                        .as_deref()
                        .unwrap_or(&att.primary.gateway),
                )
            },
        )?;

        let usr = user::resolve(
            &passwd_root(&paths.upper(), &image.layer_dirs),
            &rec.config.user,
            host.group_add.as_deref().unwrap_or_default(),
        )?;
        let mut env = super::create::container_env(
            (!host_net).then_some(hostname.as_str()),
            links.env,
            rec.config.env.as_deref().unwrap_or_default(),
        );
        super::create::add_process_defaults(&mut env, rec.config.tty, &usr.home);
        let mut args: Vec<String> = std::iter::once(rec.path.clone())
            .chain(rec.args.iter().cloned())
            .collect();
        let mut mounts: Vec<BindMount> = vec![];
        if host.init == Some(true) {
            let tini = ["/usr/bin/tini-static", "/usr/bin/tini"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists())
                .ok_or_else(|| {
                    EngineError::invalid("no init binary (tini) installed for --init")
                })?;
            mounts.push(BindMount {
                source: tini.into(),
                destination: "/sbin/docker-init".into(),
                readonly: true,
            });
            args = ["/sbin/docker-init".to_string(), "--".to_string()]
                .into_iter()
                .chain(args)
                .collect();
        }
        for (file, dest) in [
            (paths.resolv_conf(), "/etc/resolv.conf"),
            (paths.hostname(), "/etc/hostname"),
            (paths.hosts(), "/etc/hosts"),
        ] {
            mounts.push(BindMount {
                source: file,
                destination: dest.into(),
                readonly: false,
            });
        }
        let mut tmpfs: Vec<(String, Vec<String>)> = host
            .tmpfs
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(dest, opts)| {
                let o = opts
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                (dest, o)
            })
            .collect();
        for m in rec.mounts.iter().filter(|m| m.typ == "tmpfs") {
            let mut o: Vec<String> = m
                .mode
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            o.push(if m.rw { "rw" } else { "ro" }.into());
            tmpfs.push((m.destination.clone(), o));
        }
        for m in rec.mounts.iter().filter(|m| m.typ != "tmpfs") {
            std::fs::create_dir_all(&m.source).ok();
            if m.typ == "volume" {
                self.volumes.acquire(&m.name)?;
                copy_up(
                    &image.layer_dirs,
                    &m.destination,
                    std::path::Path::new(&m.source),
                )
                .await;
            }
            mounts.push(BindMount {
                source: m.source.clone().into(),
                destination: m.destination.clone(),
                readonly: !m.rw,
            });
        }
        let netns = match (&att.netns_path, att.primary.network_name.as_str()) {
            (Some(p), _) => NetNs::Path(p.clone()),
            (None, "host") => NetNs::Host,
            (None, _) => NetNs::New,
        };
        let caps = spec::capabilities(
            host.privileged,
            host.cap_add.as_deref().unwrap_or_default(),
            host.cap_drop.as_deref().unwrap_or_default(),
        )?;
        let security_opt = host.security_opt.as_deref().unwrap_or_default();
        let seccomp = runtime::seccomp::for_container(host.privileged, security_opt, &caps)?;
        let pid_ns = self.ns_mode(NsKind::Pid, &host.pid_mode)?;
        let ipc_ns = self.ns_mode(NsKind::Ipc, &host.ipc_mode)?;
        let uts_ns = self.ns_mode(NsKind::Uts, &host.uts_mode)?;
        let input = SpecInput {
            process: ProcessInput {
                args,
                env,
                cwd: rec.config.working_dir.clone(),
                uid: usr.uid,
                gid: usr.gid,
                additional_gids: usr.additional_gids,
                tty: rec.config.tty,
                console_size: (host.console_size[0] > 0).then(|| {
                    (
                        u16::try_from(host.console_size[0]).unwrap_or(24),
                        u16::try_from(host.console_size[1]).unwrap_or(80),
                    )
                }),
                caps: caps.clone(),
                rlimits: rlimits(host)?,
                no_new_privileges: security_opt
                    .iter()
                    .any(|o| o.starts_with("no-new-privileges") && !o.ends_with("false")),
            },
            rootfs: paths.rootfs(),
            readonly_rootfs: host.readonly_rootfs,
            hostname,
            domainname: rec.config.domainname.clone(),
            sysctls: host.sysctls.clone().unwrap_or_default(),
            oom_score_adj: host.oom_score_adj,
            privileged: host.privileged,
            netns: Some(netns),
            devices: if host.privileged {
                privileged_devices()
            } else {
                devices(host)?
            },
            pid_ns,
            ipc_ns,
            uts_ns,
            no_shm: host.ipc_mode == "none",
            cgroup_ns: host.cgroupns_mode == "private",
            cgroups_path: crate::runtime::cgroup::container_path(&host.cgroup_parent, &c.id),
            mounts,
            tmpfs,
            resources: Resources::from(host),
            shm_size: host.shm_size,
            seccomp,
        };
        let oci = spec::build_spec(&input)?;
        // Derived files, rewritten at every start: no fsync needed.
        std::fs::write(
            paths.bundle().join("config.json"),
            serde_json::to_vec(&oci)?,
        )?;
        let opts = &host.log_config.config;
        let cfg = ShimConfig {
            id: c.id.clone(),
            bundle: paths.bundle(),
            runtime: rt_spec,
            rootfs: Some(RootfsMount {
                lower: image.layer_dirs.clone(),
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
                paths.log(&c.id)
            },
            log_max_size: opts
                .get("max-size")
                .or(self.config.log_opts.get("max-size"))
                .and_then(|s| crate::shim::jsonlog::parse_size(s))
                .unwrap_or(0),
            log_max_files: opts
                .get("max-file")
                .or(self.config.log_opts.get("max-file"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(1),
            socket: socket.clone(),
            exit_file: paths.exit_file(),
            console_size: input.process.console_size,
        };
        std::fs::write(paths.shim_config(), serde_json::to_vec(&cfg)?)?;
        let _ = std::fs::remove_file(paths.exit_file());
        let t_prep = t0.elapsed();
        client::spawn(
            &self.config.self_exe,
            &paths.shim_config(),
            &paths.shim_log(),
        )
        .await?;
        let t_created = t0.elapsed();
        let shim = ShimClient::new(socket);
        let pending: Vec<_> =
            std::mem::take(&mut *c.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for p in pending {
            if let Ok(conn) = shim.attach(p.stdin, p.stdout, p.stderr).await {
                let _ = p.tx.send(conn);
            }
        }
        let pid = shim.start().await?;
        tracing::debug!(id = %c.id, prepare = ?t_prep, created = ?t_created, started = ?t0.elapsed(), "container started");
        c.update(paths, |st| mark_running(st, pid))?;
        c.status.send_modify(|st| st.running = true);
        self.publish(c, "start", &[]);
        self.spawn_monitor(c.clone(), shim);
        self.spawn_health(c);
        Ok(())
    }

    /// At restore, a container recorded as not running whose monitor still answers (and has
    /// not recorded an exit) was being started when the engine died: the shim was spawned,
    /// maybe the runtime too, but the state was not written. Finish that start, as the last
    /// request asked, instead of leaving a process (or a shim waiting for `start`) that nothing
    /// tracks. Returns whether the container is now monitored as running.
    async fn adopt_half_started(self: &Arc<Self>, c: &Arc<Container>) -> bool {
        let paths = self.paths(&c.id);
        let shim = self.shim(&c.id);
        if paths.exit_file().exists() || !shim.alive().await {
            return false;
        }
        let pid = match shim.start().await {
            Ok(pid) => pid,
            // Started already: the runtime writes the init's pid once it runs.
            Err(e) => {
                let pid_file = paths.bundle().join("init.pid");
                let read_pid = || {
                    std::fs::read_to_string(&pid_file)
                        .ok()
                        .and_then(|p| p.trim().parse().ok())
                };
                let mut pid = None;
                for _ in 0..500 {
                    pid = read_pid();
                    if pid.is_some() || paths.exit_file().exists() || !shim.alive().await {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                match pid {
                    Some(pid) if !paths.exit_file().exists() => pid,
                    _ => {
                        tracing::warn!(id = %c.id, error = %e, "half-started container did not start");
                        return false;
                    }
                }
            }
        };
        tracing::warn!(id = %c.id, pid, "container was being started when the engine stopped; adopting it");
        if let Err(e) = c.update(&paths, |st| mark_running(st, pid)) {
            tracing::error!(id = %c.id, error = %e, "cannot record adopted start");
        }
        c.status.send_modify(|st| st.running = true);
        if let Some(att) = c.snapshot().attachment {
            if let Err(e) = self.networks.restore(&c.id, &att).await {
                tracing::warn!(id = %c.id, error = %e, "network restore failed");
            }
        }
        self.publish(c, "start", &[]);
        self.spawn_monitor(c.clone(), shim);
        self.spawn_health(c);
        true
    }

    /// Unmounts the devices of `c`'s volumes that no other running container uses.
    fn release_volumes(&self, c: &Container) {
        let mounts = c.snapshot().record.mounts;
        for m in mounts.iter().filter(|m| m.typ == "volume") {
            let busy = self.all().into_iter().any(|o| {
                let s = o.snapshot();
                o.id != c.id
                    && s.state.state.running
                    && s.record
                        .mounts
                        .iter()
                        .any(|x| x.typ == "volume" && x.name == m.name)
            });
            if !busy {
                self.volumes.release(&m.name);
            }
        }
    }

    /// Waits for the shim to report the exit, then records it.
    fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>, shim: ShimClient) {
        let svc = self.clone();
        tokio::spawn(async move {
            let code = match shim.wait().await {
                Ok(code) => Some(code),
                Err(e) => {
                    // A short-lived container may be gone before we ask; the exit file tells.
                    tracing::debug!(id = %c.id, error = %e, "shim wait failed");
                    None
                }
            };
            svc.handle_exit(&c, code).await;
        });
    }

    /// Records an exit (code from the shim, else from the exit file, else 255), releases the
    /// network, and applies AutoRemove and the restart policy.
    async fn handle_exit(self: &Arc<Self>, c: &Arc<Container>, code: Option<i32>) {
        let paths = self.paths(&c.id);
        let rec: Option<ExitRecord> = read_json(&paths.exit_file()).ok().flatten();
        if code.is_none() && rec.is_none() {
            tracing::warn!(id = %c.id, "shim gone without an exit record; assuming 255");
        }
        let code = code.or(rec.as_ref().map(|r| r.exit_code)).unwrap_or(255);
        let finished = rec.map(|r| r.finished_at).unwrap_or_else(now);
        // Make sure nothing is left behind if the shim died uncleanly.
        super::rootfs::unmount(&paths.rootfs());
        let att = c
            .update(&paths, |st| {
                let s = &mut st.state.state;
                s.status = "exited".into();
                s.running = false;
                s.paused = false;
                s.pid = 0;
                s.exit_code = i64::from(code);
                s.finished_at = finished;
                st.attachment.take()
            })
            .unwrap_or_else(|e| {
                tracing::error!(id = %c.id, error = %e, "failed to record exit");
                None
            });
        if let Some(att) = att {
            // Off the exit path: the next start of this container awaits it.
            let svc = self.clone();
            let id = c.id.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = svc.networks.detach(&id, &att).await {
                    tracing::warn!(%id, error = %e, "network detach failed");
                }
            });
            *c.detaching.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        self.release_volumes(c);
        self.publish(c, "die", &[("exitCode", code.to_string())]);
        c.status.send_modify(|st| {
            st.running = false;
            st.exits += 1;
            st.exit_code = i64::from(code);
        });
        let s = c.snapshot();
        let policy = &s.host.restart_policy;
        let restart = !s.state.manually_stopped
            && match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    code != 0
                        && (policy.maximum_retry_count == 0
                            || s.state.restart_count < policy.maximum_retry_count)
                }
                _ => false,
            };
        if restart {
            let svc = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                let n = c.snapshot().state.restart_count.clamp(0, 9) as u32;
                let _ = c.update(&paths, |st| {
                    st.state.state.restarting = true;
                    st.state.state.status = "restarting".into();
                });
                tokio::time::sleep(Duration::from_millis(100 << n).min(Duration::from_secs(60)))
                    .await;
                let _op = c.op.lock().await;
                let s = c.snapshot();
                if s.state.manually_stopped || s.state.state.running || c.status.borrow().removed {
                    let _ = c.update(&paths, |st| {
                        st.state.state.restarting = false;
                        if !st.state.state.running {
                            st.state.state.status = "exited".into();
                        }
                    });
                    return;
                }
                let _ = c.update(&paths, |st| st.state.restart_count += 1);
                if let Err(e) = svc.start_locked(&c).await {
                    tracing::warn!(id = %c.id, error = %e, "restart failed");
                    let _ = c.update(&paths, |st| {
                        st.state.state.restarting = false;
                        st.state.state.status = "exited".into();
                    });
                } else {
                    svc.publish(&c, "restart", &[]);
                }
            });
        } else if s.host.auto_remove {
            let svc = self.clone();
            let id = c.id.clone();
            tokio::spawn(async move {
                if let Err(e) = svc.remove(&id, true, true).await {
                    if e.kind() != crate::ErrorKind::NotFound {
                        tracing::warn!(%id, error = %e, "auto-remove failed");
                    }
                }
            });
        }
    }

    pub(crate) async fn runtime_call<F>(&self, c: &Container, f: F) -> Result<()>
    where
        F: FnOnce(&dyn Runtime, &str) -> Result<()> + Send + 'static,
    {
        let rt = self.runtime_for(&c.snapshot())?;
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || f(rt.as_ref(), &id))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
    }

    async fn wait_stopped(rx: &mut watch::Receiver<Status>, limit: Duration) -> bool {
        tokio::time::timeout(limit, rx.wait_for(|s| !s.running))
            .await
            .is_ok()
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop(
        self: &Arc<Self>,
        key: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        self.stop_locked(&c, signal, timeout).await
    }

    async fn stop_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let s = c.snapshot();
        if !s.state.state.running {
            return Err(EngineError::not_modified("container already stopped"));
        }
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or(s.record.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name)?;
        let t = timeout.or(s.record.config.stop_timeout).unwrap_or(10);
        let paths = self.paths(&c.id);
        c.update(&paths, |st| st.state.manually_stopped = true)?;
        let mut rx = c.subscribe();
        let paused = s.state.state.paused;
        if self
            .runtime_call(c, move |rt, id| rt.kill(id, sig, false))
            .await
            .is_ok()
        {
            self.publish(c, "kill", &[("signal", sig.to_string())]);
        }
        if paused {
            let _ = self.runtime_call(c, |rt, id| rt.resume(id)).await;
        }
        let limit = Duration::from_secs(u64::try_from(t).unwrap_or(0));
        if t < 0
            || !Self::wait_stopped(
                &mut rx,
                if t < 0 {
                    Duration::from_secs(3600)
                } else {
                    limit
                },
            )
            .await
        {
            let _ = self
                .runtime_call(c, |rt, id| rt.kill(id, libc::SIGKILL, true))
                .await;
            self.publish(c, "kill", &[("signal", libc::SIGKILL.to_string())]);
            if !Self::wait_stopped(&mut rx, Duration::from_secs(15)).await {
                return Err(EngineError::internal(format!(
                    "cannot stop container: {}: tried to kill container, but did not receive an exit event",
                    c.id
                )));
            }
        }
        self.publish(c, "stop", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, key: &str, signal: Option<&str>) -> Result<()> {
        let c = self.get(key)?;
        let s = c.snapshot();
        if !s.state.state.running {
            return Err(not_running(&c.id));
        }
        let sig = parse_signal(signal.unwrap_or(""))?;
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            c.update(&self.paths(&c.id), |st| st.state.manually_stopped = true)?;
        }
        self.runtime_call(&c, move |rt, id| rt.kill(id, sig, false))
            .await?;
        self.publish(&c, "kill", &[("signal", sig.to_string())]);
        if sig == libc::SIGKILL {
            let mut rx = c.subscribe();
            Self::wait_stopped(&mut rx, Duration::from_secs(10)).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        key: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        match self.stop_locked(&c, signal, timeout).await {
            Ok(()) => {}
            Err(e) if e.kind() == crate::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start_locked(&c).await?;
        self.publish(&c, "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn pause(self: &Arc<Self>, key: &str, pause: bool) -> Result<()> {
        let c = self.get(key)?;
        let s = c.snapshot().state.state;
        if !s.running {
            return Err(not_running(&c.id));
        }
        if pause && s.paused {
            return Err(EngineError::conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        if !pause && !s.paused {
            return Err(EngineError::conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        if pause {
            self.runtime_call(&c, |rt, id| rt.pause(id)).await?;
        } else {
            self.runtime_call(&c, |rt, id| rt.resume(id)).await?;
        }
        c.update(&self.paths(&c.id), |st| {
            st.state.state.paused = pause;
            st.state.state.status = if pause { "paused" } else { "running" }.into();
        })?;
        self.publish(&c, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, key: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        if c.status.borrow().removed {
            return Err(EngineError::not_found(format!("No such container: {key}")));
        }
        let s = c.snapshot();
        if s.state.state.running {
            if !force {
                let what = if s.state.state.paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(EngineError::conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    s.record.name
                )));
            }
            c.update(&self.paths(&c.id), |st| st.state.manually_stopped = true)?;
            let mut rx = c.subscribe();
            let _ = self
                .runtime_call(&c, |rt, id| rt.kill(id, libc::SIGKILL, true))
                .await;
            if s.state.state.paused {
                let _ = self.runtime_call(&c, |rt, id| rt.resume(id)).await;
            }
            if !Self::wait_stopped(&mut rx, Duration::from_secs(15)).await {
                return Err(EngineError::internal(format!(
                    "could not kill running container {}, cannot remove",
                    c.id
                )));
            }
        }
        let paths = self.paths(&c.id);
        super::rootfs::unmount(&paths.rootfs());
        // `docker rm` returns with the endpoint released (`network rm` may follow at once).
        c.detached().await;
        if let Some(att) = c.snapshot().attachment {
            let _ = self.networks.detach(&c.id, &att).await;
        }
        // The shim deletes the runtime's container when it exits (a shim still answering is
        // doing so now); only leftovers of a shim that died need it.
        let rt_spec = self.runtime_spec(&s.host.runtime)?;
        if rt_spec.root.join(&c.id).exists() && !self.shim(&c.id).alive().await {
            let rt = runtime::for_spec(&rt_spec);
            let id = c.id.clone();
            let _ = tokio::task::spawn_blocking(move || rt.delete(&id, true)).await;
        }
        self.forget(&c.id);
        self.execs.forget_container(&c.id);
        let trash = self
            .config
            .data_root
            .join("containers")
            .join(format!(".rm-{}", c.id));
        // Gone from the store once renamed; the files go in the background (`restore`
        // empties leftovers after a crash).
        if std::fs::rename(&paths.dir, &trash).is_ok() {
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(trash));
        }
        if volumes {
            for v in &s.record.anonymous_volumes {
                if self.volume_users(v).is_empty() {
                    let _ = self.volumes.remove(v);
                }
            }
        }
        self.publish(&c, "destroy", &[]);
        c.status.send_modify(|st| st.removed = true);
        Ok(())
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let c = self.get(key)?;
        let n = new_name.strip_prefix('/').unwrap_or(new_name);
        if !super::names::valid(n) {
            return Err(EngineError::invalid(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let _g = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let old = c.snapshot().record.name;
        if old == n {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(owner) = self.name_owner(n) {
            return Err(Self::name_conflict(n, &owner));
        }
        let paths = self.paths(&c.id);
        {
            let mut g = c.stored.lock().unwrap_or_else(|e| e.into_inner());
            g.record.name = n.to_string();
            crate::fsutil::write_json_atomic(&paths.config(), &g.record)?;
        }
        drop(_g);
        if let Err(e) = self.networks.rename_container(&c.id, n).await {
            tracing::warn!(id = %c.id, error = %e, "network endpoints keep the old name");
        }
        self.publish(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// Registers a waiter; the returned future resolves with the exit code once `cond` holds.
    pub fn wait(
        &self,
        key: &str,
        cond: WaitCondition,
    ) -> Result<impl std::future::Future<Output = i64> + Send + 'static> {
        let c = self.get(key)?;
        let mut rx = c.subscribe();
        let start = *rx.borrow();
        Ok(async move {
            let done = |s: &Status| match cond {
                WaitCondition::NotRunning => !s.running,
                WaitCondition::NextExit => s.exits > start.exits,
                WaitCondition::Removed => s.removed,
            };
            let r = rx.wait_for(done).await.map(|s| s.exit_code);
            match r {
                Ok(code) => code,
                // The container was dropped: it has been removed.
                Err(_) => start.exit_code,
            }
        })
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, key: &str, height: u16, width: u16) -> Result<()> {
        let c = self.get(key)?;
        if !c.snapshot().state.state.running {
            return Err(not_running(&c.id));
        }
        self.shim(&c.id).resize(height, width).await?;
        self.publish(
            &c,
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }

    /// `GET /containers/{id}/top`: the host's `ps` filtered to the container's pids.
    pub async fn top(&self, key: &str, ps_args: &str) -> Result<serde_json::Value> {
        let c = self.get(key)?;
        if !c.snapshot().state.state.running {
            return Err(not_running(&c.id));
        }
        let rt = self.runtime_for(&c.snapshot())?;
        let id = c.id.clone();
        let pids = tokio::task::spawn_blocking(move || rt.ps(&id))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))??;
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(String::from).collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| EngineError::internal(format!("ps: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::internal(format!(
                "Error running ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `POST /containers/prune`: removes stopped containers; returns their ids.
    pub async fn prune(self: &Arc<Self>, labels: &[String]) -> Result<Vec<String>> {
        let mut out = vec![];
        for c in self.all() {
            let s = c.snapshot();
            if s.state.state.running || !super::view::labels_match(&s, labels) {
                continue;
            }
            if self.remove(&c.id, false, false).await.is_ok() {
                out.push(c.id.clone());
            }
        }
        Ok(out)
    }

    /// Reloads every container record and reconnects to the shims of running ones.
    pub(crate) async fn restore(self: &Arc<Self>) -> Result<()> {
        let dir = self.config.data_root.join("containers");
        // Containers whose record holds their network; the rest of the network state is
        // released once all are loaded, before the restart-policy starts run.
        let mut holders = std::collections::HashSet::new();
        let mut revived = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".rm-") {
                let _ = std::fs::remove_dir_all(e.path());
                continue;
            }
            let paths = self.paths(&name);
            crate::fsutil::remove_interrupted_writes(&paths.dir);
            let stored = match Stored::load(&paths) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    // `config.json` is written last at create: a create cut short.
                    tracing::info!(id = %name, "removing half-created container");
                    if let Err(e) = std::fs::remove_dir_all(&paths.dir) {
                        tracing::warn!(id = %name, error = %e, "cannot remove half-created container");
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(id = %name, error = %e, "skipping unreadable container");
                    continue;
                }
            };
            if stored.attachment.is_some() {
                holders.insert(name.clone());
            }
            let was_running = stored.state.state.running;
            let policy = stored.host.restart_policy.name.clone();
            let revive = !was_running
                && stored.state.has_been_started
                && !stored.state.manually_stopped
                && (policy == "always" || policy == "unless-stopped");
            let c = Container::new(stored);
            self.insert(c.clone());
            if c.snapshot().state.state.restarting {
                let _ = c.update(&paths, |st| {
                    st.state.state.restarting = false;
                    st.state.state.status = "exited".into();
                });
            }
            if !was_running && self.adopt_half_started(&c).await {
                continue;
            }
            if revive {
                revived.push(c.id.clone());
                continue;
            }
            if !was_running {
                continue;
            }
            let shim = self.shim(&c.id);
            if shim.alive().await {
                if let Some(att) = c.snapshot().attachment {
                    if let Err(e) = self.networks.restore(&c.id, &att).await {
                        tracing::warn!(id = %c.id, error = %e, "network restore failed");
                    }
                }
                tracing::info!(id = %c.id, "reconnected to running container");
                self.spawn_monitor(c.clone(), shim);
                self.spawn_health(&c);
            } else {
                tracing::info!(id = %c.id, "container exited while the engine was down");
                self.handle_exit(&c, None).await;
            }
        }
        self.networks.release_orphans(&holders).await;
        for id in revived {
            // dockerd restarts these when it comes up.
            let svc = self.clone();
            tokio::spawn(async move {
                if let Err(e) = svc.start(&id).await {
                    tracing::warn!(%id, error = %e, "restart at engine start failed");
                }
            });
        }
        Ok(())
    }
}

/// The state of a container that has just started with init `pid`.
fn mark_running(st: &mut super::record::Stored, pid: i32) {
    let s = &mut st.state.state;
    s.status = "running".into();
    s.running = true;
    s.paused = false;
    s.restarting = false;
    s.pid = i64::from(pid);
    s.exit_code = 0;
    s.error.clear();
    s.started_at = now();
    s.finished_at = ZERO_TIME.into();
    st.state.has_been_started = true;
    st.state.manually_stopped = false;
}

/// Fills an empty volume with what the image has at its mount path (Docker's copy-up), from
/// the top-most layer holding that directory. Whiteouts below it are not considered.
async fn copy_up(layers: &[PathBuf], dest: &str, volume: &std::path::Path) {
    let empty = std::fs::read_dir(volume)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return;
    }
    let rel = dest.trim_start_matches('/');
    let Some(src) = layers.iter().rev().map(|l| l.join(rel)).find(|p| {
        p.is_dir()
            && std::fs::read_dir(p)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
    }) else {
        return;
    };
    let mut from = src.into_os_string();
    from.push("/.");
    let out = tokio::process::Command::new("cp")
        .arg("-a")
        .arg(&from)
        .arg(volume)
        .output()
        .await;
    if let Err(e) = out.as_ref().map_err(|e| e.to_string()).and_then(|o| {
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }) {
        tracing::warn!(volume = %volume.display(), error = %e, "volume copy-up failed");
    }
}

/// Keeps the header and the rows of `ps` output whose PID column is in `pids`.
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<serde_json::Value> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| EngineError::invalid("Couldn't find PID field in ps output"))?;
    let mut procs = vec![];
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(serde_json::json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert_eq!(parse_signal("").unwrap(), 9);
        assert!(parse_signal("BOGUS").is_err());
    }

    #[test]
    fn ps_rows_filtered() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n";
        let v = parse_ps(out, &[42]).unwrap();
        assert_eq!(v["Processes"][0][1], "42");
        assert_eq!(v["Processes"][0][7], "sleep 100");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
    }
}
