//! Inspect (`ContainerInspectResponse`) and list (`ContainerSummary`) shapes, with dockerd's
//! zero values, and the list filters.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::record::Stored;
use super::{Container, Svc};
use crate::network::{Endpoint, EndpointRequest};
use crate::Result;

fn ports_map(s: &Stored) -> Value {
    let mut m = serde_json::Map::new();
    for p in s
        .record
        .config
        .exposed_ports
        .clone()
        .unwrap_or_default()
        .keys()
    {
        m.insert(p.clone(), Value::Null);
    }
    if let Some(att) = &s.attachment {
        for (p, b) in &att.ports {
            let list: Vec<Value> = b
                .iter()
                .map(|b| {
                    let ip = if b.host_ip.is_empty() {
                        "0.0.0.0"
                    } else {
                        &b.host_ip
                    };
                    json!({"HostIp": ip, "HostPort": b.host_port})
                })
                .collect();
            m.insert(p.clone(), Value::Array(list));
        }
    }
    Value::Object(m)
}

/// `IPAMConfig` of an endpoint: the addresses asked for, `null` when none (dockerd leaves
/// empty ones out).
fn ipam_config(r: &EndpointRequest) -> Value {
    let mut m = serde_json::Map::new();
    if !r.ipv4_address.is_empty() {
        m.insert("IPv4Address".into(), json!(r.ipv4_address));
    }
    if !r.ipv6_address.is_empty() {
        m.insert("IPv6Address".into(), json!(r.ipv6_address));
    }
    if !r.link_local_ips.is_empty() {
        m.insert("LinkLocalIPs".into(), json!(r.link_local_ips));
    }
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// `NetworkSettings.Networks`: every network the container is on while it runs (address,
/// gateway, MAC, endpoint), else the networks it will join, without addresses; with what
/// was asked for each (`IPAMConfig`, `Links`, `DriverOpts`).
fn networks(svc: &Svc, c: &Container, s: &Stored) -> Value {
    let short_id = &c.id[..c.id.len().min(12)];
    let entry = |e: &Endpoint, req: Option<&EndpointRequest>, user_net: bool| {
        let aliases = (!e.aliases.is_empty()).then(|| e.aliases.clone());
        // dockerd's DNSNames: name, aliases, short id, on user networks only.
        let dns_names = user_net.then(|| {
            let mut v = vec![s.record.name.clone()];
            v.extend(e.aliases.iter().cloned());
            v.push(short_id.to_string());
            v
        });
        json!({
            "IPAMConfig": req.map_or(Value::Null, ipam_config),
            "Links": req.map(|r| &r.links).filter(|l| !l.is_empty()),
            "Aliases": aliases,
            "MacAddress": e.mac_address,
            "DriverOpts": req.and_then(|r| r.driver_opts.as_ref()),
            "GwPriority": 0,
            "NetworkID": e.network_id,
            "EndpointID": e.endpoint_id,
            "Gateway": e.gateway,
            "IPAddress": e.ip_address,
            "IPPrefixLen": e.ip_prefix_len,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": dns_names,
        })
    };
    let user_net = |name: &str| !matches!(name, "bridge" | "host" | "none");
    let plan = s.network_plan();
    let mut m = serde_json::Map::new();
    match &s.attachment {
        Some(a) => {
            for e in a.endpoints() {
                let req = plan
                    .iter()
                    .find(|r| svc.network_id(&r.network) == e.network_id);
                let v = entry(e, req, user_net(&e.network_name));
                m.insert(e.network_name.clone(), v);
            }
        }
        None => {
            for r in &plan {
                let (name, id) = svc
                    .networks
                    .resolve(&r.network)
                    .unwrap_or_else(|_| (r.network.clone(), String::new()));
                let planned = Endpoint {
                    network_name: name.clone(),
                    network_id: id,
                    aliases: r.aliases.clone(),
                    mac_address: r.mac_address.clone(),
                    ..Default::default()
                };
                m.insert(name.clone(), entry(&planned, Some(r), user_net(&name)));
            }
        }
    }
    Value::Object(m)
}

/// `GET /containers/{id}/json`.
pub fn inspect(svc: &Svc, c: &Container, size: bool) -> Result<Value> {
    let s = c.snapshot();
    let paths = svc.paths(&c.id);
    let a = s.attachment.clone().unwrap_or_default();
    let mut state = serde_json::to_value(&s.state.state)?;
    state["Status"] = json!(status_word(&s));
    let ids = svc.execs.ids_of(&c.id);
    let exec_ids = if ids.is_empty() {
        Value::Null
    } else {
        json!(ids)
    };
    let log_path = if s.host.log_config.typ == "json-file" {
        paths.log(&c.id).display().to_string()
    } else {
        String::new()
    };
    let sandbox_key = a
        .netns_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut v = json!({
        "Id": c.id,
        "Created": s.record.created,
        "Path": s.record.path,
        "Args": s.record.args,
        "State": state,
        "Image": s.record.image_id,
        "ResolvConfPath": paths.resolv_conf(),
        "HostnamePath": paths.hostname(),
        "HostsPath": paths.hosts(),
        "LogPath": log_path,
        "Name": format!("/{}", s.record.name),
        "RestartCount": s.state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids,
        "HostConfig": s.host,
        "GraphDriver": {
            "Data": {
                "LowerDir": "",
                "MergedDir": paths.rootfs(),
                "UpperDir": paths.upper(),
                "WorkDir": paths.work(),
            },
            "Name": "overlay2",
        },
        "Mounts": s.record.mounts,
        "Config": s.record.config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": sandbox_key,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_map(&s),
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": a.primary.endpoint_id,
            "Gateway": a.primary.gateway,
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": a.primary.ip_address,
            "IPPrefixLen": a.primary.ip_prefix_len,
            "IPv6Gateway": "",
            "MacAddress": a.primary.mac_address,
            "Networks": networks(svc, c, &s),
        },
    });
    if size {
        sizes(svc, &mut v, &paths.upper(), &s.record.image_id);
    }
    Ok(v)
}

