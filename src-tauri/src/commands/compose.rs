//! Compose projects, read from the labels compose puts on every container and network
//! (`com.docker.compose.*`): the Projects view's list ([`compose_list`]: services, state,
//! published ports, the project's folder and config files), its actions over every container of
//! a project at once (start, stop, restart, remove, and down, as `docker compose
//! start|stop|restart|rm -fs|down` do), the project's `compose.yaml` and opening its folder.
//! The grouping is pure ([`group`], unit-tested); the commands only fetch and act.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::models::{ContainerSummary, Network};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use serde::Serialize;
use tauri::State;

use super::containers::ContainerRow;
use crate::engine::Engine;
use crate::error::{AppError, ErrorCode, Result};
use crate::state::AppState;

/// Label compose puts on every container and network of a project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The service a container runs.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// The folder `docker compose` ran in (a path on the machine the CLI ran on).
pub const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";
/// The compose files, comma separated.
pub const CONFIG_FILES_LABEL: &str = "com.docker.compose.project.config_files";

/// The largest compose file shown (bigger ones are said to be too big).
const CONFIG_MAX: u64 = 512 * 1024;

/// A port published on the host, for a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    pub host_ip: String,
    pub host_port: u16,
    pub private_port: u16,
    pub proto: String,
}

/// A container of a project: its list row and the ports it publishes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectContainer {
    #[serde(flatten)]
    pub row: ContainerRow,
    pub published: Vec<Published>,
}

/// A compose project as the Projects view shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub name: String,
    /// The project's folder (empty when no container says).
    pub working_dir: String,
    /// Its compose files, absolute.
    pub config_files: Vec<String>,
    pub running: usize,
    /// Its containers, by service then name.
    pub containers: Vec<ProjectContainer>,
    /// Networks compose made for it (removed by down).
    pub networks: Vec<String>,
}

fn label<'a>(labels: &'a Option<HashMap<String, String>>, key: &str) -> &'a str {
    labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

/// The ports `c` publishes on the host, sorted, without duplicates.
fn published(c: &ContainerSummary) -> Vec<Published> {
    let mut out: Vec<Published> = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Published {
                host_ip: p.ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                host_port: p.public_port?,
                private_port: p.private_port,
                proto: p.typ.map_or_else(|| "tcp".into(), |t| t.to_string()),
            })
        })
        .collect();
    out.sort_by(|a, b| (a.host_port, &a.host_ip).cmp(&(b.host_port, &b.host_ip)));
    out.dedup();
    out
}

/// The compose files a label names: comma separated; a relative one is under `dir`.
pub fn config_paths(files: &str, dir: &str) -> Vec<String> {
    files
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let p = Path::new(f);
            if p.is_absolute() || dir.is_empty() {
                f.to_string()
            } else {
                Path::new(dir).join(p).display().to_string()
            }
        })
        .collect()
}

/// Groups containers (and networks) by their project label; containers without one are left
/// out. Projects by name, containers by service then name.
pub fn group(containers: Vec<ContainerSummary>, networks: &[Network]) -> Vec<Project> {
    let mut projects: BTreeMap<String, Project> = BTreeMap::new();
    for c in containers {
        let name = label(&c.labels, PROJECT_LABEL).to_string();
        if name.is_empty() {
            continue;
        }
        let dir = label(&c.labels, WORKING_DIR_LABEL).to_string();
        let files = config_paths(label(&c.labels, CONFIG_FILES_LABEL), &dir);
        let p = projects.entry(name.clone()).or_insert_with(|| Project {
            name,
            working_dir: String::new(),
            config_files: vec![],
            running: 0,
            containers: vec![],
            networks: vec![],
        });
        if p.working_dir.is_empty() {
            p.working_dir = dir;
        }
        if p.config_files.is_empty() {
            p.config_files = files;
        }
        let published = published(&c);
        let row = ContainerRow::from(c);
        p.running += usize::from(row.state == "running");
        p.containers.push(ProjectContainer { row, published });
    }
    for n in networks {
        if let Some(p) = projects.get_mut(label(&n.labels, PROJECT_LABEL)) {
            p.networks.extend(n.name.clone());
        }
    }
    let mut out: Vec<Project> = projects.into_values().collect();
    for p in &mut out {
        p.containers
            .sort_by(|a, b| (&a.row.service, &a.row.name).cmp(&(&b.row.service, &b.row.name)));
        p.networks.sort();
    }
    out
}

/// Containers carrying `label` (`key` or `key=value`), stopped ones too.
pub(crate) async fn labelled_containers(
    e: &Engine,
    label: String,
) -> Result<Vec<ContainerSummary>> {
    let filters = HashMap::from([("label", vec![label])]);
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = e.docker()?.list_containers(Some(opts)).await;
    list.map_err(|x| e.err(x))
}

/// Networks carrying `label` (`key` or `key=value`).
async fn labelled_networks(e: &Engine, label: String) -> Result<Vec<Network>> {
    let filters = HashMap::from([("label", vec![label])]);
    let opts = ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = e.docker()?.list_networks(Some(opts)).await;
    list.map_err(|x| e.err(x))
}

