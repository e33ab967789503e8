//! `Config` merged with the image's config at create, as dockerd stores it: the command
//! (Entrypoint and Cmd), environment, working directory, user, hostname, labels, stop signal,
//! exposed ports and volumes.

use std::collections::BTreeMap;

use berth_docker_api::container::ContainerConfig;
use oci_spec::image::Config as ImageConfig;

use super::env::merge_env;
use crate::{EngineError, Result};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Entrypoint and Cmd after Docker's rules: a create-time Entrypoint resets the image's Cmd.
pub fn command(
    img: &ImageConfig,
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

/// Merges the image's config into `cfg` for the container `id`; returns the process's path
/// and arguments (Entrypoint then Cmd). No command at all is refused.
pub(super) fn merge(
    cfg: &mut ContainerConfig,
    img: &ImageConfig,
    id: &str,
) -> Result<(String, Vec<String>)> {
    let (entrypoint, cmd) = command(img, &cfg.entrypoint, &cfg.cmd);
    let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    let Some((path, args)) = argv.split_first() else {
        return Err(EngineError::invalid("no command specified"));
    };
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
    merge_process_fields(cfg, img, id);
    merge_maps(cfg, img);
    Ok((path.clone(), args.to_vec()))
}

/// Working directory, user and stop signal from the image when the request has none; the
/// hostname defaults to the id's first 12 characters.
fn merge_process_fields(cfg: &mut ContainerConfig, img: &ImageConfig, id: &str) {
    if cfg.working_dir.is_empty() {
        cfg.working_dir = img.working_dir().clone().unwrap_or_default();
    }
    if cfg.user.is_empty() {
        cfg.user = img.user().clone().unwrap_or_default();
    }
    if cfg.hostname.is_empty() {
        cfg.hostname = id[..12].to_string();
    }
    if cfg.stop_signal.is_none() {
        cfg.stop_signal = img.stop_signal().clone();
    }
}

/// Labels (the request's over the image's), exposed ports and volumes (the union).
fn merge_maps(cfg: &mut ContainerConfig, img: &ImageConfig) {
    let mut labels: BTreeMap<String, String> = img
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(cfg.labels.take().unwrap_or_default());
    cfg.labels = Some(labels);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_resets_image_cmd() {
        let mut img = ImageConfig::default();
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