fn status_word(s: &Stored) -> &'static str {
    let st = &s.state.state;
    if st.paused {
        "paused"
    } else if st.restarting {
        "restarting"
    } else if st.running {
        "running"
    } else if s.state.has_been_started {
        "exited"
    } else {
        "created"
    }
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if secs < 120 {
        "About a minute".into()
    } else if secs < 3600 {
        format!("{} minutes", secs / 60)
    } else if secs < 7200 {
        "About an hour".into()
    } else if secs < 48 * 3600 {
        format!("{} hours", secs / 3600)
    } else {
        format!("{} days", secs / 86400)
    }
}

/// The `Status` column text: `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`.
fn status_text(s: &Stored) -> String {
    let st = &s.state.state;
    let now = chrono::Utc::now();
    match status_word(s) {
        "running" | "paused" => {
            let up = parse_time(&st.started_at)
                .map(|t| now - t)
                .unwrap_or_default();
            let mut t = format!("Up {}", human_duration(up));
            if st.paused {
                t.push_str(" (Paused)");
            } else if let Some(h) = &st.health {
                if h.status == "starting" {
                    t.push_str(" (health: starting)");
                } else {
                    t.push_str(&format!(" ({})", h.status));
                }
            }
            t
        }
        "restarting" => format!("Restarting ({}) Less than a second ago", st.exit_code),
        "exited" => {
            let ago = parse_time(&st.finished_at)
                .map(|t| now - t)
                .unwrap_or_default();
            format!("Exited ({}) {} ago", st.exit_code, human_duration(ago))
        }
        _ => "Created".into(),
    }
}

fn created_nanos(s: &Stored) -> i64 {
    parse_time(&s.record.created)
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// The ps filter keys dockerd accepts.
const LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// Whether `want` (`80`, `80/udp`, `8000-8080/tcp`) covers one of `ports` (`80/tcp` keys).
fn port_filter_matches<'a>(want: &str, ports: impl Iterator<Item = &'a String>) -> bool {
    let (range, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
        return false;
    };
    ports
        .filter_map(|p| {
            let (n, pr) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            Some((n.parse::<u16>().ok()?, pr))
        })
        .any(|(n, pr)| pr == proto && (lo..=hi).contains(&n))
}

/// `SizeRw` (the writable layer) and `SizeRootFs` (that plus the image), as dockerd reports.
fn sizes(svc: &Svc, v: &mut Value, upper: &std::path::Path, image_id: &str) {
    let rw = crate::fsutil::dir_size(upper) as i64;
    v["SizeRw"] = json!(rw);
    v["SizeRootFs"] = json!(rw + svc.images.size_of(image_id));
}

/// One `ContainerSummary` of `GET /containers/json`.
pub fn summary(svc: &Svc, c: &Container, size: bool) -> Value {
    let s = c.snapshot();
    let mut ports = vec![];
    if let Some(a) = &s.attachment {
        for (p, binds) in &a.ports {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            for b in binds {
                let ip = if b.host_ip.is_empty() {
                    "0.0.0.0"
                } else {
                    b.host_ip.as_str()
                };
                ports.push(json!({
                    "IP": ip,
                    "PrivatePort": num.parse::<u16>().unwrap_or(0),
                    "PublicPort": b.host_port.parse::<u16>().unwrap_or(0),
                    "Type": proto,
                }));
            }
        }
    }
    let created = parse_time(&s.record.created)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let command = std::iter::once(s.record.path.clone())
        .chain(s.record.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    // Like dockerd: the name the container was created from while it still names the same
    // image, else the image's short id (the tag was removed or moved).
    let image = if svc.images.image_id(&s.record.image).ok().as_deref() == Some(&s.record.image_id)
    {
        s.record.image.clone()
    } else {
        crate::id::short(s.record.image_id.trim_start_matches("sha256:")).to_string()
    };
    let mut v = json!({
        "Id": c.id,
        "Names": [format!("/{}", s.record.name)],
        "Image": image,
        "ImageID": s.record.image_id,
        "Command": command,
        "Created": created,
        "Ports": ports,
        "Labels": s.record.config.labels.clone().unwrap_or_default(),
        "State": status_word(&s),
        "Status": status_text(&s),
        "HostConfig": {"NetworkMode": s.host.network_mode},
        "NetworkSettings": {"Networks": networks(svc, c, &s)},
        "Mounts": s.record.mounts,
    });
    if size {
        sizes(svc, &mut v, &svc.paths(&c.id).upper(), &s.record.image_id);
    }
    v
}

/// Whether the container's labels satisfy `key` / `key=value` filters.
pub fn labels_match(s: &Stored, want: &[String]) -> bool {
    let labels = s.record.config.labels.clone().unwrap_or_default();
    want.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(w),
    })
}

