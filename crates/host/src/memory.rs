//! The VM's memory as `berth status` shows it: what QEMU holds on the host (its resident set,
//! guest RAM included: memfd pages count as shared resident memory) and the guest's own view.
//! With free-page reporting (virtio-balloon), pages the guest frees leave QEMU's resident set.

use std::time::Duration;

use berth_agent_proto::{GuestMemory, Reply, Request};

use crate::StateDir;

/// Both views; either may be unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmMemory {
    /// QEMU's VmRSS, KiB.
    pub host_rss_kib: Option<u64>,
    pub guest: Option<GuestMemory>,
}

/// `VmRSS` of `pid` from `/proc/<pid>/status`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Reads both views of the running VM (QEMU `vm_pid`), asking the agent on a connection of its
/// own (bounded to 5 s).
pub async fn read(state: &StateDir, vm_pid: Option<u32>) -> VmMemory {
    let guest = match crate::control::side_connector(state) {
        Ok(c) => {
            match crate::control::one_request(c.as_ref(), Request::Health, Duration::from_secs(5))
                .await
            {
                Ok(Reply::Health { memory, .. }) => memory,
                _ => None,
            }
        }
        Err(_) => None,
    };
    VmMemory {
        host_rss_kib: vm_pid.and_then(rss_kib),
        guest,
    }
}

/// One line: `QEMU resident 645 MiB on the host; guest: 973 MiB total, 900 MiB available`.
pub fn describe(m: &VmMemory) -> String {
    let mib = |k: u64| k / 1024;
    let host = m.host_rss_kib.map_or_else(
        || "QEMU resident size unknown".to_string(),
        |k| format!("QEMU resident {} MiB on the host", mib(k)),
    );
    let guest = m.guest.map_or_else(
        || "guest view unknown".to_string(),
        |g| {
            format!(
                "guest: {} MiB total, {} MiB available, {} MiB free",
                mib(g.total_kib),
                mib(g.available_kib),
                mib(g.free_kib)
            )
        },
    );
    format!("{host}; {guest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_is_read_and_lines_read_well() {
        // The resident size comes from /proc: Linux only (elsewhere it is shown as unknown).
        if cfg!(target_os = "linux") {
            assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
        }
        let m = VmMemory {
            host_rss_kib: Some(645 * 1024),
            guest: Some(GuestMemory {
                total_kib: 973 * 1024,
                available_kib: 900 * 1024,
                free_kib: 850 * 1024,
            }),
        };
        assert_eq!(
            describe(&m),
            "QEMU resident 645 MiB on the host; guest: 973 MiB total, 900 MiB available, 850 MiB free"
        );
    }
}
