//! `HostConfig` options turned into pieces of the OCI spec: `--ulimit` and `--device`.

use std::path::PathBuf;

use berth_docker_api::container::HostConfig;

use crate::runtime::spec;
use crate::{EngineError, Result};

/// `--ulimit` values (`{"Name":"nofile","Soft":1024,"Hard":2048}`).
pub(crate) fn rlimits(host: &HostConfig) -> Result<Vec<(String, u64, u64)>> {
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
pub(super) fn devices(host: &HostConfig) -> Result<Vec<spec::DeviceMapping>> {
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
pub(super) fn privileged_devices() -> Vec<spec::DeviceMapping> {
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
