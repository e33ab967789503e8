//! The image detail pane: layers from `/images/{id}/history` (size and the command that made
//! each), which of them other local images share (their RootFS diff ids from inspect), tags and
//! the containers made from it; and the pane's actions beyond remove: tag (a validated name)
//! and push with per-layer progress.

use std::collections::HashMap;

use bollard::models::{ImageHistoryResponseItem, ImageInspect};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, TagImageOptionsBuilder,
};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;

use super::containers::shown_name;
use super::images::{progress_text, split_reference};
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::streams::{StreamEvent, StreamId};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetail {
    pub id: String,
    pub tags: Vec<String>,
    pub digests: Vec<String>,
    pub size: i64,
    pub created: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Newest first, as `docker history` lists them.
    pub layers: Vec<LayerRow>,
    pub containers: Vec<UsedBy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRow {
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub size: i64,
    pub comment: String,
    /// The RootFS diff id of the layer this step made (`None`: a step without a layer).
    pub digest: Option<String>,
    /// Other local images with this layer (a tag each, or a short id when untagged).
    pub shared_with: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsedBy {
    pub id: String,
    pub name: String,
    pub state: String,
}

impl From<bollard::models::ContainerSummary> for UsedBy {
    fn from(c: bollard::models::ContainerSummary) -> Self {
        Self {
            id: c.id.unwrap_or_default(),
            name: shown_name(c.names),
            state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        }
    }
}

/// Which RootFS layer each history step (oldest first) made. Steps with a size made one; when
/// their count differs from the layers' (a step whose layer is empty) but the step count
/// equals it, every step made one; otherwise the sized steps take the layers in order.
pub fn layers_of_steps(sizes: &[i64], layers: &[String]) -> Vec<Option<String>> {
    let sized = sizes.iter().filter(|s| **s > 0).count();
    let every = sized != layers.len() && sizes.len() == layers.len();
    let mut next = layers.iter();
    sizes
        .iter()
        .map(|s| (every || *s > 0).then(|| next.next().cloned()).flatten())
        .collect()
}

/// For each layer of `own`, the labels of the `others` (label, layers) that have it too.
pub fn sharers(own: &[String], others: &[(String, Vec<String>)]) -> HashMap<String, Vec<String>> {
    own.iter()
        .map(|layer| {
            let with = others
                .iter()
                .filter(|(_, ls)| ls.contains(layer))
                .map(|(label, _)| label.clone())
                .collect();
            (layer.clone(), with)
        })
        .collect()
}

fn root_layers(i: &ImageInspect) -> Vec<String> {
    i.root_fs
        .as_ref()
        .and_then(|r| r.layers.clone())
        .unwrap_or_default()
}

/// Every other local image (not the app's helper image) as (label, layers).
async fn other_images(
    docker: &bollard::Docker,
    own_id: &str,
) -> Result<Vec<(String, Vec<String>)>, bollard::errors::Error> {
    let opts = ListImagesOptionsBuilder::default().build();
    let list = docker.list_images(Some(opts)).await?;
    let inspects = list
        .into_iter()
        .filter(|i| i.id != own_id && !super::volume_helper::is_helper(Some(&i.labels)))
        .map(|i| async move {
            let label = i.repo_tags.first().cloned().unwrap_or_else(|| {
                i.id.trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect()
            });
            let layers = docker.inspect_image(&i.id).await.map(|x| root_layers(&x));
            // An image removed meanwhile shares nothing.
            (label, layers.unwrap_or_default())
        });
    Ok(futures::future::join_all(inspects).await)
}

/// The containers made from image `own_id`.
async fn used_by(
    docker: &bollard::Docker,
    own_id: &str,
) -> Result<Vec<UsedBy>, bollard::errors::Error> {
    let opts = ListContainersOptionsBuilder::default().all(true).build();
    Ok(docker
        .list_containers(Some(opts))
        .await?
        .into_iter()
        .filter(|c| c.image_id.as_deref() == Some(own_id))
        .map(UsedBy::from)
        .collect())
}

/// History steps (newest first, as the engine sends them) as rows with their layer and who
/// shares it.
fn layer_rows(
    mut history: Vec<ImageHistoryResponseItem>,
    layers: &[String],
    shared: &HashMap<String, Vec<String>>,
) -> Vec<LayerRow> {
    history.reverse(); // oldest first, as the RootFS lists layers
    let sizes: Vec<i64> = history.iter().map(|h| h.size).collect();
    let digests = layers_of_steps(&sizes, layers);
    let mut rows: Vec<LayerRow> = history
        .into_iter()
        .zip(digests)
        .map(|(h, digest)| LayerRow {
            created: h.created,
            created_by: h.created_by,
            size: h.size,
            comment: h.comment,
            shared_with: digest
                .as_ref()
                .and_then(|d| shared.get(d).cloned())
                .unwrap_or_default(),
            digest,
        })
        .collect();
    rows.reverse();
    rows
}

/// `os/arch[/variant]` of an image.
fn platform(i: &ImageInspect) -> String {
    [&i.os, &i.architecture, &i.variant]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("/")
}

#[tauri::command]
pub async fn images_inspect(state: State<'_, AppState>, id: String) -> Result<ImageDetail> {
    let e = state.engine();
    let docker = e.docker()?;
    let inspect = docker.inspect_image(&id).await.map_err(|x| e.err(x))?;
    let own_id = inspect.id.clone().unwrap_or_default();
    let history = docker.image_history(&own_id).await.map_err(|x| e.err(x))?;
    let layers = root_layers(&inspect);
    let others = other_images(&docker, &own_id).await.map_err(|x| e.err(x))?;
    let rows = layer_rows(history, &layers, &sharers(&layers, &others));
    let containers = used_by(&docker, &own_id).await.map_err(|x| e.err(x))?;
    Ok(ImageDetail {
        id: own_id,
        platform: platform(&inspect),
        tags: inspect.repo_tags.unwrap_or_default(),
        digests: inspect.repo_digests.unwrap_or_default(),
        size: inspect.size.unwrap_or_default(),
        created: inspect.created.map(|c| c.to_string()),
        layers: rows,
        containers,
    })
}

/// Whether `c` may be in a repository path component: `[a-z0-9]+` joined by `.`, `_`, `__`
/// or runs of `-` (distribution's reference grammar).
fn path_component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|x| !alnum(x)).count();
        let sep = &c[i..i + run];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
        i += run;
    }
    true
}

