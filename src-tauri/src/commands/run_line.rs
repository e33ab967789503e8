//! The `docker run` command line that would recreate a container, from its inspect data and its
//! image's config: only what differs from the image's defaults is written (env, labels, user,
//! working dir, entrypoint, command), as a user would have typed it. Words are quoted for a
//! POSIX shell.

use bollard::models::{ContainerInspectResponse, ImageConfig, PortBinding};

/// Quotes `w` for a POSIX shell when it needs it.
pub fn shell_quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// `-p` values from the requested port bindings, sorted: `80`, `8080:80`, `127.0.0.1::80/udp`.
fn publish_args(bindings: &[(String, Option<Vec<PortBinding>>)]) -> Vec<String> {
    let mut out = vec![];
    for (port, list) in bindings {
        let container = port.strip_suffix("/tcp").unwrap_or(port);
        for b in list.iter().flatten() {
            let ip = b.host_ip.as_deref().unwrap_or("");
            let host = b.host_port.as_deref().unwrap_or("");
            out.push(match (ip.is_empty(), host.is_empty()) {
                (true, true) => container.to_string(),
                (true, false) => format!("{host}:{container}"),
                (false, _) => format!("{ip}:{host}:{container}"),
            });
        }
    }
    out.sort();
    out
}

/// The words of the `docker run` line (without quoting).
pub fn run_words(c: &ContainerInspectResponse, image: Option<&ImageConfig>) -> Vec<String> {
    let cfg = c.config.clone().unwrap_or_default();
    let host = c.host_config.clone().unwrap_or_default();
    let img = image.cloned().unwrap_or_default();
    let mut w: Vec<String> = vec!["docker".into(), "run".into(), "-d".into()];
    fn flag(w: &mut Vec<String>, f: &str, v: String) {
        w.push(f.into());
        w.push(v);
    }
    if let Some(name) = c.name.as_deref().map(|n| n.trim_start_matches('/')) {
        if !name.is_empty() {
            flag(&mut w, "--name", name.into());
        }
    }
    if cfg.tty == Some(true) {
        w.push("-t".into());
    }
    if cfg.open_stdin == Some(true) {
        w.push("-i".into());
    }
    let differs = |mine: &Option<String>, theirs: &Option<String>| {
        let m = mine.as_deref().unwrap_or("");
        !m.is_empty() && m != theirs.as_deref().unwrap_or("")
    };
    if differs(&cfg.user, &img.user) {
        flag(&mut w, "-u", cfg.user.clone().unwrap_or_default());
    }
    if differs(&cfg.working_dir, &img.working_dir) {
        flag(&mut w, "-w", cfg.working_dir.clone().unwrap_or_default());
    }
    let image_env = img.env.clone().unwrap_or_default();
    for e in cfg.env.iter().flatten() {
        if !image_env.contains(e) {
            flag(&mut w, "-e", e.clone());
        }
    }
    let ports: Vec<_> = host
        .port_bindings
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    for p in publish_args(&ports) {
        flag(&mut w, "-p", p);
    }
    if host.publish_all_ports == Some(true) {
        w.push("-P".into());
    }
    let binds = host.binds.clone().unwrap_or_default();
    for b in &binds {
        flag(&mut w, "-v", b.clone());
    }
    // Named volumes given as --mount or created by the engine for -v NAME:/path are in Mounts;
    // the anonymous ones made for the image's VOLUMEs are not repeated.
    let image_volumes = img.volumes.clone().unwrap_or_default();
    for m in c.mounts.iter().flatten() {
        let (Some(dest), Some(name)) = (m.destination.as_deref(), m.name.as_deref()) else {
            continue;
        };
        let covered = binds
            .iter()
            .any(|b| b.split(':').nth(1) == Some(dest) || b == dest);
        let is_volume = m.typ.as_deref() == Some("volume");
        if !is_volume || covered || image_volumes.iter().any(|v| v == dest) {
            continue;
        }
        let ro = if m.rw == Some(false) { ":ro" } else { "" };
        flag(&mut w, "-v", format!("{name}:{dest}{ro}"));
    }
    if let Some(net) = host.network_mode.as_deref() {
        if !matches!(net, "" | "default" | "bridge") {
            flag(&mut w, "--network", net.into());
        }
    }
    if let Some(rp) = &host.restart_policy {
        let name = rp.name.map(|n| n.to_string()).unwrap_or_default();
        match (name.as_str(), rp.maximum_retry_count.unwrap_or(0)) {
            ("" | "no", _) => {}
            ("on-failure", n) if n > 0 => flag(&mut w, "--restart", format!("on-failure:{n}")),
            (n, _) => flag(&mut w, "--restart", n.into()),
        }
    }
    if host.auto_remove == Some(true) {
        w.push("--rm".into());
    }
    if host.privileged == Some(true) {
        w.push("--privileged".into());
    }
    if host.init == Some(true) {
        w.push("--init".into());
    }
    for cap in host.cap_add.iter().flatten() {
        flag(&mut w, "--cap-add", cap.clone());
    }
    for h in host.extra_hosts.iter().flatten() {
        flag(&mut w, "--add-host", h.clone());
    }
    if let Some(m) = host.memory.filter(|m| *m > 0) {
        flag(&mut w, "-m", m.to_string());
    }
    if let Some(n) = host.nano_cpus.filter(|n| *n > 0) {
        flag(&mut w, "--cpus", format!("{}", n as f64 / 1e9));
    }
    let image_labels = img.labels.clone().unwrap_or_default();
    let mut labels: Vec<_> = cfg
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| image_labels.get(k) != Some(v))
        .collect();
    labels.sort();
    for (k, v) in labels {
        flag(&mut w, "-l", format!("{k}={v}"));
    }
    // --entrypoint takes one word; the rest of a longer entrypoint goes before the command.
    let entrypoint = cfg.entrypoint.clone().unwrap_or_default();
    let new_entrypoint = entrypoint != img.entrypoint.clone().unwrap_or_default();
    let mut cmd = cfg.cmd.clone().unwrap_or_default();
    if new_entrypoint {
        match entrypoint.split_first() {
            Some((first, rest)) => {
                flag(&mut w, "--entrypoint", first.clone());
                cmd.splice(0..0, rest.iter().cloned());
            }
            None => flag(&mut w, "--entrypoint", String::new()),
        }
    }
    w.push(cfg.image.clone().unwrap_or_default());
    if new_entrypoint || cmd != img.cmd.clone().unwrap_or_default() {
        w.extend(cmd);
    }
    w
}

