//! `berth disk usage`: where the data disk's space goes, seen three ways — the qcow2 on the
//! host (what it takes against its size), the guest's data filesystem (from the agent's
//! `health` reply) and the engine's own accounting (`GET /system/df`: images, containers,
//! volumes, build cache, each with what a prune would give back). Each view may be missing
//! (VM stopped, engine down); the others are still shown.

use std::time::Duration;

use berth_agent_proto::{GuestDisk, Reply, Request};
use serde::Deserialize;

use crate::disk::ImageSize;
use crate::endpoint::Endpoint;
use crate::error::{HostError, Result};
use crate::StateDir;

/// Everything `berth disk usage` prints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskUsage {
    pub image: Option<ImageSize>,
    pub guest: Option<GuestDisk>,
    pub engine: Option<EngineUsage>,
}

/// The engine's view, per kind of object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineUsage {
    pub images: Category,
    pub containers: Category,
    pub volumes: Category,
    pub build_cache: Category,
}

/// How many objects of a kind, their bytes, and the bytes no running container needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Category {
    pub count: usize,
    pub bytes: u64,
    pub reclaimable: u64,
}

/// The parts of Docker's `GET /system/df` reply this view reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SystemDf {
    images: Vec<DfImage>,
    containers: Vec<DfContainer>,
    volumes: Vec<DfVolume>,
    build_cache: Vec<DfCache>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DfImage {
    size: i64,
    containers: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DfContainer {
    size_rw: i64,
    state: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DfVolume {
    name: String,
    usage_data: Option<DfVolumeUsage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DfVolumeUsage {
    size: i64,
    ref_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DfCache {
    size: i64,
    in_use: bool,
}

/// Sums a `/system/df` reply the way `docker system df` does: unused images, stopped
/// containers, unreferenced volumes and idle build cache are reclaimable. Docker reports an
/// unknown size as -1; it counts as 0.
fn summarise(df: &SystemDf) -> EngineUsage {
    fn category<T>(items: &[T], size: impl Fn(&T) -> i64, free: impl Fn(&T) -> bool) -> Category {
        let bytes = |t: &T| u64::try_from(size(t)).unwrap_or(0);
        Category {
            count: items.len(),
            bytes: items.iter().map(bytes).sum(),
            reclaimable: items.iter().filter(|t| free(t)).map(bytes).sum(),
        }
    }
    let volume = |v: &DfVolume| {
        v.usage_data
            .as_ref()
            .map_or((-1, -1), |u| (u.size, u.ref_count))
    };
    EngineUsage {
        images: category(&df.images, |i| i.size, |i| i.containers == 0),
        containers: category(&df.containers, |c| c.size_rw, |c| c.state != "running"),
        volumes: category(&df.volumes, |v| volume(v).0, |v| volume(v).1 == 0),
        build_cache: category(&df.build_cache, |c| c.size, |c| !c.in_use),
    }
}

/// Reads all three views, each bounded; what cannot be read is left `None`.
pub async fn read(state: &StateDir, vm_running: bool) -> DiskUsage {
    let disk = state.data_disk();
    let image = match crate::disk::image_size(&disk).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::debug!(error = %e, "data disk size unknown");
            None
        }
    };
    if !vm_running {
        return DiskUsage {
            image,
            ..DiskUsage::default()
        };
    }
    let bound = Duration::from_secs(10);
    crate::idle::wake(state).await;
    let guest = match crate::control::side_connector(state) {
        Ok(c) => match crate::control::one_request(c.as_ref(), Request::Health, bound).await {
            Ok(Reply::Health { disk, .. }) => disk,
            _ => None,
        },
        Err(_) => None,
    };
    let engine = match tokio::time::timeout(bound, system_df(&state.docker_endpoint())).await {
        Ok(Ok(df)) => Some(summarise(&df)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "engine disk usage unknown");
            None
        }
        Err(_) => None,
    };
    DiskUsage {
        image,
        guest,
        engine,
    }
}

/// The engine's accounting at `e` (`GET /system/df`, summarised as `docker system df` does).
pub async fn engine_usage(e: &Endpoint) -> Result<EngineUsage> {
    Ok(summarise(&system_df(e).await?))
}

/// The size of volume `name` as `/system/df` counts it; `None` when the engine did not count
/// it (Docker's -1) or lists no such volume.
pub async fn volume_size(e: &Endpoint, name: &str) -> Result<Option<u64>> {
    let df = system_df(e).await?;
    Ok(df
        .volumes
        .iter()
        .find(|v| v.name == name)
        .and_then(|v| v.usage_data.as_ref())
        .and_then(|u| u64::try_from(u.size).ok()))
}

/// `GET /system/df` on the Docker API at `e`.
async fn system_df(e: &Endpoint) -> Result<SystemDf> {
    let body = crate::api::get(e, "/system/df").await?;
    serde_json::from_slice(&body).map_err(|err| HostError::Command {
        what: "GET /system/df".into(),
        detail: err.to_string(),
    })
}

/// The lines `berth disk usage` prints.
pub fn describe(u: &DiskUsage) -> Vec<String> {
    let mut lines = Vec::new();
    match &u.image {
        Some(i) => lines.push(format!(
            "data disk:   {} on the host of {} ({:.0}%)",
            human(i.allocated_bytes),
            human(i.virtual_bytes),
            percent(i.allocated_bytes, i.virtual_bytes)
        )),
        None => lines.push("data disk:   not created yet (Berth has not started)".into()),
    }
    if let Some(g) = &u.guest {
        let used = g.total_bytes.saturating_sub(g.available_bytes);
        lines.push(format!(
            "guest:       {} used, {} free of {}",
            human(used),
            human(g.available_bytes),
            human(g.total_bytes)
        ));
    }
    match &u.engine {
        Some(e) => {
            for (name, c) in [
                ("images", e.images),
                ("containers", e.containers),
                ("volumes", e.volumes),
                ("build cache", e.build_cache),
            ] {
                lines.push(format!(
                    "{:<12} {} in {}, {} reclaimable",
                    format!("{name}:"),
                    human(c.bytes),
                    c.count,
                    human(c.reclaimable)
                ));
            }
        }
        None => lines.push(
            "engine:      not running (start Berth to see images, containers, volumes)".into(),
        ),
    }
    lines
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Sizes as `docker system df` prints them: powers of 1000 with four significant digits (as
/// Docker's units package does).
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let decimals = match v {
        v if v < 10.0 => 3,
        v if v < 100.0 => 2,
        _ => 1,
    };
    let text = format!("{v:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_df_reply_is_summed_as_docker_system_df_does() {
        let reply = r#"{
            "LayersSize": 30,
            "Images": [{"Size": 10, "Containers": 1}, {"Size": 20, "Containers": 0}],
            "Containers": [{"SizeRw": 5, "State": "running"}, {"SizeRw": 7, "State": "exited"},
                           {"SizeRw": -1, "State": "created"}],
            "Volumes": [{"UsageData": {"Size": 100, "RefCount": 0}},
                        {"UsageData": {"Size": 50, "RefCount": 1}}, {"Name": "no-usage"}],
            "BuildCache": [{"Size": 3, "InUse": false}, {"Size": 4, "InUse": true}]
        }"#;
        let e = summarise(&serde_json::from_str(reply).unwrap());
        let c = |count, bytes, reclaimable| Category {
            count,
            bytes,
            reclaimable,
        };
        assert_eq!(e.images, c(2, 30, 20));
        assert_eq!(e.containers, c(3, 12, 7));
        assert_eq!(e.volumes, c(3, 150, 100));
        assert_eq!(e.build_cache, c(2, 7, 3));
    }

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(999), "999B");
        assert_eq!(human(1000), "1kB");
        assert_eq!(human(4_404_019), "4.404MB");
        assert_eq!(human(17_179_869_184), "17.18GB");
        assert_eq!(human(123_456_000), "123.5MB");
    }

    #[test]
    fn each_view_is_described_or_said_missing() {
        let none = describe(&DiskUsage::default());
        assert!(none[0].contains("not created yet"), "{none:?}");
        assert!(none[1].contains("engine:      not running"), "{none:?}");
        let all = describe(&DiskUsage {
            image: Some(ImageSize {
                virtual_bytes: 16_000_000_000,
                allocated_bytes: 4_000_000_000,
            }),
            guest: Some(GuestDisk {
                total_bytes: 15_000_000_000,
                available_bytes: 12_000_000_000,
            }),
            engine: Some(EngineUsage {
                images: Category {
                    count: 2,
                    bytes: 30_000_000,
                    reclaimable: 20_000_000,
                },
                ..EngineUsage::default()
            }),
        });
        assert_eq!(all[0], "data disk:   4GB on the host of 16GB (25%)");
        assert_eq!(all[1], "guest:       3GB used, 12GB free of 15GB");
        assert_eq!(all[2], "images:      30MB in 2, 20MB reclaimable");
        assert_eq!(all[5], "build cache: 0B in 0, 0B reclaimable");
    }
}
