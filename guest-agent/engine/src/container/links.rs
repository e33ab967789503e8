//! Legacy container links (`--link name:alias` on the default bridge) and `--volumes-from`.

use berth_docker_api::container::{HostConfig, MountPoint};

use super::Svc;
use crate::{EngineError, ErrorKind, Result};

/// `name[:alias]` → (name, alias), leading `/` dropped (dockerd's `ParseLink`).
fn parse_link(link: &str) -> Result<(&str, &str)> {
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let name = name.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    if name.is_empty() || alias.is_empty() {
        return Err(EngineError::invalid(format!("invalid link format: {link}")));
    }
    Ok((name, alias))
}

/// `container[:ro|:rw]` of `--volumes-from`: the container and a forced mode, if any.
fn parse_volumes_from(spec: &str) -> Result<(&str, Option<bool>)> {
    match spec.split_once(':') {
        None => Ok((spec, None)),
        Some((c, "rw")) => Ok((c, Some(true))),
        Some((c, "ro")) => Ok((c, Some(false))),
        Some((_, m)) => Err(EngineError::invalid(format!("invalid mode: {m}"))),
    }
}

/// What links give a container at start: `/etc/hosts` lines and environment variables.
#[derive(Debug, Default)]
pub(super) struct LinkSettings {
    pub(super) hosts: Vec<String>,
    pub(super) env: Vec<String>,
}

/// dockerd's link variables for `alias` → a container at `ip` exposing `ports` (`80/tcp`…)
/// with `env`: `ALIAS_PORT`, `ALIAS_PORT_<n>_<PROTO>[_ADDR|_PORT|_PROTO]`, `ALIAS_NAME`,
/// `ALIAS_ENV_<var>` (no `_START`/`_END` variables for port ranges).
fn link_env(parent: &str, alias: &str, ip: &str, ports: &[String], env: &[String]) -> Vec<String> {
    let a = alias.to_ascii_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, String)> = ports
        .iter()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((n.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect();
    // Lowest port first; tcp before another protocol on the same port.
    ports.sort_by(|x, y| x.0.cmp(&y.0).then((x.1 != "tcp").cmp(&(y.1 != "tcp"))));
    let mut out = vec![];
    if let Some((n, proto)) = ports.first() {
        out.push(format!("{a}_PORT={proto}://{ip}:{n}"));
    }
    for (n, proto) in &ports {
        let p = proto.to_ascii_uppercase();
        out.push(format!("{a}_PORT_{n}_{p}={proto}://{ip}:{n}"));
        out.push(format!("{a}_PORT_{n}_{p}_ADDR={ip}"));
        out.push(format!("{a}_PORT_{n}_{p}_PORT={n}"));
        out.push(format!("{a}_PORT_{n}_{p}_PROTO={proto}"));
    }
    out.push(format!("{a}_NAME=/{parent}/{alias}"));
    for v in env {
        let Some((k, val)) = v.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            out.push(format!("{a}_ENV_{k}={val}"));
        }
    }
    out
}

impl Svc {
    /// At create: every linked container exists (dockerd's text).
    pub(super) fn check_links(&self, host: &HostConfig) -> Result<()> {
        for l in host.links.as_deref().unwrap_or_default() {
            let (name, _) = parse_link(l)?;
            self.get(name).map_err(|e| {
                EngineError::new(e.kind(), format!("could not get container for {name}: {e}"))
            })?;
        }
        Ok(())
    }

