//! Containers: list, lifecycle, logs (follow) and stats; the terminal's exec sessions are in
//! [`super::exec`].

use bollard::container::LogOutput;
use bollard::models::{ContainerStatsResponse, ContainerSummary, PortSummary};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RestartContainerOptions,
    StartContainerOptions, StatsOptionsBuilder, StopContainerOptions,
};
use futures::StreamExt;
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;

use crate::error::Result;
use crate::state::AppState;
use crate::streams::{StreamEvent, StreamId, Utf8Chunks};

/// A row of the Containers view.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
    pub status: String,
    pub ports: Vec<String>,
    /// The compose project and service it belongs to (`com.docker.compose.*` labels), if any.
    pub project: String,
    pub service: String,
}

/// The name a list shows for a container: the first of the summary's `Names`, without the
/// leading `/`; empty when it has none.
pub fn shown_name(names: Option<Vec<String>>) -> String {
    names
        .unwrap_or_default()
        .first()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

impl From<ContainerSummary> for ContainerRow {
    fn from(c: ContainerSummary) -> Self {
        let name = shown_name(c.names);
        let labels = c.labels.unwrap_or_default();
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        Self {
            project: label(super::compose::PROJECT_LABEL),
            service: label(super::compose::SERVICE_LABEL),
            id: c.id.unwrap_or_default(),
            name,
            image: c.image.unwrap_or_default(),
            state: c.state.map(|s| s.to_string()).unwrap_or_default(),
            status: c.status.unwrap_or_default(),
            ports: c.ports.unwrap_or_default().iter().map(port_text).collect(),
        }
    }
}

/// A port as `docker ps` shows it: `0.0.0.0:8080->80/tcp` or `80/tcp`.
pub fn port_text(p: &PortSummary) -> String {
    let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
    match p.public_port {
        Some(public) => format!(
            "{}:{public}->{}/{proto}",
            p.ip.as_deref().unwrap_or("0.0.0.0"),
            p.private_port
        ),
        None => format!("{}/{proto}", p.private_port),
    }
}

#[tauri::command]
pub async fn containers_list(state: State<'_, AppState>) -> Result<Vec<ContainerRow>> {
    let e = state.engine();
    let opts = ListContainersOptionsBuilder::default().all(true).build();
    let list = e.docker()?.list_containers(Some(opts)).await;
    let mut rows: Vec<ContainerRow> = list
        .map_err(|x| e.err(x))?
        .into_iter()
        .filter(|c| !super::volume_helper::is_helper(c.labels.as_ref()))
        .map(ContainerRow::from)
        .collect();
    // Compose projects together (first), then the other containers, each by name.
    rows.sort_by(|a, b| {
        (a.project.is_empty(), &a.project, &a.name).cmp(&(
            b.project.is_empty(),
            &b.project,
            &b.name,
        ))
    });
    Ok(rows)
}

#[tauri::command]
pub async fn containers_start(state: State<'_, AppState>, id: String) -> Result<()> {
    let e = state.engine();
    let r = e
        .docker()?
        .start_container(&id, None::<StartContainerOptions>)
        .await;
    r.map_err(|x| e.err(x))
}

#[tauri::command]
pub async fn containers_stop(state: State<'_, AppState>, id: String) -> Result<()> {
    let e = state.engine();
    let r = e
        .docker()?
        .stop_container(&id, None::<StopContainerOptions>)
        .await;
    r.map_err(|x| e.err(x))
}

#[tauri::command]
pub async fn containers_restart(state: State<'_, AppState>, id: String) -> Result<()> {
    let e = state.engine();
    let r = e
        .docker()?
        .restart_container(&id, None::<RestartContainerOptions>)
        .await;
    r.map_err(|x| e.err(x))
}

/// `docker pause` (`true`) or `docker unpause` (`false`).
pub async fn pause(state: &AppState, id: &str, pause: bool) -> Result<()> {
    let e = state.engine();
    let docker = e.docker()?;
    let r = if pause {
        docker.pause_container(id).await
    } else {
        docker.unpause_container(id).await
    };
    r.map_err(|x| e.err(x))
}

#[tauri::command]
pub async fn containers_pause(state: State<'_, AppState>, id: String) -> Result<()> {
    pause(&state, &id, true).await
}

#[tauri::command]
pub async fn containers_unpause(state: State<'_, AppState>, id: String) -> Result<()> {
    pause(&state, &id, false).await
}

/// Removes a container; without `force` a running one is refused by the engine (409).
#[tauri::command]
pub async fn containers_remove(state: State<'_, AppState>, id: String, force: bool) -> Result<()> {
    let e = state.engine();
    let opts = RemoveContainerOptionsBuilder::default()
        .force(force)
        .build();
    let r = e.docker()?.remove_container(&id, Some(opts)).await;
    r.map_err(|x| e.err(x))
}

/// Which stream a chunk of container output came from, and its bytes.
pub fn output_parts(o: &LogOutput) -> (&'static str, &[u8]) {
    match o {
        LogOutput::StdOut { message } => ("stdout", &message[..]),
        LogOutput::StdErr { message } => ("stderr", &message[..]),
        LogOutput::StdIn { message } => ("stdin", &message[..]),
        LogOutput::Console { message } => ("console", &message[..]),
    }
}

/// Decodes container output into [`StreamEvent::Output`]s: each stream (stdout, stderr…) has
/// its own [`Utf8Chunks`], so a character cut between two chunks arrives whole.
#[derive(Default)]
pub struct OutputDecoder {
    streams: Vec<(&'static str, Utf8Chunks)>,
}

impl OutputDecoder {
    /// The text of `o` that is complete so far (`None` while it is only part of a character).
    pub fn event(&mut self, o: LogOutput) -> Option<StreamEvent> {
        let (stream, bytes) = output_parts(&o);
        let i = match self.streams.iter().position(|(s, _)| *s == stream) {
            Some(i) => i,
            None => {
                self.streams.push((stream, Utf8Chunks::default()));
                self.streams.len() - 1
            }
        };
        let text = self.streams[i].1.push(bytes);
        (!text.is_empty()).then_some(StreamEvent::Output { stream, text })
    }
}

/// Streams a container's logs (the last `tail` lines, all when `None`, since `since` seconds
/// since the epoch; then, with `follow` (default), what it writes until stopped or the
/// container ends); returns the stream id. With `timestamps` each line starts with its time.
#[tauri::command]
pub async fn containers_logs(
    state: State<'_, AppState>,
    id: String,
    tail: Option<u32>,
    since: Option<i64>,
    follow: Option<bool>,
    timestamps: Option<bool>,
    channel: Channel<StreamEvent>,
) -> Result<StreamId> {
    let e = state.engine();
    let opts = super::logs::log_options(
        since,
        tail,
        follow.unwrap_or(true),
        timestamps.unwrap_or(false),
    );
    let ch = channel.clone();
    Ok(state.streams.spawn(channel, None, async move {
        let mut logs = e.docker()?.logs(&id, Some(opts));
        let mut decoder = OutputDecoder::default();
        while let Some(item) = logs.next().await {
            if let Some(ev) = decoder.event(item.map_err(|x| e.err(x))?) {
                let _ = ch.send(ev);
            }
        }
        Ok(())
    }))
}

/// One stats sample, computed as `docker stats` does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSample {
    pub cpu_percent: f64,
    pub mem_usage: u64,
    pub mem_limit: u64,
    pub mem_percent: f64,
    /// Bytes received and sent over all networks since the container started.
    pub net_rx: u64,
    pub net_tx: u64,
    /// Bytes read from and written to block devices since the container started.
    pub blk_read: u64,
    pub blk_write: u64,
}

/// Received and sent bytes summed over every network of a sample.
fn net_totals(s: &ContainerStatsResponse) -> (u64, u64) {
    s.networks
        .iter()
        .flatten()
        .fold((0, 0), |(rx, tx), (_, n)| {
            (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
        })
}

/// Read and written block bytes of a sample (`io_service_bytes_recursive`; the op is
/// `read`/`write` on cgroup v2, `Read`/`Write` on v1).
fn blk_totals(s: &ContainerStatsResponse) -> (u64, u64) {
    let entries = s
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref());
    entries.into_iter().flatten().fold((0, 0), |(r, w), e| {
        let v = e.value.unwrap_or(0);
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => (r + v, w),
            Some("write") => (r, w + v),
            _ => (r, w),
        }
    })
}

