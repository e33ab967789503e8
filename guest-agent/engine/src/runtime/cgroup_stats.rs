//! Reading a container's cgroup counters for `docker stats`, on cgroup v2 (the VM:
//! `/sys/fs/cgroup/<path>/`) and v1/hybrid hosts (`/sys/fs/cgroup/<controller>/<path>/`).
//! `path` is the container's `cgroupsPath` (`/berth/<id>`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use berth_docker_api::stats::{BlkioEntry, BlkioStats, CpuStats, MemoryStats, PidsStats};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// USER_HZ: the unit of `cpuacct.stat` and `/proc/stat`.
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_TICK: u64 = 1_000_000_000 / CLOCK_TICKS;

/// The counters of one cgroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupSample {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
}

/// Reads the cgroup at `path` (relative to the hierarchy roots) under `root`.
pub fn read(path: &str, v2: bool) -> CgroupSample {
    read_under(Path::new(CGROUP_ROOT), path, v2)
}

fn read_under(root: &Path, path: &str, v2: bool) -> CgroupSample {
    let rel = path.trim_start_matches('/');
    if v2 {
        read_v2(&root.join(rel))
    } else {
        let dir = |controller: &str| root.join(controller).join(rel);
        read_v1(
            &dir("cpuacct"),
            &dir("cpu"),
            &dir("memory"),
            &dir("pids"),
            &dir("blkio"),
        )
    }
}