/// `GET /containers/json` filters.
pub fn list_matches(c: &Container, f: &BTreeMap<String, Vec<String>>) -> bool {
    let s = c.snapshot();
    for (k, want) in f {
        if want.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "status" => want.iter().any(|w| w == status_word(&s)),
            "health" => want.iter().any(|w| {
                let h = s.state.state.health.as_ref().map(|h| h.status.as_str());
                h.unwrap_or("none") == w
            }),
            "label" => labels_match(&s, want),
            "name" => want.iter().any(|w| {
                let w = w.trim_start_matches('/');
                s.record.name.contains(w)
            }),
            "id" => want.iter().any(|w| c.id.starts_with(w.as_str())),
            "ancestor" => want.iter().any(|w| {
                s.record.image == *w
                    || s.record.image == format!("{w}:latest")
                    || s.record.image_id == *w
                    || s.record
                        .image_id
                        .trim_start_matches("sha256:")
                        .starts_with(w.trim_start_matches("sha256:"))
            }),
            "exited" => {
                status_word(&s) == "exited"
                    && want
                        .iter()
                        .any(|w| w.parse::<i64>().ok() == Some(s.state.state.exit_code))
            }
            "network" => want.iter().any(|w| {
                s.host.network_mode == *w
                    || s.network_plan().iter().any(|r| r.network == *w)
                    || s.attachment.as_ref().is_some_and(|a| {
                        a.endpoints()
                            .any(|e| e.network_name == *w || e.network_id == *w)
                    })
            }),
            "volume" => want.iter().any(|w| {
                s.record
                    .mounts
                    .iter()
                    .any(|m| m.name == *w || m.destination == *w)
            }),
            "publish" => {
                let bound = s.host.port_bindings.as_ref();
                want.iter()
                    .any(|w| port_filter_matches(w, bound.into_iter().flat_map(|b| b.keys())))
            }
            "expose" => {
                let exposed = s.record.config.exposed_ports.as_ref();
                want.iter()
                    .any(|w| port_filter_matches(w, exposed.into_iter().flat_map(|e| e.keys())))
            }
            // Not swarm tasks, default isolation: `false`/`default` keep all, anything else none.
            "is-task" => want.iter().any(|w| w == "false"),
            "isolation" => want.iter().any(|w| w == "default"),
            // `before`/`since` are resolved by `Svc::list` against other containers.
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

impl Svc {
    /// `GET /containers/json`.
    pub fn list(
        &self,
        all: bool,
        limit: Option<usize>,
        size: bool,
        f: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<Value>> {
        if let Some(k) = f.keys().find(|k| !LIST_FILTERS.contains(&k.as_str())) {
            return Err(crate::EngineError::invalid(format!("invalid filter '{k}'")));
        }
        // `before`/`since`: created before/after the named container.
        let created_of = |k: &str| -> Result<Option<i64>> {
            match f.get(k).and_then(|v| v.first()) {
                Some(name) => Ok(Some(created_nanos(&self.get(name)?.snapshot()))),
                None => Ok(None),
            }
        };
        let (before, since) = (created_of("before")?, created_of("since")?);
        let mut out = vec![];
        for c in self.all() {
            let created = created_nanos(&c.snapshot());
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            let running = c.snapshot().state.state.running;
            let explicit_status = f.get("status").is_some_and(|v| !v.is_empty());
            if !all && !running && !explicit_status && limit.is_none() {
                continue;
            }
            if !list_matches(&c, f) {
                continue;
            }
            out.push(summary(self, &c, size));
            if limit.is_some_and(|l| l > 0 && out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    pub fn inspect(&self, key: &str, size: bool) -> Result<Value> {
        let c = self.get(key)?;
        inspect(self, &c, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(
            human_duration(chrono::Duration::seconds(0)),
            "Less than a second"
        );
        assert_eq!(human_duration(chrono::Duration::seconds(5)), "5 seconds");
        assert_eq!(human_duration(chrono::Duration::seconds(300)), "5 minutes");
    }
}
