//! Images: list, pull with progress, remove, and run a container from an image (the detail
//! pane's inspect, tag and push are in [`super::image_detail`]).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, ImageSummary, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListImagesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, StartContainerOptions,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::State;

use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::streams::{StreamEvent, StreamId};

/// A row of the Images view: one per tag (untagged images once, as `<none>:<none>`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRow {
    pub id: String,
    pub reference: String,
    pub size: i64,
    pub created: i64,
    pub containers: i64,
}

fn rows(i: ImageSummary) -> Vec<ImageRow> {
    let tags = if i.repo_tags.is_empty() {
        vec!["<none>:<none>".to_string()]
    } else {
        i.repo_tags.clone()
    };
    tags.into_iter()
        .map(|reference| ImageRow {
            id: i.id.clone(),
            reference,
            size: i.size,
            created: i.created,
            containers: i.containers,
        })
        .collect()
}

#[tauri::command]
pub async fn images_list(state: State<'_, AppState>) -> Result<Vec<ImageRow>> {
    let e = state.engine();
    let opts = ListImagesOptionsBuilder::default().build();
    let list = e.docker()?.list_images(Some(opts)).await;
    let mut out: Vec<ImageRow> = list
        .map_err(|x| e.err(x))?
        .into_iter()
        .filter(|i| !super::volume_helper::is_helper(Some(&i.labels)))
        .flat_map(rows)
        .collect();
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(out)
}

/// Splits `name[:tag][@digest]` into what `/images/create` takes; the tag defaults to
/// `latest` (a `:` after the last `/` is a tag, before it a registry port).
pub fn split_reference(reference: &str) -> Result<(String, String)> {
    let r = reference.trim();
    if r.is_empty() || r.contains(char::is_whitespace) {
        return Err(AppError::Invalid(format!(
            "invalid reference format: {reference:?}"
        )));
    }
    if let Some((name, digest)) = r.split_once('@') {
        return Ok((name.to_string(), digest.to_string()));
    }
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => Ok((r[..slash + i].to_string(), r[slash + i + 1..].to_string())),
        None => Ok((r.to_string(), "latest".to_string())),
    }
}

/// A layer's progress as the UI reads it: `current/total` bytes, when the total is known.
pub fn progress_text(current: Option<u64>, total: Option<u64>) -> Option<String> {
    match (current, total) {
        (Some(c), Some(t)) if t > 0 => Some(format!("{c}/{t}")),
        _ => None,
    }
}

/// Pulls `reference`, streaming progress lines; returns the stream id. The stream ends with
/// `End` (with Docker's message when the pull failed).
#[tauri::command]
pub async fn images_pull(
    state: State<'_, AppState>,
    reference: String,
    channel: Channel<StreamEvent>,
) -> Result<StreamId> {
    let (name, tag) = split_reference(&reference)?;
    let e = state.engine();
    let ch = channel.clone();
    Ok(state.streams.spawn(channel, None, async move {
        pull_with_progress(&e, &name, &tag, |ev| {
            let _ = ch.send(ev);
        })
        .await
    }))
}

/// Pulls `name:tag`, giving each progress line to `progress`; fails with Docker's message.
pub async fn pull_with_progress(
    e: &crate::engine::Engine,
    name: &str,
    tag: &str,
    mut progress: impl FnMut(StreamEvent),
) -> Result<()> {
    let opts = CreateImageOptionsBuilder::default()
        .from_image(name)
        .tag(tag)
        .build();
    let mut pull = e.docker()?.create_image(Some(opts), None, None);
    while let Some(item) = pull.next().await {
        let info = item.map_err(|x| e.err(x))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(AppError::Docker {
                status: 500,
                message: err,
            });
        }
        let detail = info.progress_detail.unwrap_or_default();
        let bytes = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
        progress(StreamEvent::Progress {
            id: info.id,
            status: info.status.unwrap_or_default(),
            progress: progress_text(bytes(detail.current), bytes(detail.total)),
        });
    }
    Ok(())
}

#[tauri::command]
pub async fn images_remove(state: State<'_, AppState>, id: String, force: bool) -> Result<()> {
    let e = state.engine();
    let opts = RemoveImageOptionsBuilder::default().force(force).build();
    let r = e.docker()?.remove_image(&id, Some(opts), None).await;
    r.map(|_| ()).map_err(|x| e.err(x))
}

/// What the Run dialog sends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RunRequest {
    pub image: String,
    pub name: Option<String>,
    /// `docker run -p` specs, comma or whitespace separated: `8080:80`, `127.0.0.1:8080:80/tcp`.
    pub ports: String,
    /// `KEY=VALUE` lines.
    pub env: String,
    /// Command override, split on whitespace; empty = the image's.
    pub cmd: String,
}

