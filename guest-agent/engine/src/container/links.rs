//! Legacy container links (`--link name:alias` on the default bridge) and `--volumes-from`.

use berth_docker_api::container::{HostConfig, MountPoint};

use super::Svc;
use crate::{EngineError, Result};

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
    /// as dockerd writes them), which must be running on the default bridge.
    pub(super) fn link_host_lines(&self, own_name: &str, host: &HostConfig) -> Result<Vec<String>> {
        let mut out = vec![];
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
            out.push(format!("{ip}\t{names}"));
        }
        Ok(out)
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