fn text(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn number(p: &Path) -> Option<u64> {
    text(p)?.trim().parse().ok()
}

/// `key value` lines (`cpu.stat`, `memory.stat`, `cpuacct.stat`).
fn flat_keyed(p: &Path) -> BTreeMap<String, u64> {
    text(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn read_v2(dir: &Path) -> CgroupSample {
    let cpu = flat_keyed(&dir.join("cpu.stat"));
    let get = |k: &str| cpu.get(k).copied().unwrap_or(0);
    let mut s = CgroupSample::default();
    s.cpu.cpu_usage.total_usage = get("usage_usec") * 1000;
    s.cpu.cpu_usage.usage_in_usermode = get("user_usec") * 1000;
    s.cpu.cpu_usage.usage_in_kernelmode = get("system_usec") * 1000;
    s.cpu.throttling_data.periods = get("nr_periods");
    s.cpu.throttling_data.throttled_periods = get("nr_throttled");
    s.cpu.throttling_data.throttled_time = get("throttled_usec") * 1000;
    s.memory.usage = number(&dir.join("memory.current")).unwrap_or(0);
    // "max" (no limit) does not parse: left 0, filled with the machine's memory by the caller.
    s.memory.limit = number(&dir.join("memory.max")).unwrap_or(0);
    s.memory.stats = flat_keyed(&dir.join("memory.stat"));
    s.pids.current = number(&dir.join("pids.current")).unwrap_or(0);
    s.pids.limit = number(&dir.join("pids.max")).unwrap_or(0);
    let (bytes, ios) = io_stat_v2(&text(&dir.join("io.stat")).unwrap_or_default());
    s.blkio.io_service_bytes_recursive = Some(bytes);
    s.blkio.io_serviced_recursive = Some(ios);
    s
}

/// `io.stat` lines (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 …`) as dockerd's v1-shaped entries.
fn io_stat_v2(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(dev_numbers) else {
            continue;
        };
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ios, "read"),
                "wios" => (&mut ios, "write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

fn dev_numbers(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn read_v1(cpuacct: &Path, cpu: &Path, memory: &Path, pids: &Path, blkio: &Path) -> CgroupSample {
    let mut s = CgroupSample::default();
    s.cpu.cpu_usage.total_usage = number(&cpuacct.join("cpuacct.usage")).unwrap_or(0);
    let percpu: Vec<u64> = text(&cpuacct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    s.cpu.cpu_usage.percpu_usage = (!percpu.is_empty()).then_some(percpu);
    let ticks = flat_keyed(&cpuacct.join("cpuacct.stat"));
    s.cpu.cpu_usage.usage_in_usermode = ticks.get("user").copied().unwrap_or(0) * NANOS_PER_TICK;
    s.cpu.cpu_usage.usage_in_kernelmode =
        ticks.get("system").copied().unwrap_or(0) * NANOS_PER_TICK;
    let thr = flat_keyed(&cpu.join("cpu.stat"));
    s.cpu.throttling_data.periods = thr.get("nr_periods").copied().unwrap_or(0);
    s.cpu.throttling_data.throttled_periods = thr.get("nr_throttled").copied().unwrap_or(0);
    s.cpu.throttling_data.throttled_time = thr.get("throttled_time").copied().unwrap_or(0);
    s.memory.usage = number(&memory.join("memory.usage_in_bytes")).unwrap_or(0);
    s.memory.max_usage = number(&memory.join("memory.max_usage_in_bytes")).unwrap_or(0);
    s.memory.failcnt = number(&memory.join("memory.failcnt")).unwrap_or(0);
    s.memory.limit = number(&memory.join("memory.limit_in_bytes")).unwrap_or(0);
    s.memory.stats = flat_keyed(&memory.join("memory.stat"));
    s.pids.current = number(&pids.join("pids.current")).unwrap_or(0);
    s.pids.limit = number(&pids.join("pids.max")).unwrap_or(0);
    s.blkio.io_service_bytes_recursive = Some(blkio_v1(
        &blkio.join("blkio.throttle.io_service_bytes_recursive"),
    ));
    s.blkio.io_serviced_recursive = Some(blkio_v1(
        &blkio.join("blkio.throttle.io_serviced_recursive"),
    ));
    s
}

/// `8:0 Read 4096` lines (the `Total` lines are dropped, as dockerd does).
fn blkio_v1(p: &Path) -> Vec<BlkioEntry> {
    text(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (major, minor) = dev_numbers(parts.next()?)?;
            let op = parts.next()?.to_string();
            let value = parts.next()?.parse().ok()?;
            Some(BlkioEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// The host's CPU time in nanoseconds (`/proc/stat`, user through softirq) and its number of
/// online CPUs, dockerd's `system_cpu_usage` and `online_cpus`.
pub fn system_cpu() -> (u64, u64) {
    parse_proc_stat(&text(Path::new("/proc/stat")).unwrap_or_default())
}

fn parse_proc_stat(text: &str) -> (u64, u64) {
    let mut total = 0;
    let mut cpus = 0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("cpu") => {
                total = parts
                    .take(7)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
                    * NANOS_PER_TICK;
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// The machine's memory in bytes (`MemTotal`), the limit dockerd reports when none is set.
pub fn machine_memory() -> u64 {
    text(Path::new("/proc/meminfo"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("berth/abc");
        fs::create_dir_all(&c).unwrap();
        fs::write(
            c.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
        )
        .unwrap();
        fs::write(c.join("memory.current"), "4096\n").unwrap();
        fs::write(c.join("memory.max"), "max\n").unwrap();
        fs::write(c.join("memory.stat"), "anon 100\ninactive_file 20\n").unwrap();
        fs::write(c.join("pids.current"), "2\n").unwrap();
        fs::write(c.join("pids.max"), "10\n").unwrap();
        fs::write(
            c.join("io.stat"),
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n",
        )
        .unwrap();
        let s = read_under(d.path(), "/berth/abc", true);
        assert_eq!(s.cpu.cpu_usage.total_usage, 1_500_000);
        assert_eq!(s.cpu.cpu_usage.usage_in_kernelmode, 500_000);
        assert_eq!(s.cpu.throttling_data.throttled_time, 7000);
        assert_eq!(s.memory.usage, 4096);
        assert_eq!(s.memory.limit, 0);
        assert_eq!(s.memory.stats["inactive_file"], 20);
        assert_eq!((s.pids.current, s.pids.limit), (2, 10));
        let bytes = s.blkio.io_service_bytes_recursive.unwrap();
        assert_eq!(bytes.len(), 2);
        assert_eq!((bytes[1].op.as_str(), bytes[1].value), ("write", 20));
    }

    #[test]
    fn v1_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        let dir = |c: &str| {
            let p = d.path().join(c).join("berth/abc");
            fs::create_dir_all(&p).unwrap();
            p
        };
        fs::write(dir("cpuacct").join("cpuacct.usage"), "123456\n").unwrap();
        fs::write(
            dir("cpuacct").join("cpuacct.usage_percpu"),
            "100000 23456 \n",
        )
        .unwrap();
        fs::write(dir("cpuacct").join("cpuacct.stat"), "user 2\nsystem 1\n").unwrap();
        fs::write(
            dir("cpu").join("cpu.stat"),
            "nr_periods 5\nnr_throttled 0\nthrottled_time 0\n",
        )
        .unwrap();
        fs::write(dir("memory").join("memory.usage_in_bytes"), "8192\n").unwrap();
        fs::write(dir("memory").join("memory.limit_in_bytes"), "67108864\n").unwrap();
        fs::write(
            dir("memory").join("memory.stat"),
            "total_inactive_file 4096\n",
        )
        .unwrap();
        fs::write(dir("pids").join("pids.current"), "1\n").unwrap();
        fs::write(dir("pids").join("pids.max"), "max\n").unwrap();
        fs::write(
            dir("blkio").join("blkio.throttle.io_service_bytes_recursive"),
            "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
        )
        .unwrap();
        let s = read_under(d.path(), "/berth/abc", false);
        assert_eq!(s.cpu.cpu_usage.total_usage, 123_456);
        assert_eq!(s.cpu.cpu_usage.percpu_usage, Some(vec![100_000, 23_456]));
        assert_eq!(s.cpu.cpu_usage.usage_in_usermode, 20_000_000);
        assert_eq!(s.cpu.throttling_data.periods, 5);
        assert_eq!((s.memory.usage, s.memory.limit), (8192, 64 << 20));
        assert_eq!((s.pids.current, s.pids.limit), (1, 0));
        assert_eq!(s.blkio.io_service_bytes_recursive.unwrap().len(), 2);
    }

    #[test]
    fn proc_stat_sums_busy_and_idle_time() {
        let t = "cpu  10 0 5 100 1 0 0 0 0 0\ncpu0 5 0 2 50 0 0 0 0 0 0\ncpu1 5 0 3 50 1 0 0 0 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(t), (116 * NANOS_PER_TICK, 2));
    }
}