impl StatsSample {
    pub fn from_response(s: &ContainerStatsResponse) -> Self {
        let total = |c: &Option<bollard::models::ContainerCpuStats>| {
            let c = c.as_ref();
            (
                c.and_then(|c| c.cpu_usage.as_ref())
                    .and_then(|u| u.total_usage)
                    .unwrap_or(0),
                c.and_then(|c| c.system_cpu_usage).unwrap_or(0),
                c.and_then(|c| c.online_cpus).unwrap_or(0),
            )
        };
        let (cpu, sys, cpus) = total(&s.cpu_stats);
        let (pre_cpu, pre_sys, _) = total(&s.precpu_stats);
        let mem = s.memory_stats.as_ref();
        let usage = mem.and_then(|m| m.usage).unwrap_or(0);
        // As the docker CLI does on cgroup v2: usage minus inactive file pages.
        let inactive = mem
            .and_then(|m| m.stats.as_ref())
            .and_then(|st| st.get("inactive_file").copied())
            .unwrap_or(0);
        let mem_usage = usage.saturating_sub(inactive);
        let mem_limit = mem.and_then(|m| m.limit).unwrap_or(0);
        let (net_rx, net_tx) = net_totals(s);
        let (blk_read, blk_write) = blk_totals(s);
        Self {
            net_rx,
            net_tx,
            blk_read,
            blk_write,
            cpu_percent: cpu_percent(cpu, pre_cpu, sys, pre_sys, cpus),
            mem_usage,
            mem_limit,
            mem_percent: if mem_limit > 0 {
                mem_usage as f64 * 100.0 / mem_limit as f64
            } else {
                0.0
            },
        }
    }
}