/// The project named `project`, as [`compose_list`] shows it.
async fn find_project(e: &Engine, project: &str) -> Result<Project> {
    let label = format!("{PROJECT_LABEL}={project}");
    let containers = labelled_containers(e, label.clone()).await?;
    let networks = labelled_networks(e, label).await?;
    group(containers, &networks)
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("no compose project {project}")))
}

/// Ids of the project's containers, with whether each is running.
async fn project_containers(e: &Engine, project: &str) -> Result<Vec<(String, bool)>> {
    let list = labelled_containers(e, format!("{PROJECT_LABEL}={project}")).await?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let running = c.state.is_some_and(|s| s.to_string() == "running");
            Some((c.id?, running))
        })
        .collect())
}

/// Runs `action` on every id at once (as `docker compose` does per service); the first error
/// is returned after all have finished.
async fn each<F, Fut>(ids: Vec<String>, action: F) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let results = futures::future::join_all(ids.into_iter().map(action)).await;
    results.into_iter().collect()
}

fn ids(list: &[(String, bool)], running: Option<bool>) -> Vec<String> {
    list.iter()
        .filter(|(_, r)| running.is_none_or(|want| *r == want))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Stops a container; one that stopped meanwhile (304) is fine.
async fn stop(e: &Engine, id: String) -> Result<()> {
    let r = e
        .docker()?
        .stop_container(&id, None::<StopContainerOptions>)
        .await;
    match r.map_err(|x| e.err(x)) {
        Err(err) if err.code() == ErrorCode::NotModified => Ok(()),
        other => other,
    }
}

#[tauri::command]
pub async fn compose_list(state: State<'_, AppState>) -> Result<Vec<Project>> {
    let e = state.engine();
    let containers = labelled_containers(&e, PROJECT_LABEL.into()).await?;
    let networks = labelled_networks(&e, PROJECT_LABEL.into()).await?;
    Ok(group(containers, &networks))
}

#[tauri::command]
pub async fn compose_start(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let list = project_containers(&e, &project).await?;
    let e = &e;
    each(ids(&list, Some(false)), |id| async move {
        let r = e
            .docker()?
            .start_container(&id, None::<StartContainerOptions>)
            .await;
        r.map_err(|x| e.err(x))
    })
    .await
}

#[tauri::command]
pub async fn compose_stop(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let list = project_containers(&e, &project).await?;
    each(ids(&list, Some(true)), |id| stop(&e, id)).await
}

/// Restarts every container of the project, running or not, all at once (`docker compose
/// restart`).
#[tauri::command]
pub async fn compose_restart(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let list = project_containers(&e, &project).await?;
    let e = &e;
    each(ids(&list, None), |id| async move {
        let r = e
            .docker()?
            .restart_container(&id, None::<RestartContainerOptions>)
            .await;
        r.map_err(|x| e.err(x))
    })
    .await
}

/// Stops the running containers (gracefully, all at once), then removes every container.
async fn remove_containers(e: &Engine, project: &str) -> Result<()> {
    let list = project_containers(e, project).await?;
    each(ids(&list, Some(true)), |id| stop(e, id)).await?;
    let opts = RemoveContainerOptionsBuilder::default().build();
    each(ids(&list, None), |id| {
        let opts = opts.clone();
        async move {
            let r = e.docker()?.remove_container(&id, Some(opts)).await;
            r.map_err(|x| e.err(x))
        }
    })
    .await
}

/// Removes every container of the project, as `docker compose rm -fs` does (its volumes and
/// networks stay). The UI asks before calling this.
#[tauri::command]
pub async fn compose_remove(state: State<'_, AppState>, project: String) -> Result<()> {
    remove_containers(&state.engine(), &project).await
}

/// `docker compose down`: the project's containers, then the networks compose made for it;
/// volumes and images stay. The UI asks before calling this.
#[tauri::command]
pub async fn compose_down(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    remove_containers(&e, &project).await?;
    let networks = labelled_networks(&e, format!("{PROJECT_LABEL}={project}")).await?;
    let names = networks.into_iter().filter_map(|n| n.name).collect();
    let e = &e;
    each(names, |name| async move {
        let r = e.docker()?.remove_network(&name).await;
        r.map_err(|x| e.err(x))
    })
    .await
}

/// A compose file of a project: its text, or why it cannot be shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    pub path: String,
    pub text: Option<String>,
    pub error: Option<String>,
}

/// Reads a compose file if it is readable text of a sensible size.
async fn read_config(path: String) -> ConfigFile {
    let read = async {
        let size = tokio::fs::metadata(&path).await?.len();
        if size > CONFIG_MAX {
            return Err(std::io::Error::other(format!(
                "{size} bytes, more than the {CONFIG_MAX} shown"
            )));
        }
        let bytes = tokio::fs::read(&path).await?;
        String::from_utf8(bytes).map_err(|_| std::io::Error::other("not UTF-8 text"))
    };
    match read.await {
        Ok(text) => ConfigFile {
            path,
            text: Some(text),
            error: None,
        },
        Err(err) => ConfigFile {
            error: Some(format!("cannot read {path}: {err}")),
            path,
            text: None,
        },
    }
}