/// The `docker run` line, quoted for a shell.
pub fn run_line(c: &ContainerInspectResponse, image: Option<&ImageConfig>) -> String {
    run_words(c, image)
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerConfig, HostConfig, MountPoint, RestartPolicy, RestartPolicyNameEnum,
    };

    fn image() -> ImageConfig {
        ImageConfig {
            env: Some(vec!["PATH=/usr/bin:/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            volumes: Some(vec!["/anon".into()]),
            labels: Some([("from".to_string(), "image".to_string())].into()),
            ..Default::default()
        }
    }

    fn container() -> ContainerInspectResponse {
        ContainerInspectResponse {
            name: Some("/web".into()),
            config: Some(ContainerConfig {
                image: Some("busybox".into()),
                env: Some(vec![
                    "PATH=/usr/bin:/bin".into(),
                    "GREETING=hi there".into(),
                ]),
                cmd: Some(vec!["httpd".into(), "-f".into()]),
                labels: Some(
                    [
                        ("from".to_string(), "image".to_string()),
                        ("team".to_string(), "blue".to_string()),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(
                    [
                        (
                            "80/tcp".to_string(),
                            Some(vec![PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some(String::new()),
                            }]),
                        ),
                        (
                            "53/udp".to_string(),
                            Some(vec![PortBinding {
                                host_ip: None,
                                host_port: Some("5353".into()),
                            }]),
                        ),
                    ]
                    .into(),
                ),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: Some(0),
                }),
                network_mode: Some("bridge".into()),
                ..Default::default()
            }),
            mounts: Some(vec![
                MountPoint {
                    typ: Some("volume".into()),
                    name: Some("data".into()),
                    destination: Some("/data".into()),
                    rw: Some(false),
                    ..Default::default()
                },
                MountPoint {
                    typ: Some("volume".into()),
                    name: Some("f00".into()),
                    destination: Some("/anon".into()),
                    rw: Some(true),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn only_what_differs_from_the_image_is_written() {
        assert_eq!(
            run_line(&container(), Some(&image())),
            "docker run -d --name web -e 'GREETING=hi there' -p 127.0.0.1::80 -p 5353:53/udp \
             -v data:/data:ro --restart unless-stopped -l team=blue busybox httpd -f"
        );
    }

    #[test]
    fn the_image_command_is_left_out_and_an_entrypoint_split() {
        let mut c = container();
        let cfg = c.config.as_mut().unwrap();
        cfg.cmd = Some(vec!["sh".into()]);
        assert!(run_line(&c, Some(&image())).ends_with(" busybox"));
        let cfg = c.config.as_mut().unwrap();
        cfg.entrypoint = Some(vec!["sh".into(), "-c".into()]);
        cfg.cmd = Some(vec!["echo it's".into()]);
        assert!(
            run_line(&c, Some(&image())).ends_with(r" --entrypoint sh busybox -c 'echo it'\''s'")
        );
    }

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("a=b:/c,d"), "a=b:/c,d");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
