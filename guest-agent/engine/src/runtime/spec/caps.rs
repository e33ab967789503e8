//! Capabilities: Docker's default set, `--cap-add`/`--cap-drop` (`ALL` included) and
//! `--privileged`, always within the engine's own bounding set.

use std::collections::BTreeSet;
use std::str::FromStr;

use oci_spec::runtime::Capability;

use crate::{EngineError, Result};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability Berth knows, in kernel bit order (`CAP_CHOWN` = bit 0 …).
pub(super) const ALL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The engine's own capability bounding set (`CapBnd` of /proc/self/status); a container can
/// never get more, so `--privileged` and `ALL` mean "all of these", as in dockerd.
fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The capability set after `--cap-add`/`--cap-drop` (names with or without `CAP_`, `ALL`).
pub fn capabilities(privileged: bool, add: &[String], drop: &[String]) -> Result<Vec<String>> {
    capabilities_within(bounding_set(), privileged, add, drop)
}

/// [`capabilities`] limited to the bounding set `bounding` (bit per capability).
pub fn capabilities_within(
    bounding: u64,
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>> {
    let norm = |c: &str| {
        let c = c.to_ascii_uppercase();
        c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
    };
    let mut set: BTreeSet<String> = if privileged {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    let add: Vec<String> = add.iter().map(|c| norm(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| norm(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(EngineError::invalid(format!("invalid capability: CAP_{c}")));
        }
    }
    if drop.iter().any(|c| c == "ALL") {
        set.clear();
    }
    for c in &drop {
        set.remove(c);
    }
    if add.iter().any(|c| c == "ALL") {
        set.extend(ALL_CAPS.iter().map(|s| s.to_string()));
    }
    for c in add.into_iter().filter(|c| c != "ALL") {
        set.insert(c);
    }
    let held = |c: &String| {
        ALL_CAPS
            .iter()
            .position(|k| k == c)
            .is_some_and(|bit| bounding & (1u64 << bit) != 0)
    };
    Ok(set.into_iter().filter(held).collect())
}

/// Capability names as the spec's set.
pub(super) fn cap_set(caps: &[String]) -> Result<oci_spec::runtime::Capabilities> {
    caps.iter()
        .map(|c| {
            Capability::from_str(c)
                .or_else(|_| serde_json::from_str(&format!("\"CAP_{c}\"")))
                .map_err(|_| EngineError::invalid(format!("invalid capability: CAP_{c}")))
        })
        .collect()
}