/// The project's compose files (named by its containers' labels), read on this machine: where
/// `docker compose` ran elsewhere, each says why it cannot be read.
#[tauri::command]
pub async fn compose_config(
    state: State<'_, AppState>,
    project: String,
) -> Result<Vec<ConfigFile>> {
    let p = find_project(&state.engine(), &project).await?;
    Ok(futures::future::join_all(p.config_files.into_iter().map(read_config)).await)
}

/// Opens the project's folder (its working_dir label) in the file manager; returns the path.
#[tauri::command]
pub async fn compose_open_folder(state: State<'_, AppState>, project: String) -> Result<String> {
    let p = find_project(&state.engine(), &project).await?;
    let dir = PathBuf::from(&p.working_dir);
    if p.working_dir.is_empty() || !dir.is_dir() {
        return Err(AppError::Invalid(format!(
            "project {project} has no folder on this machine ({:?})",
            p.working_dir
        )));
    }
    super::system::open_with_system(dir.as_os_str())?;
    Ok(p.working_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummaryStateEnum, PortSummary, PortSummaryTypeEnum};

    fn container(name: &str, labels: &[(&str, &str)], running: bool) -> ContainerSummary {
        ContainerSummary {
            id: Some(format!("id-{name}")),
            names: Some(vec![format!("/{name}")]),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            state: Some(if running {
                ContainerSummaryStateEnum::RUNNING
            } else {
                ContainerSummaryStateEnum::EXITED
            }),
            ..Default::default()
        }
    }

    #[test]
    fn containers_group_by_project_with_folder_files_and_networks() {
        let web = [
            (PROJECT_LABEL, "shop"),
            (SERVICE_LABEL, "web"),
            (WORKING_DIR_LABEL, "/src/shop"),
            (CONFIG_FILES_LABEL, "/src/shop/compose.yaml,override.yaml"),
        ];
        let mut w = container("shop-web-1", &web, true);
        w.ports = Some(vec![
            PortSummary {
                ip: Some("127.0.0.1".into()),
                private_port: 80,
                public_port: Some(8080),
                typ: Some(PortSummaryTypeEnum::TCP),
            },
            PortSummary {
                ip: None,
                private_port: 9000,
                public_port: None,
                typ: None,
            },
        ]);
        let list = vec![
            container("loose", &[], true),
            w,
            container(
                "shop-db-1",
                &[(PROJECT_LABEL, "shop"), (SERVICE_LABEL, "db")],
                false,
            ),
            container("api-app-1", &[(PROJECT_LABEL, "api")], true),
        ];
        let net = |name: &str, project: &str| Network {
            name: Some(name.into()),
            labels: Some([(PROJECT_LABEL.to_string(), project.to_string())].into()),
            ..Default::default()
        };
        let got = group(
            list,
            &[net("shop_default", "shop"), net("other_default", "other")],
        );
        let names: Vec<&str> = got.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["api", "shop"], "the loose container is no project");
        let shop = &got[1];
        assert_eq!(shop.working_dir, "/src/shop");
        assert_eq!(
            shop.config_files,
            ["/src/shop/compose.yaml", "/src/shop/override.yaml"]
        );
        assert_eq!(shop.running, 1);
        assert_eq!(shop.networks, ["shop_default"]);
        let services: Vec<(&str, &str)> = shop
            .containers
            .iter()
            .map(|c| (c.row.service.as_str(), c.row.name.as_str()))
            .collect();
        assert_eq!(services, [("db", "shop-db-1"), ("web", "shop-web-1")]);
        assert_eq!(
            shop.containers[1].published,
            [Published {
                host_ip: "127.0.0.1".into(),
                host_port: 8080,
                private_port: 80,
                proto: "tcp".into()
            }],
            "only published ports"
        );
        assert!(got[0].working_dir.is_empty() && got[0].config_files.is_empty());
    }

    #[test]
    fn config_paths_split_and_anchor_relative_files() {
        assert_eq!(
            config_paths("/a/compose.yaml, b.yaml,", "/a"),
            ["/a/compose.yaml", "/a/b.yaml"]
        );
        assert_eq!(config_paths("b.yaml", ""), ["b.yaml"]);
        assert!(config_paths("", "/a").is_empty());
    }

    #[tokio::test]
    async fn config_files_are_read_or_say_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("compose.yaml");
        std::fs::write(&ok, "services: {}\n").unwrap();
        let got = read_config(ok.display().to_string()).await;
        assert_eq!(got.text.as_deref(), Some("services: {}\n"));
        let missing = dir.path().join("gone.yaml").display().to_string();
        let got = read_config(missing.clone()).await;
        assert!(got.text.is_none());
        assert!(
            got.error
                .as_deref()
                .unwrap_or("")
                .starts_with(&format!("cannot read {missing}")),
            "{got:?}"
        );
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'x'; usize::try_from(CONFIG_MAX).unwrap() + 1]).unwrap();
        let got = read_config(big.display().to_string()).await;
        assert!(got.error.unwrap().contains("more than"));
    }
}
