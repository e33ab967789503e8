//! Resources: the device cgroup plus the memory, CPU and pids limits in Docker's units.

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use super::devices::device_rules;
use super::{oci_err, Resources, SpecInput};
use crate::Result;

/// A container's resources: Docker's device rules, then `extra_rules`, and its limits.
pub(super) fn resources(
    input: &SpecInput,
    extra_rules: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources> {
    let mut rules = device_rules(input.privileged)?;
    rules.extend(extra_rules);
    let b = LinuxResourcesBuilder::default().devices(rules);
    with_limits(b, &input.resources)?.build().map_err(oci_err)
}

/// The memory, CPU and pids limits alone, as `runc update` takes them.
pub fn limits(r: &Resources) -> Result<LinuxResources> {
    with_limits(LinuxResourcesBuilder::default(), r)?
        .build()
        .map_err(oci_err)
}

fn with_limits(mut b: LinuxResourcesBuilder, r: &Resources) -> Result<LinuxResourcesBuilder> {
    if r.memory > 0 {
        let mut m = LinuxMemoryBuilder::default().limit(r.memory);
        if r.memory_swap != 0 {
            m = m.swap(r.memory_swap);
        }
        b = b.memory(m.build().map_err(oci_err)?);
    }
    if let Some(cpu) = cpu_limits(r)? {
        b = b.cpu(cpu);
    }
    if let Some(p) = r.pids_limit.filter(|p| *p != 0) {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(oci_err)?,
        );
    }
    Ok(b)
}

/// `--cpus` (a quota over a 100 ms period) or `--cpu-period`/`--cpu-quota`, shares and
/// cpusets; `None` when no CPU limit is set.
fn cpu_limits(r: &Resources) -> Result<Option<oci_spec::runtime::LinuxCpu>> {
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if r.cpu_shares > 0 {
        cpu = cpu.shares(r.cpu_shares as u64);
        any_cpu = true;
    }
    if r.nano_cpus > 0 {
        let period: u64 = 100_000;
        cpu = cpu
            .period(period)
            .quota(r.nano_cpus * period as i64 / 1_000_000_000);
        any_cpu = true;
    } else {
        if r.cpu_period > 0 {
            cpu = cpu.period(r.cpu_period as u64);
            any_cpu = true;
        }
        if r.cpu_quota > 0 {
            cpu = cpu.quota(r.cpu_quota);
            any_cpu = true;
        }
    }
    if !r.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(r.cpuset_cpus.clone());
        any_cpu = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu = cpu.mems(r.cpuset_mems.clone());
        any_cpu = true;
    }
    if !any_cpu {
        return Ok(None);
    }
    cpu.build().map(Some).map_err(oci_err)
}