/// Whether `d` is a registry host: labels of letters, digits and inner `-`, with a `:port`.
fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()))
}

/// Checks a name to tag with (`[registry[:port]/]path[:tag]`, no digest) as the docker CLI
/// does; returns it split into repository and tag (default `latest`).
pub fn validate_tag_name(reference: &str) -> Result<(String, String)> {
    let bad =
        |why: &str| AppError::Invalid(format!("invalid reference format: {reference:?} {why}"));
    let r = reference.trim();
    if r.is_empty() {
        return Err(AppError::Invalid(
            "type a name to tag the image with".into(),
        ));
    }
    if r.contains('@') {
        return Err(bad("(a tag cannot have a digest)"));
    }
    let (repo, tag) = split_reference(r)?;
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.bytes().enumerate().all(|(i, x)| {
            x.is_ascii_alphanumeric() || x == b'_' || (i > 0 && (x == b'.' || x == b'-'))
        });
    if !tag_ok {
        return Err(bad(
            "(a tag is letters, digits, _ . - and at most 128 long)",
        ));
    }
    if repo.len() > 255 {
        return Err(bad("(the name is longer than 255)"));
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        if !domain_ok(first) {
            return Err(bad("(not a registry host)"));
        }
        parts.remove(0);
    }
    if parts
        .iter()
        .any(|p| p.bytes().any(|x| x.is_ascii_uppercase()))
    {
        return Err(bad("(a repository name must be lowercase)"));
    }
    if !parts.iter().all(|p| path_component_ok(p)) {
        return Err(bad(
            "(a name is lowercase letters and digits, separated by . _ __ - or /)",
        ));
    }
    Ok((repo, tag))
}

