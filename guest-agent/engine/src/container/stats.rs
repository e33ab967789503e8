//! `docker stats` (`GET /containers/{id}/stats`): samples of the container's cgroup and of
//! its network namespace's interfaces, in dockerd's `StatsResponse` shape, one per second
//! when streaming. A container that is not running gives dockerd's zero sample.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::stats::{ContainerStats, NetworkStats};
use tokio::sync::mpsc;

use super::{Container, Svc};
use crate::runtime::{cgroup, cgroup_stats};
use crate::Result;

const INTERVAL: Duration = Duration::from_secs(1);
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What `stream` and `one-shot` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsOptions {
    pub stream: bool,
    /// Without streaming: answer at once, without waiting for a second sample.
    pub one_shot: bool,
}

pub type StatsStream = tokio_stream::wrappers::ReceiverStream<ContainerStats>;

impl Svc {
    /// Samples `key` now and then every second (`stream`), or returns one sample.
    pub fn stats(self: &Arc<Self>, key: &str, opts: StatsOptions) -> Result<StatsStream> {
        let c = self.get(key)?;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut prev: Option<ContainerStats> = None;
            if !opts.stream && !opts.one_shot && c.snapshot().state.state.running {
                // dockerd's one answer carries a previous sample, so CPU % can be computed.
                prev = Some(sample(&c, None));
                tokio::time::sleep(INTERVAL).await;
            }
            loop {
                if c.status.borrow().removed {
                    break;
                }
                let s = sample(&c, prev.as_ref());
                if tx.send(s.clone()).await.is_err() || !opts.stream {
                    break;
                }
                prev = Some(s);
                tokio::select! {
                    _ = tokio::time::sleep(INTERVAL) => {}
                    _ = tx.closed() => break,
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
    }
}

/// One sample of `c`; its `precpu_stats` and `preread` come from `prev`.
fn sample(c: &Container, prev: Option<&ContainerStats>) -> ContainerStats {
    let s = c.snapshot();
    let mut out = ContainerStats {
        name: format!("/{}", s.record.name),
        id: c.id.clone(),
        read: ZERO_TIME.into(),
        preread: ZERO_TIME.into(),
        ..ContainerStats::default()
    };
    let st = &s.state.state;
    if !st.running || st.pid <= 0 {
        return out;
    }
    let cg = cgroup_stats::read(
        &cgroup::container_path(&s.host.cgroup_parent, &c.id),
        cgroup::is_v2(),
    );
    out.read = crate::shim::jsonlog::now_rfc3339();
    out.cpu_stats = cg.cpu;
    let (system, cpus) = cgroup_stats::system_cpu();
    out.cpu_stats.system_cpu_usage = system;
    out.cpu_stats.online_cpus = cpus;
    out.memory_stats = cg.memory;
    let machine = cgroup_stats::machine_memory();
    if out.memory_stats.limit == 0 || out.memory_stats.limit > machine {
        out.memory_stats.limit = machine;
    }
    out.pids_stats = cg.pids;
    out.blkio_stats = cg.blkio;
    if s.host.network_mode != "host" {
        out.networks = Some(interfaces(st.pid));
    }
    if let Some(p) = prev.filter(|p| p.read != ZERO_TIME) {
        out.preread = p.read.clone();
        out.precpu_stats = p.cpu_stats.clone();
    }
    out
}

/// Interface counters of the network namespace of `pid`, loopback left out.
fn interfaces(pid: i64) -> BTreeMap<String, NetworkStats> {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .map(|t| parse_net_dev(&t))
        .unwrap_or_default()
}

fn parse_net_dev(text: &str) -> BTreeMap<String, NetworkStats> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if name == "lo" || v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetworkStats {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_is_parsed_without_loopback() {
        let t = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    1234      10    1    2    0     0          0         0      567       5    0    3    0     0       0          0\n";
        let n = parse_net_dev(t);
        assert_eq!(n.len(), 1);
        let e = &n["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (1234, 10, 1, 2)
        );
        assert_eq!((e.tx_bytes, e.tx_packets, e.tx_dropped), (567, 5, 3));
    }
}
