//! Devices: Docker's device cgroup rules, and the nodes and rules of `--device` mappings.

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use super::{oci_err, DeviceMapping};
use crate::{EngineError, Result};

/// The device nodes and cgroup rules of `--device` mappings, from the host nodes' metadata.
pub(super) fn host_devices(
    maps: &[DeviceMapping],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut nodes = vec![];
    let mut rules = vec![];
    for m in maps {
        let (node, rule) = host_device(m)?;
        nodes.push(node);
        rules.push(rule);
    }
    Ok((nodes, rules))
}

/// One `--device` mapping's node in the container and its cgroup rule.
fn host_device(m: &DeviceMapping) -> Result<(LinuxDevice, LinuxDeviceCgroup)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(&m.host).map_err(|e| {
        EngineError::invalid(format!(
            "error gathering device information while adding custom device \"{}\": {e}",
            m.host.display()
        ))
    })?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(EngineError::invalid(format!(
            "error gathering device information while adding custom device \"{}\": not a device node",
            m.host.display()
        )));
    };
    let rdev = meta.rdev();
    let (major, minor) = (
        i64::from(nix::sys::stat::major(rdev) as u32),
        i64::from(nix::sys::stat::minor(rdev) as u32),
    );
    let node = LinuxDeviceBuilder::default()
        .path(PathBuf::from(&m.container))
        .typ(typ)
        .major(major)
        .minor(minor)
        .file_mode(meta.mode() & 0o7777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()
        .map_err(oci_err)?;
    let mut rule = device_rule(true, Some(typ), Some(major), Some(minor))?;
    rule.set_access(Some(m.permissions.clone()));
    Ok((node, rule))
}

fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
) -> Result<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access("rwm");
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().map_err(oci_err)
}

/// Docker's device cgroup rules: deny all, then the usual character devices.
pub(super) fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    if privileged {
        return Ok(vec![device_rule(true, None, None, None)?]);
    }
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![device_rule(false, None, None, None)?];
    for (maj, min) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        rules.push(device_rule(true, c, Some(maj), min)?);
    }
    Ok(rules)
}