/// One parsed `-p` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// `80/tcp`
    pub container: String,
    pub host_ip: Option<String>,
    pub host_port: Option<String>,
}

/// Parses `[ip:][host_port:]container_port[/proto]`.
pub fn parse_port(spec: &str) -> Result<PortSpec> {
    let bad = || AppError::Invalid(format!("invalid port spec {spec:?}"));
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) if matches!(p, "tcp" | "udp" | "sctp") => (a, p),
        Some(_) => return Err(bad()),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), Some(*h), *c),
        _ => return Err(bad()),
    };
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    if !port_ok(ctr) || host.is_some_and(|h| !h.is_empty() && !port_ok(h)) {
        return Err(bad());
    }
    Ok(PortSpec {
        container: format!("{ctr}/{proto}"),
        host_ip: ip.filter(|s| !s.is_empty()).map(str::to_string),
        host_port: host.filter(|s| !s.is_empty()).map(str::to_string),
    })
}

/// The create body for a run request.
pub fn create_body(req: &RunRequest) -> Result<ContainerCreateBody> {
    if req.image.trim().is_empty() {
        return Err(AppError::Invalid("an image is required".into()));
    }
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for spec in req
        .ports
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let p = parse_port(spec)?;
        bindings
            .entry(p.container)
            .or_insert_with(|| Some(vec![]))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip,
                host_port: p.host_port,
            });
    }
    let env: Vec<String> = req
        .env
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.contains('=') {
                Ok(l.to_string())
            } else {
                Err(AppError::Invalid(format!("env {l:?} is not KEY=VALUE")))
            }
        })
        .collect::<Result<_>>()?;
    let cmd: Vec<String> = req.cmd.split_whitespace().map(str::to_string).collect();
    let mut exposed: Vec<String> = bindings.keys().cloned().collect();
    exposed.sort();
    Ok(ContainerCreateBody {
        image: Some(req.image.trim().to_string()),
        env: (!env.is_empty()).then_some(env),
        cmd: (!cmd.is_empty()).then_some(cmd),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Creates and starts a container from an image (like `docker run -d`); returns its id.
#[tauri::command]
pub async fn images_run(state: State<'_, AppState>, request: RunRequest) -> Result<String> {
    let body = create_body(&request)?;
    let e = state.engine();
    let mut opts = CreateContainerOptionsBuilder::default();
    if let Some(n) = request
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        opts = opts.name(n);
    }
    let created = e
        .docker()?
        .create_container(Some(opts.build()), body)
        .await
        .map_err(|x| e.err(x))?;
    let started = e
        .docker()?
        .start_container(&created.id, None::<StartContainerOptions>)
        .await;
    if let Err(err) = started {
        // As `docker run --rm` would leave nothing: a container that never ran is removed, so
        // running again with the same name works once the cause is fixed. The start's error
        // is what the user sees.
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(rm) = e.docker()?.remove_container(&created.id, Some(opts)).await {
            tracing::warn!(id = %created.id, error = %rm, "removing the container whose start failed");
        }
        return Err(e.err(err));
    }
    Ok(created.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_name_and_tag() {
        let s = |r| split_reference(r).unwrap();
        assert_eq!(s("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(s("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(
            s("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), "latest".into())
        );
        assert_eq!(
            s("localhost:5000/a:v2"),
            ("localhost:5000/a".into(), "v2".into())
        );
        assert_eq!(s("a@sha256:00"), ("a".into(), "sha256:00".into()));
        assert!(split_reference(" ").is_err());
        assert!(split_reference("a b").is_err());
    }

    #[test]
    fn port_specs_parse_like_docker_run() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.container, "80/udp");
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.host_port.as_deref(), Some("8080"));
        let p = parse_port("80").unwrap();
        assert_eq!((p.container.as_str(), p.host_port), ("80/tcp", None));
        for bad in ["", "x:80", "80/icmp", "1:2:3:4", "70000"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_request_becomes_a_create_body() {
        let b = create_body(&RunRequest {
            image: "busybox".into(),
            ports: "8080:80, 9090:90".into(),
            env: "A=1\n\nB=two words\n".into(),
            cmd: "httpd -f".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b.exposed_ports.unwrap(), vec!["80/tcp", "90/tcp"]);
        assert_eq!(b.env.unwrap(), vec!["A=1", "B=two words"]);
        assert_eq!(b.cmd.unwrap(), vec!["httpd", "-f"]);
        let pb = b.host_config.unwrap().port_bindings.unwrap();
        let b80 = pb["80/tcp"].as_ref().unwrap();
        assert_eq!(b80[0].host_port.as_deref(), Some("8080"));
        assert!(create_body(&RunRequest {
            image: "x".into(),
            env: "NOEQUALS".into(),
            ..Default::default()
        })
        .is_err());
    }
}