/// CPU use over the sample interval as a percentage of one CPU (so up to `cpus × 100`).
pub fn cpu_percent(cpu: u64, pre_cpu: u64, sys: u64, pre_sys: u64, cpus: u32) -> f64 {
    let cpu_delta = cpu.saturating_sub(pre_cpu) as f64;
    let sys_delta = sys.saturating_sub(pre_sys) as f64;
    if sys_delta <= 0.0 || cpu_delta <= 0.0 {
        return 0.0;
    }
    cpu_delta / sys_delta * f64::from(cpus.max(1)) * 100.0
}

/// Streams live stats (one sample a second) until stopped; returns the stream id.
#[tauri::command]
pub async fn containers_stats(
    state: State<'_, AppState>,
    id: String,
    channel: Channel<StreamEvent>,
) -> Result<StreamId> {
    let e = state.engine();
    let opts = StatsOptionsBuilder::default().stream(true).build();
    let ch = channel.clone();
    Ok(state.streams.spawn(channel, None, async move {
        let mut stats = e.docker()?.stats(&id, Some(opts));
        while let Some(item) = stats.next().await {
            let s = item.map_err(|x| e.err(x))?;
            let _ = ch.send(StreamEvent::Stats(StatsSample::from_response(&s)));
        }
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_scales_by_cpus() {
        // 1e8 ns of CPU over 1e9 ns of system time on 2 CPUs = 20 %.
        let p = cpu_percent(300_000_000, 200_000_000, 2_000_000_000, 1_000_000_000, 2);
        assert!((p - 20.0).abs() < 1e-9, "{p}");
    }

    #[test]
    fn net_and_block_totals_sum_every_entry() {
        let s: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 3}, "eth1": {"rx_bytes": 5, "tx_bytes": 1}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 100},
                {"major": 8, "minor": 0, "op": "write", "value": 7},
                {"major": 8, "minor": 16, "op": "Write", "value": 1},
                {"major": 8, "minor": 16, "op": "discard", "value": 50}
            ]}
        }))
        .unwrap();
        let x = StatsSample::from_response(&s);
        assert_eq!(
            (x.net_rx, x.net_tx, x.blk_read, x.blk_write),
            (15, 4, 100, 8)
        );
        let none = StatsSample::from_response(&ContainerStatsResponse::default());
        assert_eq!((none.net_rx, none.blk_write), (0, 0));
    }

    #[test]
    fn cpu_percent_is_zero_without_a_previous_sample() {
        assert_eq!(cpu_percent(5, 0, 0, 0, 4), 0.0);
        assert_eq!(cpu_percent(5, 9, 10, 5, 4), 0.0);
    }

    #[test]
    fn compose_labels_name_the_project_and_service() {
        let c = ContainerSummary {
            names: Some(vec!["/proj-web-1".into()]),
            labels: Some(
                [
                    ("com.docker.compose.project".to_string(), "proj".to_string()),
                    ("com.docker.compose.service".to_string(), "web".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let row = ContainerRow::from(c);
        assert_eq!(
            (
                row.name.as_str(),
                row.project.as_str(),
                row.service.as_str()
            ),
            ("proj-web-1", "proj", "web")
        );
        let plain = ContainerRow::from(ContainerSummary::default());
        assert_eq!((plain.project.as_str(), plain.service.as_str()), ("", ""));
    }

    #[test]
    fn ports_read_like_docker_ps() {
        let p = PortSummary {
            ip: Some("127.0.0.1".into()),
            private_port: 80,
            public_port: Some(8080),
            typ: None,
        };
        assert_eq!(port_text(&p), "127.0.0.1:8080->80/tcp");
        let p = PortSummary {
            private_port: 53,
            public_port: None,
            ..p
        };
        assert_eq!(port_text(&p), "53/tcp");
    }
}