    /// At start: the `/etc/hosts` lines of the linked containers (`ip\talias hostname name`,
    /// as dockerd writes them), which must be running on the default bridge, and their
    /// variables.
    pub(super) fn link_settings(&self, own_name: &str, host: &HostConfig) -> Result<LinkSettings> {
        let mut out = LinkSettings::default();
        for l in host.links.as_deref().unwrap_or_default() {
            let (name, alias) = parse_link(l)?;
            let child = self.get(name).map_err(|e| {
                EngineError::new(e.kind(), format!("could not get container for {name}: {e}"))
            })?;
            let s = child.snapshot();
            let ip = s
                .attachment
                .as_ref()
                .filter(|_| s.state.state.running)
                .map(|a| a.primary.ip_address.clone())
                .filter(|ip| !ip.is_empty());
            let Some(ip) = ip else {
                return Err(EngineError::invalid(format!(
                    "Cannot link to a non running container: /{} AS /{own_name}/{alias}",
                    s.record.name
                )));
            };
            let mut names = format!("{alias} {}", s.record.config.hostname);
            if alias != s.record.name {
                names.push(' ');
                names.push_str(&s.record.name);
            }
            let ports: Vec<String> = s
                .record
                .config
                .exposed_ports
                .clone()
                .unwrap_or_default()
                .into_keys()
                .collect();
            out.env.extend(link_env(
                own_name.trim_start_matches('/'),
                alias,
                &ip,
                &ports,
                s.record.config.env.as_deref().unwrap_or_default(),
            ));
            out.hosts.push(format!("{ip}\t{names}"));
        }
        Ok(out)
    }

    /// `DELETE /containers/{parent}/{alias}?link=true` (`docker rm --link parent/alias`):
    /// drops the link named `alias` from `parent`; both containers stay. Effective at the
    /// parent's next start (its `/etc/hosts` and variables are made at start).
    pub async fn remove_link(&self, parent: &str, alias: &str) -> Result<()> {
        let missing = || EngineError::not_found(format!("No such container: {parent}/{alias}"));
        let c = self.get(parent).map_err(|e| match e.kind() {
            ErrorKind::NotFound => missing(),
            _ => e,
        })?;
        let _op = c.op.lock().await;
        let mut host = c.snapshot().host;
        let links = host.links.take().unwrap_or_default();
        let before = links.len();
        let kept: Vec<String> = links
            .into_iter()
            .filter(|l| parse_link(l).map_or(true, |(_, a)| a != alias))
            .collect();
        if kept.len() == before {
            return Err(missing());
        }
        host.links = (!kept.is_empty()).then_some(kept);
        c.set_host(&self.paths(&c.id), host)
    }

    /// `--volumes-from`: the other containers' volumes and binds (not their tmpfs), with the
    /// mode forced by `:ro`/`:rw` if given.
    pub(super) fn volumes_from(&self, host: &HostConfig) -> Result<Vec<MountPoint>> {
        let mut out = vec![];
        for spec in host.volumes_from.as_deref().unwrap_or_default() {
            let (name, rw) = parse_volumes_from(spec)?;
            let other = self.get(name)?.snapshot();
            for m in other.record.mounts.into_iter().filter(|m| m.typ != "tmpfs") {
                let mut m = m.clone();
                if let Some(rw) = rw {
                    m.rw = rw;
                }
                out.push(m);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_env_like_dockerd() {
        let env = link_env(
            "web",
            "my-db",
            "172.17.0.2",
            &["6379/tcp".into(), "53/udp".into(), "53/tcp".into()],
            &["PATH=/bin".into(), "PASSWORD=s=cret".into(), "BARE".into()],
        );
        assert_eq!(
            env,
            [
                "MY_DB_PORT=tcp://172.17.0.2:53",
                "MY_DB_PORT_53_TCP=tcp://172.17.0.2:53",
                "MY_DB_PORT_53_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_TCP_PORT=53",
                "MY_DB_PORT_53_TCP_PROTO=tcp",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_6379_TCP=tcp://172.17.0.2:6379",
                "MY_DB_PORT_6379_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_6379_TCP_PORT=6379",
                "MY_DB_PORT_6379_TCP_PROTO=tcp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PASSWORD=s=cret",
            ]
        );
    }

    #[test]
    fn links_and_volumes_from_parse_like_dockerd() {
        assert_eq!(parse_link("db:alias").unwrap(), ("db", "alias"));
        assert_eq!(parse_link("/db").unwrap(), ("db", "db"));
        assert_eq!(parse_link("/db:/web/alias").unwrap(), ("db", "alias"));
        assert!(parse_link(":x").is_err());
        assert_eq!(parse_volumes_from("c").unwrap(), ("c", None));
        assert_eq!(parse_volumes_from("c:ro").unwrap(), ("c", Some(false)));
        assert_eq!(
            parse_volumes_from("c:zz").unwrap_err().to_string(),
            "invalid mode: zz"
        );
    }
}
