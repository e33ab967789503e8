//! The engine as PID 1's child: its command line, and spawning it with its output copied to the
//! console and `/run/berth/engine.log`.

use std::process::Stdio;

use nix::unistd::Pid;

use super::cmdline::BootArgs;
use super::disk::DATA_ROOT;

/// Path of the agent binary inside the guest (the engine and PID 1 are the same binary).
pub(crate) const AGENT_BIN: &str = "/usr/bin/berth-agent";
/// Runtime state that must not survive a reboot.
const EXEC_ROOT: &str = "/run/berth/exec";
/// In-guest Docker API socket (debugging from the console, health checks).
pub(crate) const UNIX_SOCKET: &str = "/run/berth/engine.sock";
/// Whether the agent's listeners accept `vsock://` hosts (`listen.rs`, host side of the work).
/// They do: `-H vsock://:2375` also starts the control and forward endpoints.
const VSOCK_LISTENER: bool = true;

/// A daemon.json the user (or the host, over the control protocol) keeps on the data disk; the
/// engine reads it when present, so settings survive reboots and image updates.
pub(crate) const CONFIG_FILE: &str = "/var/lib/berth/daemon.json";

/// The host's daemon.json for this boot (`<berth state dir>/daemon.json` on the host), passed by
/// QEMU as the fw_cfg item `opt/berth/daemon.json`.
const HOST_CONFIG: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/berth/daemon.json/raw";
/// Where PID 1 copies it (sysfs reports no file size, and the engine may re-read it); a
/// `restart_engine` request replaces it with the host's current file.
const HOST_CONFIG_COPY: &str = "/run/berth/daemon.json";
/// The daemon.json an engine restart stages (see [`restart_config_file`]).
pub(crate) const RESTART_CONFIG: &str = HOST_CONFIG_COPY;

/// The config file for the engine: the host's daemon.json when it sent one, else the one kept
/// on the data disk, if any.
pub(crate) fn config_file() -> Option<&'static str> {
    match std::fs::read(HOST_CONFIG) {
        Ok(body) => {
            let copied = std::fs::create_dir_all("/run/berth")
                .and_then(|()| std::fs::write(HOST_CONFIG_COPY, &body));
            match copied {
                Ok(()) => {
                    tracing::info!("engine configuration from the host ({} bytes)", body.len());
                    return Some(HOST_CONFIG_COPY);
                }
                Err(e) => tracing::warn!("cannot copy the host's daemon.json: {e}"),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot read the host's daemon.json: {e}"),
    }
    std::path::Path::new(CONFIG_FILE)
        .exists()
        .then_some(CONFIG_FILE)
}

/// The config file for an engine restarted on the host's request: the host's daemon.json as
/// the request staged it, else the one on the data disk, as at boot.
pub(crate) fn restart_config_file() -> Option<&'static str> {
    [HOST_CONFIG_COPY, CONFIG_FILE]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The names Docker Desktop gives the host inside containers.
const HOST_ALIASES: [&str; 2] = ["host.docker.internal", "gateway.docker.internal"];

/// The engine's arguments for this boot; `config_file` when it exists.
pub(crate) fn args(boot: &BootArgs, config_file: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = ["--data-root", DATA_ROOT, "--exec-root", EXEC_ROOT]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(["-H".into(), format!("unix://{UNIX_SOCKET}")]);
    if VSOCK_LISTENER {
        a.extend([
            "-H".into(),
            format!("vsock://:{}", berth_agent_proto::DOCKER_API_PORT),
        ]);
    }
    for m in &boot.registry_mirrors {
        a.extend(["--registry-mirror".into(), m.clone()]);
    }
    let mut insecure: Vec<String> = boot
        .registry_mirrors
        .iter()
        .filter_map(|m| registry_host(m))
        .chain(boot.insecure_registries.iter().cloned())
        .collect();
    insecure.dedup();
    for i in insecure {
        a.extend(["--insecure-registry".into(), i]);
    }
    // Containers reach the host's services as Docker Desktop's do: slirp's gateway is the
    // host's loopback.
    a.extend(["--host-gateway-ip".into(), super::net::GATEWAY.into()]);
    for name in HOST_ALIASES {
        a.extend(["--host-alias".into(), name.to_string()]);
    }
    if let Some(f) = config_file {
        a.extend(["--config-file".into(), f.to_string()]);
    }
    if let Some(l) = &boot.log_level {
        a.extend(["--log-level".into(), l.clone()]);
    }
    a
}

/// `host[:port]` of a mirror URL such as `http://10.0.2.2:5000/`: the host's loopback registry
/// is plain HTTP, so a mirror named on the command line is also an insecure registry.
fn registry_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or("");
    (!host.is_empty()).then(|| host.to_string())
}

/// Starts the engine; its stdout and stderr are copied by log threads.
pub(crate) fn spawn(args: &[String]) -> std::io::Result<Pid> {
    std::fs::create_dir_all(EXEC_ROOT)?;
    let mut child = super::command(AGENT_BIN)
        .args(args)
        // The log goes to a serial console and files: no colour codes.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(out) = child.stdout.take() {
        super::log::copy_lines(out, "engine.log");
    }
    if let Some(err) = child.stderr.take() {
        super::log::copy_lines(err, "engine.log");
    }
    let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
    // PID 1's reaper collects the exit status; dropping `Child` neither waits nor kills.
    drop(child);
    Ok(Pid::from_raw(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_default_boot() {
        let a = args(&BootArgs::default(), None);
        assert_eq!(
            a[..6],
            [
                "--data-root",
                "/var/lib/berth",
                "--exec-root",
                "/run/berth/exec",
                "-H",
                "unix:///run/berth/engine.sock"
            ]
        );
        assert!(!a.iter().any(|x| x.contains("registry")));
    }

    #[test]
    fn args_mirror_is_also_insecure() {
        let boot = BootArgs {
            registry_mirrors: vec!["http://10.0.2.2:5000".into()],
            insecure_registries: vec!["10.0.2.2:5000".into(), "reg:1".into()],
            log_level: Some("debug".into()),
            ..Default::default()
        };
        let a = args(&boot, Some(CONFIG_FILE)).join(" ");
        assert!(a.contains("--registry-mirror http://10.0.2.2:5000"), "{a}");
        assert_eq!(
            a.matches("--insecure-registry 10.0.2.2:5000").count(),
            1,
            "{a}"
        );
        assert!(a.contains("--insecure-registry reg:1"), "{a}");
        assert!(
            a.contains("--config-file /var/lib/berth/daemon.json"),
            "{a}"
        );
        assert!(a.ends_with("--log-level debug"), "{a}");
    }

    #[test]
    fn registry_host_strips_scheme_and_path() {
        assert_eq!(
            registry_host("http://10.0.2.2:5000/v2/").as_deref(),
            Some("10.0.2.2:5000")
        );
        assert_eq!(registry_host("mirror:443").as_deref(), Some("mirror:443"));
        assert_eq!(registry_host("http://"), None);
    }
}
