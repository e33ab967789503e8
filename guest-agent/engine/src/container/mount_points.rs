//! The mount points of a create: `-v` binds, `--mount`, `--volumes-from` and the image's
//! volumes, resolved to host paths (named and anonymous volumes are created here).
//!
//! A bind source typed as a Windows path (`C:\src`, what the docker CLI and compose send on a
//! Windows host) is the guest path where Berth's VM shares that drive
//! ([`berth_agent_proto::host_path`], `--windows-drives`); where no folder of that drive is shared (a Linux host,
//! or the drive not shared) it is refused in Docker's words rather than made as a new folder.

use std::collections::BTreeMap;
use std::path::Path;

use berth_agent_proto::host_path;

use berth_docker_api::container::{Empty, HostConfig, Mount, MountPoint};
use berth_docker_api::volume::VolumeCreateOptions;

use super::Svc;
use crate::{EngineError, Result};

/// A create's mount points, and the names of the anonymous volumes it made for them (removed
/// with the container by `rm -v`).
pub(super) struct MountPoints {
    pub mounts: Vec<MountPoint>,
    pub anonymous: Vec<String>,
}

impl Svc {
    /// Binds, Mounts, `--volumes-from` and image volumes → mount points; the first to claim a
    /// destination keeps it.
    pub(super) fn mount_points(
        &self,
        host: &HostConfig,
        image_volumes: Option<&BTreeMap<String, Empty>>,
    ) -> Result<MountPoints> {
        // The bool: an anonymous volume made here.
        let mut out: Vec<(MountPoint, bool)> = vec![];
        for b in host.binds.as_deref().unwrap_or_default() {
            out.push((self.bind_spec(b)?, false));
        }
        for m in host.mounts.as_deref().unwrap_or_default() {
            out.push(self.api_mount(m)?);
        }
        for m in self.volumes_from(host)? {
            if !out.iter().any(|(o, _)| o.destination == m.destination) {
                out.push((m, false));
            }
        }
        for dst in image_volumes.into_iter().flat_map(|v| v.keys()) {
            if !out.iter().any(|(m, _)| &m.destination == dst) {
                out.push((self.mount_point("", dst, true, "")?, true));
            }
        }
        let anonymous = out
            .iter()
            .filter(|(_, anon)| *anon)
            .map(|(m, _)| m.name.clone())
            .collect();
        Ok(MountPoints {
            mounts: out.into_iter().map(|(m, _)| m).collect(),
            anonymous,
        })
    }

    /// A `-v src:dst[:mode]` bind or volume.
    fn bind_spec(&self, spec: &str) -> Result<MountPoint> {
        let (src, dst, mode) = split_bind(spec).ok_or_else(|| {
            EngineError::invalid(format!("invalid volume specification: '{spec}'"))
        })?;
        let src = &shared_source(src, &self.config.windows_drives)?;
        if !dst.starts_with('/') {
            return Err(EngineError::invalid(format!(
                "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"
            )));
        }
        let rw = !mode.split(',').any(|m| m == "ro");
        self.mount_point(src, dst, rw, mode)
    }

    /// A `--mount` (bool: an anonymous volume made here).
    fn api_mount(&self, m: &Mount) -> Result<(MountPoint, bool)> {
        let typ = if m.typ.is_empty() {
            "volume"
        } else {
            m.typ.as_str()
        };
        match typ {
            "bind" => {
                let source = shared_source(&m.source, &self.config.windows_drives)?;
                if !Path::new(&source).exists() {
                    return Err(EngineError::invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    )));
                }
                let point = self.mount_point(&source, &m.target, !m.read_only, "")?;
                Ok((point, false))
            }
            "volume" => {
                let anon = m.source.is_empty();
                let vol = volume_create_options(&m.source, m.volume_options.as_ref());
                Ok((self.volume_mount(vol, &m.target, !m.read_only, "")?, anon))
            }
            "tmpfs" => Ok((
                MountPoint {
                    typ: "tmpfs".into(),
                    destination: m.target.clone(),
                    rw: !m.read_only,
                    mode: tmpfs_options(m.tmpfs_options.as_ref()).join(","),
                    ..Default::default()
                },
                false,
            )),
            other => Err(EngineError::invalid(format!(
                "mount type {other} is not supported"
            ))),
        }
    }

    /// A host-path bind (absolute `src`) or a named (`src`) / anonymous (empty) volume.
    fn mount_point(&self, src: &str, dst: &str, rw: bool, mode: &str) -> Result<MountPoint> {
        if src.starts_with('/') {
            std::fs::create_dir_all(src).ok();
            return Ok(MountPoint {
                typ: "bind".into(),
                source: src.into(),
                destination: dst.into(),
                mode: mode.into(),
                rw,
                propagation: "rprivate".into(),
                ..Default::default()
            });
        }
        let vol = VolumeCreateOptions {
            name: src.into(),
            ..Default::default()
        };
        self.volume_mount(vol, dst, rw, mode)
    }

    /// A named or anonymous volume, created with `vol`'s driver and options if it is new.
    fn volume_mount(
        &self,
        vol: VolumeCreateOptions,
        dst: &str,
        rw: bool,
        mode: &str,
    ) -> Result<MountPoint> {
        let v = self.volumes.create(vol)?;
        Ok(MountPoint {
            typ: "volume".into(),
            name: v.name.clone(),
            source: v.mountpoint,
            destination: dst.into(),
            driver: "local".into(),
            mode: if mode.is_empty() {
                "z".into()
            } else {
                mode.into()
            },
            rw,
            propagation: String::new(),
        })
    }
}