/// Tags image `id` as `target` (`docker tag`).
#[tauri::command]
pub async fn images_tag(state: State<'_, AppState>, id: String, target: String) -> Result<()> {
    let (repo, tag) = validate_tag_name(&target)?;
    let e = state.engine();
    let opts = TagImageOptionsBuilder::default()
        .repo(&repo)
        .tag(&tag)
        .build();
    let r = e.docker()?.tag_image(&id, Some(opts)).await;
    r.map_err(|x| e.err(x))
}

/// Pushes `reference` (one of the image's tags) to its registry, streaming a progress line per
/// layer as `docker push` prints them; returns the stream id. The engine's own stream is read
/// through `berth_host::api` because the typed client's push model drops the layer ids.
#[tauri::command]
pub async fn images_push(
    state: State<'_, AppState>,
    reference: String,
    channel: Channel<StreamEvent>,
) -> Result<StreamId> {
    let (name, tag) = validate_tag_name(&reference)?;
    let endpoint = state.host_endpoint();
    let ch = channel.clone();
    Ok(state.streams.spawn(channel, None, async move {
        let path = format!("/images/{name}/push?tag={tag}");
        let mut failed = None;
        // No credentials: an empty auth config (`{}`), as the docker CLI sends without a login.
        berth_host::api::post_lines(&endpoint, &path, &[("X-Registry-Auth", "e30=")], |m| {
            if let Some(message) = m.error_message() {
                failed.get_or_insert(message);
                return;
            }
            let detail = m.progress_detail.unwrap_or_default();
            let _ = ch.send(StreamEvent::Progress {
                id: m.id,
                status: m.status.unwrap_or_default(),
                progress: progress_text(detail.current, detail.total),
            });
        })
        .await?;
        match failed {
            Some(message) => Err(AppError::Docker {
                status: 500,
                message,
            }),
            None => Ok(()),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_steps_take_the_layers_in_order() {
        let l = |s: &str| s.to_string();
        let layers = [l("a"), l("b")];
        assert_eq!(
            layers_of_steps(&[10, 0, 5, 0], &layers),
            [Some(l("a")), None, Some(l("b")), None]
        );
        // A step whose layer is empty: one step per layer, every step made one.
        assert_eq!(
            layers_of_steps(&[10, 0], &layers),
            [Some(l("a")), Some(l("b"))]
        );
        assert_eq!(layers_of_steps(&[], &layers), Vec::<Option<String>>::new());
    }

    #[test]
    fn sharers_name_the_other_images_with_a_layer() {
        let own = vec!["a".to_string(), "b".to_string()];
        let others = vec![
            (
                "derived:1".to_string(),
                vec!["a".to_string(), "c".to_string()],
            ),
            ("other:2".to_string(), vec!["d".to_string()]),
        ];
        let s = sharers(&own, &others);
        assert_eq!(s["a"], ["derived:1"]);
        assert!(s["b"].is_empty());
    }

    #[test]
    fn tag_names_follow_the_reference_grammar() {
        let ok = |r: &str| validate_tag_name(r).unwrap();
        assert_eq!(ok("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            ok("127.0.0.1:5000/team/app:v1.2"),
            ("127.0.0.1:5000/team/app".into(), "v1.2".into())
        );
        assert_eq!(
            ok("localhost/a__b/c-d.e:x_1"),
            ("localhost/a__b/c-d.e".into(), "x_1".into())
        );
        assert_eq!(
            ok("Registry.Example:5000/app").0,
            "Registry.Example:5000/app"
        );
        for bad in [
            "",
            "Bad/Name",
            "a b",
            "app:",
            "app:-x",
            "a//b",
            "a..b",
            "-a",
            "a@sha256:00",
            "app:ta/g",
            "host:port/app",
        ] {
            assert!(validate_tag_name(bad).is_err(), "{bad:?} accepted");
        }
        let e = validate_tag_name("Team/App").unwrap_err();
        assert_eq!(e.code().as_str(), "invalid");
        assert!(e.to_string().contains("lowercase"), "{e}");
    }
}
