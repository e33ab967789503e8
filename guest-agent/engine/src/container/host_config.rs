//! `HostConfig` completed and checked at create: dockerd's defaults (cgroup namespace, log
//! driver, runtime, masked paths) and its refusals, with its texts (400).

use berth_docker_api::container::HostConfig;

use super::namespaces::{check_ns_mode, NsKind};
use super::Svc;
use crate::runtime::{cgroup, seccomp, spec};
use crate::{EngineError, Result};

impl Svc {
    /// Fills in what the request left to the engine and refuses what dockerd refuses, in
    /// dockerd's order (the first refusal is the one the client sees).
    pub(super) fn complete_host_config(&self, host: &mut HostConfig) -> Result<()> {
        // The CLI sends -1 for "unset"; dockerd's inspect shows null.
        if host.memory_swappiness == Some(-1) {
            host.memory_swappiness = None;
        }
        if host.cgroupns_mode.is_empty() {
            // dockerd's default: a private cgroup namespace on cgroup v2, the host's on v1.
            host.cgroupns_mode = if cgroup::is_v2() { "private" } else { "host" }.into();
        }
        if host.log_config.typ.is_empty() {
            host.log_config.typ = self.config.log_driver.clone();
        }
        check_log_driver(&host.log_config.typ)?;
        host.restart_policy.name = restart_policy_name(&host.restart_policy.name)?;
        if host.auto_remove && !host.restart_policy.name.is_empty() {
            return Err(EngineError::invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        check_resources(host)?;
        check_ns_mode(NsKind::Pid, &host.pid_mode)?;
        check_ns_mode(NsKind::Ipc, &host.ipc_mode)?;
        check_ns_mode(NsKind::Uts, &host.uts_mode)?;
        if host.runtime.is_empty() {
            host.runtime = self.config.default_runtime.clone();
        }
        self.runtime_spec(&host.runtime)?;
        check_security(host)?;
        default_masked_paths(host);
        Ok(())
    }
}

/// `--cap-add`/`--cap-drop` names and `--security-opt` (seccomp) are checked at create.
fn check_security(host: &HostConfig) -> Result<()> {
    spec::capabilities(
        host.privileged,
        host.cap_add.as_deref().unwrap_or_default(),
        host.cap_drop.as_deref().unwrap_or_default(),
    )?;
    seccomp::validate(host.security_opt.as_deref().unwrap_or_default())
}

/// Docker's masked and read-only paths, stored with the container unless it is privileged or
/// the request names its own.
fn default_masked_paths(host: &mut HostConfig) {
    if host.masked_paths.is_some() || host.privileged {
        return;
    }
    let owned = |paths: &[&str]| paths.iter().map(|s| s.to_string()).collect();
    host.masked_paths = Some(owned(spec::MASKED_PATHS));
    host.readonly_paths = Some(owned(spec::READONLY_PATHS));
}

/// dockerd's checks of memory and CPU limits, with its texts (400 at create).
fn check_resources(h: &HostConfig) -> Result<()> {
    let fail = |m: &str| Err(EngineError::invalid(m.to_string()));
    check_memory(h.memory, h.memory_swap)?;
    if !(-1000..=1000).contains(&h.oom_score_adj) {
        return fail(&format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            h.oom_score_adj
        ));
    }
    if h.nano_cpus != 0 {
        if h.cpu_period != 0 {
            return fail("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        }
        if h.cpu_quota != 0 {
            return fail("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        }
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if h.nano_cpus < 10_000_000 || h.nano_cpus > ncpu * 1_000_000_000 {
            return fail(&format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            ));
        }
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return fail(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        );
    }
    if h.cpu_quota > 0 && h.cpu_quota < 1000 {
        return fail("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    Ok(())
}

/// dockerd's checks of a memory limit and its memory+swap limit (at create and update).
pub(crate) fn check_memory(memory: i64, memory_swap: i64) -> Result<()> {
    const MIN_MEMORY: i64 = 6 * 1024 * 1024;
    if memory != 0 && memory < MIN_MEMORY {
        return Err(EngineError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory_swap > 0 && memory == 0 {
        return Err(EngineError::invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if memory > 0 && memory_swap > 0 && memory_swap < memory {
        return Err(EngineError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    Ok(())
}

/// A restart policy name as stored: `no` is empty; unknown names are refused.
pub(crate) fn restart_policy_name(name: &str) -> Result<String> {
    match name {
        "no" => Ok(String::new()),
        "" | "always" | "unless-stopped" | "on-failure" => Ok(name.to_string()),
        other => Err(EngineError::invalid(format!(
            "invalid restart policy '{other}'"
        ))),
    }
}

/// Logging drivers dockerd has built in: besides `json-file` and `none`, Berth has none of
/// them, so it refuses them by name; any other name is a plugin, refused with dockerd's text.
const DOCKERD_LOG_DRIVERS: &[&str] = &[
    "awslogs",
    "etwlogs",
    "fluentd",
    "gcplogs",
    "gelf",
    "journald",
    "local",
    "logentries",
    "splunk",
    "syslog",
];

/// A container's logging driver: `json-file` and `none` are served.
fn check_log_driver(name: &str) -> Result<()> {
    match name {
        "json-file" | "none" => Ok(()),
        d if DOCKERD_LOG_DRIVERS.contains(&d) => Err(EngineError::invalid(format!(
            "logging driver {d} is not supported"
        ))),
        plugin => Err(EngineError::invalid(format!(
            "error looking up logging plugin {plugin}: plugin \"{plugin}\" not found"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_log_driver_is_a_missing_plugin() {
        assert!(check_log_driver("json-file").is_ok());
        assert_eq!(
            check_log_driver("journald").unwrap_err().to_string(),
            "logging driver journald is not supported"
        );
        assert_eq!(
            check_log_driver("foo").unwrap_err().to_string(),
            "error looking up logging plugin foo: plugin \"foo\" not found"
        );
    }
}