/// `src:dst[:mode]` split at its colons. A Windows source keeps its drive's colon
/// (`C:\src:/app`) when an absolute destination follows it; otherwise the first part is a
/// volume name, as on Linux (`c:/data` is volume `c` at `/data`).
fn split_bind(spec: &str) -> Option<(&str, &str, &str)> {
    let windows = host_path::windows_drive(spec).and_then(|(_, rest)| {
        let (path, tail) = rest.split_once(':')?;
        let src = &spec[..spec.len() - rest.len() + path.len()];
        tail.starts_with('/').then_some((src, tail))
    });
    let (src, tail) = windows.or_else(|| spec.split_once(':'))?;
    match tail.split(':').collect::<Vec<_>>().as_slice() {
        [d] => Some((src, *d, "")),
        [d, m] => Some((src, *d, *m)),
        _ => None,
    }
}

/// A bind source as a guest path: a Windows path is its place below `drives` when that drive
/// is shared there; any other source is kept.
fn shared_source(src: &str, drives: &Path) -> Result<String> {
    let Some((drive, _)) = host_path::windows_drive(src) else {
        return Ok(src.to_string());
    };
    if !drives.join(drive.to_string()).is_dir() {
        return Err(EngineError::invalid(format!(
            "invalid mount config for type \"bind\": bind source path {src} is a Windows path, \
             and no folder of drive {}: is shared with Berth's VM",
            drive.to_ascii_uppercase()
        )));
    }
    Ok(host_path::windows_path_below(&drives.to_string_lossy(), src).unwrap_or_default())
}

/// The volume `--mount type=volume,src=…,volume-driver=…,volume-opt=k=v` names (`VolumeOptions`
/// as the API sends it: `{"DriverConfig": {"Name", "Options"}, "Labels"}`).
fn volume_create_options(name: &str, opts: Option<&serde_json::Value>) -> VolumeCreateOptions {
    let strings = |v: Option<&serde_json::Value>| -> BTreeMap<String, String> {
        v.and_then(|v| v.as_object())
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let driver = opts.and_then(|o| o.get("DriverConfig"));
    VolumeCreateOptions {
        name: name.into(),
        driver: driver
            .and_then(|d| d.get("Name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .into(),
        driver_opts: strings(driver.and_then(|d| d.get("Options"))),
        labels: strings(opts.and_then(|o| o.get("Labels"))),
    }
}

/// Mount options of `--mount type=tmpfs,tmpfs-size=…,tmpfs-mode=…`.
fn tmpfs_options(o: Option<&serde_json::Value>) -> Vec<String> {
    let mut out = vec![];
    if let Some(o) = o {
        if let Some(size) = o
            .get("SizeBytes")
            .and_then(|v| v.as_i64())
            .filter(|s| *s > 0)
        {
            out.push(format!("size={size}"));
        }
        if let Some(mode) = o.get("Mode").and_then(|v| v.as_u64()) {
            out.push(format!("mode={mode:o}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_windows_source_keeps_its_drive_and_a_one_letter_volume_stays_a_volume() {
        assert_eq!(split_bind(r"C:\src:/app"), Some((r"C:\src", "/app", "")));
        assert_eq!(
            split_bind("C:/src/x:/app:ro"),
            Some(("C:/src/x", "/app", "ro"))
        );
        assert_eq!(split_bind("c:/data"), Some(("c", "/data", "")));
        assert_eq!(split_bind("c:/data:ro"), Some(("c", "/data", "ro")));
        assert_eq!(split_bind("/host:/app:ro"), Some(("/host", "/app", "ro")));
        assert_eq!(split_bind("vol:/app"), Some(("vol", "/app", "")));
        assert_eq!(split_bind("a:b:c:d"), None);
        assert_eq!(split_bind("novolume"), None);
    }

    #[test]
    fn a_windows_source_is_found_below_its_shared_drive_or_refused() {
        let drives = tempfile::tempdir().unwrap();
        let err = shared_source(r"C:\src", drives.path()).unwrap_err();
        assert!(
            err.to_string().contains("no folder of drive C: is shared"),
            "{err}"
        );
        std::fs::create_dir(drives.path().join("c")).unwrap();
        assert_eq!(
            shared_source(r"C:\src\app", drives.path()).unwrap(),
            format!("{}/c/src/app", drives.path().display())
        );
        assert_eq!(
            shared_source("/home/me", drives.path()).unwrap(),
            "/home/me"
        );
        assert_eq!(shared_source("vol", drives.path()).unwrap(), "vol");
    }
}
