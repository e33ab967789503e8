//! The process half of a spec: arguments, environment, user, capabilities, terminal and
//! rlimits (also `runc exec`'s `--process` file).

use std::collections::HashSet;

use oci_spec::runtime::{
    BoxBuilder, LinuxCapabilitiesBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    Process, ProcessBuilder, UserBuilder,
};

use super::caps::cap_set;
use super::{oci_err, ProcessInput};
use crate::{EngineError, Result};

/// The process spec (also the `--process` file of `runc exec`).
pub fn build_process(p: &ProcessInput) -> Result<Process> {
    let caps = cap_set(&p.caps)?;
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(oci_err)?;
    let user = UserBuilder::default()
        .uid(p.uid)
        .gid(p.gid)
        .additional_gids(p.additional_gids.clone())
        .build()
        .map_err(oci_err)?;
    let mut b = ProcessBuilder::default()
        .terminal(p.tty)
        .user(user)
        .args(p.args.clone())
        .env(p.env.clone())
        .cwd(if p.cwd.is_empty() { "/" } else { &p.cwd })
        .capabilities(capabilities)
        .no_new_privileges(p.no_new_privileges);
    if let (true, Some((h, w))) = (p.tty, p.console_size) {
        let size = BoxBuilder::default()
            .height(u64::from(h))
            .width(u64::from(w))
            .build()
            .map_err(oci_err)?;
        b = b.console_size(size);
    }
    let mut proc = b.build().map_err(oci_err)?;
    let rlimits = p
        .rlimits
        .iter()
        .map(|(name, soft, hard)| rlimit(name, *soft, *hard))
        .collect::<Result<Vec<_>>>()?;
    proc.set_rlimits(Some(rlimits));
    Ok(proc)
}

/// An rlimit from Docker's `--ulimit` name (`nofile`, `nproc`, …).
fn rlimit(name: &str, soft: u64, hard: u64) -> Result<PosixRlimit> {
    let typ = format!("RLIMIT_{}", name.to_ascii_uppercase());
    let typ: PosixRlimitType = serde_json::from_value(serde_json::json!(typ))
        .map_err(|_| EngineError::invalid(format!("invalid ulimit type: {name}")))?;
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(oci_err)
}
