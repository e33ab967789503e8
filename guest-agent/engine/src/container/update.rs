//! `docker update` (`POST /containers/{id}/update`): new memory, CPU and pids limits and
//! restart policy. A running container gets them through the runtime (`runc update`) first;
//! `hostconfig.json` is rewritten only once that worked, so the record never claims limits
//! the container does not have.

use std::sync::Arc;

use berth_docker_api::container::{ContainerUpdate, HostConfig};

use super::host_config::{check_memory, restart_policy_name};
use super::Svc;
use crate::runtime::spec::{limits, Resources};
use crate::{EngineError, Result};

impl From<&HostConfig> for Resources {
    fn from(host: &HostConfig) -> Self {
        Resources {
            memory: host.memory,
            memory_swap: host.memory_swap,
            nano_cpus: host.nano_cpus,
            cpu_shares: host.cpu_shares,
            cpu_quota: host.cpu_quota,
            cpu_period: host.cpu_period,
            pids_limit: host.pids_limit,
            cpuset_cpus: host.cpuset_cpus.clone(),
            cpuset_mems: host.cpuset_mems.clone(),
        }
    }
}

/// `host` with the update applied, or dockerd's error for a combination it refuses.
pub fn apply(host: &HostConfig, u: &ContainerUpdate) -> Result<HostConfig> {
    let mut h = host.clone();
    if u.memory != 0 {
        // The minimum first, as dockerd reports it before the swap conflict.
        check_memory(u.memory, 0)?;
        if h.memory_swap > 0 && u.memory > h.memory_swap && u.memory_swap == 0 {
            return Err(EngineError::invalid(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        h.memory = u.memory;
    }
    if u.memory_swap != 0 {
        h.memory_swap = u.memory_swap;
    }
    // The limits as they would be, with the checks `docker create` makes.
    check_memory(h.memory, h.memory_swap)?;
    if u.nano_cpus != 0 {
        if h.cpu_quota > 0 || u.cpu_quota > 0 {
            return Err(EngineError::invalid(
                "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
            ));
        }
        if h.cpu_period > 0 || u.cpu_period > 0 {
            return Err(EngineError::invalid(
                "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
            ));
        }
        h.nano_cpus = u.nano_cpus;
    }
    if u.cpu_quota != 0 || u.cpu_period != 0 {
        if h.nano_cpus > 0 {
            return Err(EngineError::invalid(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            ));
        }
        if u.cpu_quota != 0 {
            h.cpu_quota = u.cpu_quota;
        }
        if u.cpu_period != 0 {
            h.cpu_period = u.cpu_period;
        }
    }
    if u.cpu_shares != 0 {
        h.cpu_shares = u.cpu_shares;
    }
    if let Some(p) = u.pids_limit {
        // 0 and -1 both mean unlimited.
        h.pids_limit = Some(if p <= 0 { -1 } else { p });
    }
    if let Some(rp) = u.restart_policy.as_ref().filter(|rp| !rp.name.is_empty()) {
        let name = restart_policy_name(&rp.name)?;
        if h.auto_remove && !name.is_empty() {
            return Err(EngineError::invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        h.restart_policy.name = name;
        h.restart_policy.maximum_retry_count = rp.maximum_retry_count;
    }
    Ok(h)
}

impl Svc {
    /// Applies `u` to the container `key`; returns dockerd's (empty) warnings.
    pub async fn update_container(
        self: &Arc<Self>,
        key: &str,
        u: ContainerUpdate,
    ) -> Result<Vec<String>> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        let s = c.snapshot();
        let host = apply(&s.host, &u)?;
        if s.state.state.running {
            let res = limits(&Resources::from(&host))?;
            self.runtime_call(&c, move |rt, id| rt.update(id, &res))
                .await
                .map_err(|e| {
                    let msg = format!("Cannot update container {}: {}", c.id, e.message());
                    EngineError::new(e.kind(), msg)
                })?;
        }
        c.set_host(&self.paths(&c.id), host)?;
        self.publish(&c, "update", &[]);
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_docker_api::container::RestartPolicy;

    #[test]
    fn zero_fields_leave_limits_alone() {
        let host = HostConfig {
            memory: 64 << 20,
            cpu_shares: 512,
            ..HostConfig::default()
        };
        let h = apply(
            &host,
            &ContainerUpdate {
                pids_limit: Some(0),
                ..ContainerUpdate::default()
            },
        )
        .unwrap();
        assert_eq!(
            (h.memory, h.cpu_shares, h.pids_limit),
            (64 << 20, 512, Some(-1))
        );
    }

    #[test]
    fn dockerd_refusals() {
        let host = HostConfig::default();
        let small = ContainerUpdate {
            memory: 1 << 20,
            ..ContainerUpdate::default()
        };
        assert!(apply(&host, &small).unwrap_err().message().contains("6MB"));
        let with_quota = HostConfig {
            cpu_quota: 50_000,
            ..HostConfig::default()
        };
        let cpus = ContainerUpdate {
            nano_cpus: 1_000_000_000,
            ..ContainerUpdate::default()
        };
        assert!(apply(&with_quota, &cpus).is_err());
        let auto = HostConfig {
            auto_remove: true,
            ..HostConfig::default()
        };
        let always = ContainerUpdate {
            restart_policy: Some(RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            }),
            ..ContainerUpdate::default()
        };
        assert!(apply(&auto, &always).is_err());
        let h = apply(&host, &always).unwrap();
        assert_eq!(h.restart_policy.name, "always");
    }
}
